"""`bot review export` and `bot logs export`: learned examples into YAML (only additions), logs as CSV/JSONL."""

from __future__ import annotations

import csv
import difflib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.config import get_settings
from bot.store.db import make_engine, session_scope, upgrade
from bot.store.examples import remember
from bot.store.models import Conversation, DecisionLog, LearnedExample, Review
from tests.conftest import write

CARDS = """\
# Cards: keep in sync with knowledge/fees.md
intents:
  - name: card_arrival   # the most common question
    description: >-
      The customer ordered a card and it has not arrived yet; they want to know
      where it is.
    examples:
      - "Where is my new card?"
      - 'My card never came'   # single quotes stay single
    answer: "Cards arrive in 3-5 working days."

  # lost cards always go to a person
  - name: lost_card
    description: The customer lost their card.
    handoff: true
    tags: [cards]

  - name: card_fees
    description: The customer asks what cards cost.
    examples: ["How much is a card?"]
"""
OTHER = """\
intents:
  - name: exchange_rate
    description: Which exchange rate we use.
    examples:
      - "What rate do you use?"
    # answers are reviewed by compliance
    answer: "The interbank rate."
"""


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    folder = tmp_path / "intents"
    write(folder / "cards.yaml", CARDS)
    write(folder / "other.yaml", OTHER)
    url = f"sqlite:///{tmp_path / 'bot.store.db'}"
    monkeypatch.setenv("BOT_DATABASE_URL", url)
    monkeypatch.setenv("BOT_INTENTS_DIR", str(folder))
    get_settings.cache_clear()
    database = make_engine(url)
    upgrade(database)
    database.dispose()
    yield folder, url
    get_settings.cache_clear()


def learn(url: str, *pairs: tuple[str, str]) -> None:
    database = make_engine(url)
    with session_scope(database) as session:
        for intent, text in pairs:
            remember(session, intent=intent, text=text, source="review")
    database.dispose()


def exported_flags(url: str) -> dict[str, bool]:
    from sqlmodel import Session, select

    database = make_engine(url)
    with Session(database) as session:
        flags = {row.text: row.exported for row in session.exec(select(LearnedExample)).all()}
    database.dispose()
    return flags


def line_changes(before: str, after: str) -> tuple[list[str], list[str]]:
    """Lines removed from and added to `before` (difflib), everything else being identical and in order."""
    old, new = before.splitlines(), after.splitlines()
    removed: list[str] = []
    added: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag != "equal":
            removed += old[i1:i2]
            added += new[j1:j2]
    return removed, added


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_export_adds_only_the_new_examples_and_a_second_run_changes_nothing(env: tuple[Path, str]) -> None:
    folder, url = env
    learn(
        url,
        ("card_arrival", "the plastic thingy you promised me, any news?"),
        ("lost_card", 'I think I left my card at the "Red Lion"'),
        ("card_fees", "is a card free?"),
        ("exchange_rate", "what rate for dollars"),
        ("card_arrival", "Where is my new card?"),  # already in the YAML: only marked exported
        ("gone_intent", "an intent deleted since"),
    )
    code, stdout, stderr = run("review", "export")
    assert code == 0, stderr
    assert "exported 4 example(s) into 2 file(s); 1 already in the YAML" in stdout
    assert "'gone_intent' not exported" in stderr

    cards = (folder / "cards.yaml").read_text()
    removed, added = line_changes(CARDS, cards)
    # only additions, except the one flow-style list that is rewritten on its own line
    assert removed == ['    examples: ["How much is a card?"]']
    assert added == [
        '      - "the plastic thingy you promised me, any news?"',
        "    examples:",
        '      - "I think I left my card at the \\"Red Lion\\""',
        '    examples: ["How much is a card?", "is a card free?"]',
    ]
    other = (folder / "other.yaml").read_text()
    assert other == OTHER.replace(
        '      - "What rate do you use?"\n',
        '      - "What rate do you use?"\n      - "what rate for dollars"\n',
    )

    from bot.content.intents import load_intents

    intents = load_intents(folder)
    assert intents.get("lost_card").spec.examples == ('I think I left my card at the "Red Lion"',)
    assert intents.get("card_arrival").spec.examples[-1] == "the plastic thingy you promised me, any news?"
    assert exported_flags(url) == {
        "the plastic thingy you promised me, any news?": True,
        'I think I left my card at the "Red Lion"': True,
        "is a card free?": True,
        "what rate for dollars": True,
        "Where is my new card?": True,
        "an intent deleted since": False,
    }

    code, stdout, _ = run("review", "export")
    assert code == 0 and "exported 0 example(s) into 0 file(s)" in stdout
    assert (folder / "cards.yaml").read_text() == cards and (folder / "other.yaml").read_text() == other


