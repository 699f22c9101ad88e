"""Intent YAML validation: every mistake is one `path:line: message` naming what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.content.intents import load_intents
from bot.errors import IntentFileError
from tests.conftest import INTENTS, write

GOOD = """\
# cards
intents:
  - name: card_arrival
    description: The customer wants to know when their card arrives.
    examples: ["Where is my card?"]
    answer: "Cards arrive in 3-5 working days."
    tags: [cards]
"""


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (
            GOOD.replace("examples:", "exampels:"),
            5,
            "unknown key 'exampels' (did you mean 'examples'?); allowed: name, description",
        ),
        (
            GOOD.replace("    description: The customer wants to know when their card arrives.\n", ""),
            3,
            "missing required key 'description'",
        ),
        (
            GOOD.replace("The customer wants to know when their card arrives.", '"   "'),
            4,
            "'description' must not be empty",
        ),
        (GOOD.replace("card_arrival", "Card Arrival"), 3, "lowercase letters, digits and underscores"),
        (
            GOOD.replace('answer: "Cards arrive in 3-5 working days."', 'answer: "{% if %}"'),
            6,
            "answer of 'card_arrival': template syntax error",
        ),
        (
            GOOD.replace(
                'answer: "Cards arrive in 3-5 working days."', "answer: \"{{ ''.__class__.__mro__ }}\""
            ),
            6,
            "private attribute",
        ),
        (GOOD + "    threshold: high\n", 8, "'threshold': input should be a valid number"),
        (GOOD + "    threshold: 1.5\n", 8, "'threshold': input should be less than or equal to 1"),
        (GOOD + "    handoff: maybe\n", 8, "'handoff': input should be a valid boolean"),
        (
            GOOD.replace('examples: ["Where is my card?"]', "examples: [Where is my card?, 3]"),
            5,
            "'examples.1'",
        ),
        (GOOD.replace("    tags: [cards]\n", "    tags: [cards\n"), 8, "YAML syntax error"),
        (GOOD + "    tags: [again]\n", 8, "YAML syntax error"),  # duplicate key inside one intent
        (GOOD.replace("intents:", "intent:"), 2, "unknown top-level key 'intent'; allowed: intents"),
        ("- just a list\n", 1, "mapping with the key 'intents'"),
        (
            GOOD.replace("  - name: card_arrival\n", "  - just text\n  - name: card_arrival\n"),
            3,
            "each intent must be a mapping",
        ),
    ],
)
def test_mistakes_are_reported_with_path_and_line(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    path = write(tmp_path / "cards.yaml", text)
    with pytest.raises(IntentFileError) as caught:
        load_intents(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert fragment in message
    assert "\n" not in message


def test_duplicate_names_across_files_name_both_places(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", GOOD)
    b = write(
        tmp_path / "b.yaml", "intents:\n  - name: other\n    description: x\n" + GOOD.split("intents:\n")[1]
    )
    with pytest.raises(IntentFileError) as caught:
        load_intents(tmp_path)
    assert str(caught.value) == (
        f"{b}:4: duplicate intent name 'card_arrival'; first defined at {tmp_path / 'a.yaml'}:3"
    )


def test_missing_or_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(IntentFileError, match="does not exist"):
        load_intents(tmp_path / "nope")
    with pytest.raises(IntentFileError, match=r"no \*\.yaml intent files"):
        load_intents(tmp_path)


def test_valid_file_loads_with_version_that_tracks_content(tmp_path: Path) -> None:
    write(tmp_path / "cards.yaml", GOOD)
    write(tmp_path / "calibration.yaml", "not: an intent file\n")  # reserved name, skipped
    write(tmp_path / "settings.yaml", "small_talk: false\n")  # only the file's intent (#27 item 5)
    first = load_intents(tmp_path)
    assert first.names == ("card_arrival",)
    intent = first.get("card_arrival")
    assert intent is not None and intent.line == 3 and intent.spec.examples == ("Where is my card?",)
    assert (
        intent.template is not None
        and intent.template.render(message="m", intent="i") == "Cards arrive in 3-5 working days."
    )
    assert load_intents(tmp_path).version == first.version
    write(tmp_path / "cards.yaml", GOOD.replace("3-5", "2-4"))
    assert load_intents(tmp_path).version != first.version


def test_extra_examples_do_not_touch_yaml(tmp_path: Path) -> None:
    path = write(tmp_path / "cards.yaml", GOOD)
    base = load_intents(tmp_path)
    more = base.with_extra_examples({"card_arrival": ["card not here", "Where is my card?"]})
    assert more.get("card_arrival").spec.examples == ("Where is my card?", "card not here")  # type: ignore[union-attr]
    assert more.version != base.version
    assert path.read_text() == GOOD


def test_shipped_intents_cover_banking77_and_the_basics() -> None:
    intents = load_intents(INTENTS)
    names = set(intents.names)
    assert len(names) >= 81
    assert {"greeting", "thanks", "goodbye", "human_agent", "card_arrival", "refund_not_showing_up"} <= names
    for intent in intents.intents:
        assert len(intent.spec.examples) <= 3, intent.name
        assert intent.template is not None, f"{intent.name} has no answer"
    handoff = {i.name for i in intents.intents if i.spec.handoff}
    assert "human_agent" in handoff and len(handoff) >= 4


def test_no_shipped_text_is_a_banking77_test_utterance() -> None:
    """The benchmark stays honest: nothing in intents/ equals a test message, even by coincidence."""
    import csv
    import re

    from tests.conftest import banking77

    def norm(text: str) -> str:
        return re.sub(r"[^a-z0-9 ]", "", text.lower()).strip()

    with banking77("test.csv").open(newline="") as handle:
        test = {norm(row["text"]) for row in csv.DictReader(handle)}
    texts = [t for i in load_intents(INTENTS).intents for t in (i.spec.description, *i.spec.examples)]
    assert [t for t in texts if norm(t) in test] == []
