"""The hand-made HWU64 labels of the off-topic evaluation set (#31). HWU64 covers everyday assistant
requests (weather, jokes, recipes, maths, ...), so some "off-topic" messages are in scope for a folder
built from its intents; `off_topic_eval_hwu64.csv` names the covering intent, or leaves it empty. The
labels are only usable if they line up with the evaluation set message for message and name intents
the HWU64 folder really has."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bot.content.intents import load_intents
from bot.content.small_talk import is_built_in

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "scripts" / "bench" / "data"
EVAL_SET = DATA / "off_topic_eval.txt"
LABELS = DATA / "off_topic_eval_hwu64.csv"
HWU64_INTENTS = ROOT / "scripts" / "bench" / "hwu64" / "intents"


def eval_messages() -> list[str]:
    """The evaluation set's messages in file order: one per line, blank and `#` lines skipped."""
    lines = (line.strip() for line in EVAL_SET.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def label_rows() -> list[dict[str, str]]:
    """The CSV's rows as dicts; the header must be exactly `text,hwu64_intent`."""
    with LABELS.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["text", "hwu64_intent"], f"{LABELS.name}: header {reader.fieldnames}"
        return list(reader)


def test_the_csv_has_every_evaluation_message_in_order() -> None:
    texts = [row["text"] for row in label_rows()]
    messages = eval_messages()
    first_difference = next(
        (n for n, (got, want) in enumerate(zip(texts, messages, strict=False), 2) if got != want), None
    )
    assert first_difference is None, (
        f"{LABELS.name}:{first_difference} does not match {EVAL_SET.name}: "
        f"{texts[first_difference - 2]!r} != {messages[first_difference - 2]!r} (regenerate the labels)"
    )
    assert len(texts) == len(messages), (
        f"{LABELS.name}: {len(texts)} rows, {EVAL_SET.name}: {len(messages)} messages"
    )


def test_every_label_is_empty_or_an_hwu64_intent() -> None:
    if not HWU64_INTENTS.is_dir():
        pytest.skip(f"no HWU64 intents folder at {HWU64_INTENTS}")
    # The loader adds the built-in small talk (greeting, thanks, ...); only HWU64's own intents count.
    names = {i.name for i in load_intents(HWU64_INTENTS).intents if not is_built_in(i)}
    assert len(names) == 64, f"{HWU64_INTENTS}: {len(names)} intents, HWU64 has 64"
    unknown = {
        (row["text"], row["hwu64_intent"]) for row in label_rows() if row["hwu64_intent"] not in names | {""}
    }
    assert not unknown, f"{LABELS.name}: labels that are not HWU64 intents: {sorted(unknown)}"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("tell me a knock knock joke", "general_joke"),
        ("forecast for paris on friday", "weather_query"),
        ("what's 7 times 8", "qa_maths"),
        ("my hamster isn't eating", ""),
        ("lkjhgfdsa", ""),
        ("you're worthless", ""),
    ],
)
def test_the_clear_cases_carry_the_label_the_brief_gives(text: str, intent: str) -> None:
    """The anchors of the labelling (#31): plain assistant requests covered, pets, mashing and abuse not."""
    labels = {row["text"]: row["hwu64_intent"] for row in label_rows()}
    assert labels[text] == intent, (
        f"{LABELS.name}: {text!r} is labelled {labels[text]!r}, expected {intent!r}"
    )