def test_a_corrected_text_moves_and_is_exported_again(env: tuple[Path, str]) -> None:
    folder, url = env
    learn(url, ("card_fees", "how much for a second card"))
    assert run("review", "export")[0] == 0
    learn(url, ("card_arrival", "how much for a second card"))  # an analyst changed their mind
    assert run("review", "export")[0] == 0
    text = (folder / "cards.yaml").read_text()
    assert text.count("how much for a second card") == 2  # YAML is the builder's to prune; we never delete


def test_export_errors_are_one_line(env: tuple[Path, str]) -> None:
    folder, _ = env
    write(folder / "broken.yaml", "intents:\n  - name: x\n    exampels: []\n")
    code, _, stderr = run("review", "export")
    assert code == 2 and stderr.startswith("error: ") and "broken.yaml:3" in stderr
    assert len(stderr.strip().splitlines()) == 1


def seed_logs(url: str) -> None:
    database = make_engine(url)
    with session_scope(database) as session:
        session.add(Conversation(id="c1"))
        for i, (route, intent) in enumerate([("answer", "card_fees"), ("handoff", None), ("retrieve", None)]):
            session.add(
                DecisionLog(
                    conversation_id="c1",
                    text=f"message, {i}",
                    route=route,
                    intent=intent,
                    confidence=0.5,
                    candidates=[{"intent": "card_fees", "score": 0.6, "confidence": 0.5}],
                    reason="why",
                    threshold=0.75,
                    margin=0.025,
                    model_id="m",
                    intents_version="v",
                    latency_ms=1.0,
                )
            )
        session.flush()
        session.add(Review(decision_id=2, verdict="wrong", intent="lost_card", reviewer="eve"))
    database.dispose()


def test_logs_export_csv_and_jsonl(env: tuple[Path, str], tmp_path: Path) -> None:
    _, url = env
    seed_logs(url)
    code, stdout, stderr = run("logs", "export", "--format", "csv")
    assert code == 0 and "3 decision(s) exported" in stderr
    rows = list(csv.DictReader(io.StringIO(stdout)))
    assert [r["text"] for r in rows] == ["message, 0", "message, 1", "message, 2"]
    assert (rows[1]["review_verdict"], rows[1]["review_intent"], rows[1]["reviewer"]) == (
        "wrong",
        "lost_card",
        "eve",
    )
    assert json.loads(rows[0]["candidates"])[0]["intent"] == "card_fees"

    target = tmp_path / "handoffs.jsonl"
    code, _, _ = run(
        "logs",
        "export",
        "--format",
        "jsonl",
        "--route",
        "handoff",
        "--since",
        "2000-01-01",
        "--out",
        str(target),
    )
    assert code == 0
    (item,) = [json.loads(line) for line in target.read_text().splitlines()]
    assert item["route"] == "handoff" and item["review_intent"] == "lost_card"

    code, stdout, _ = run("logs", "export", "--format", "jsonl", "--since", "2999-01-01")
    assert code == 0 and stdout == ""
    for args, field in ((("--route", "nowhere"), "--route"), (("--since", "yesterday"), "--since")):
        code, _, stderr = run("logs", "export", "--format", "csv", *args)
        assert code == 2 and stderr.startswith(f"error: {field}: "), stderr


def test_examples_of_a_built_in_intent_stay_in_the_database_with_a_note(env: tuple[Path, str]) -> None:
    """Built-in small talk has no file to write to: export must not try to edit the built-ins' module."""
    _, url = env
    learn(url, ("thanks", "cheers, that sorted it"), ("card_fees", "what does a card cost me"))
    code, stdout, stderr = run("review", "export")
    assert code == 0, stderr
    assert "exported 1 example(s) into 1 file(s)" in stdout
    assert "learned example(s) of the built-in 'thanks' stay in the database" in stderr
    assert exported_flags(url) == {"cheers, that sorted it": False, "what does a card cost me": True}
