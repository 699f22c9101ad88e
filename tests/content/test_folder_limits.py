"""A folder's size is bounded (intents, examples per intent and in all, characters per example), so
self-training's cost is (issue #26); each limit fails with one line: where, which field, what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.content import intents as intents_module
from bot.content.intents import MAX_EXAMPLE_CHARS, MAX_EXAMPLES_PER_INTENT, load_intents
from bot.errors import IntentFileError


def error_of(folder: Path, text: str) -> str:
    (folder / "a.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(IntentFileError) as caught:
        load_intents(folder)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 300
    return message


def examples(count: int) -> str:
    return "[" + ", ".join(f'"example {i}"' for i in range(count)) + "]"


def test_examples_per_intent(tmp_path: Path) -> None:
    text = (
        f"intents:\n  - name: a\n    description: d\n    examples: {examples(MAX_EXAMPLES_PER_INTENT + 1)}\n"
    )
    assert error_of(tmp_path, text) == (
        f"{tmp_path / 'a.yaml'}:4: 'examples' has 201 items; at most 200 are allowed per intent"
    )
    (tmp_path / "a.yaml").write_text(text.replace(', "example 200"', ""), encoding="utf-8")
    assert len(load_intents(tmp_path).intents[0].spec.examples) == MAX_EXAMPLES_PER_INTENT


def test_characters_per_example(tmp_path: Path) -> None:
    long = "x" * (MAX_EXAMPLE_CHARS + 1)
    message = error_of(
        tmp_path, f'intents:\n  - name: a\n    description: d\n    examples:\n      - ok\n      - "{long}"\n'
    )
    assert message.startswith(
        f"{tmp_path / 'a.yaml'}:6: 'examples.1': string should have at most 1000 characters"
    )


def test_intents_in_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intents_module, "MAX_INTENTS", 3)  # the real limit (2,000) works the same way
    text = "intents:\n" + "".join(f"  - name: i{i}\n    description: d\n" for i in range(5))
    assert error_of(tmp_path, text) == (
        f"{tmp_path / 'a.yaml'}:8: the folder has 5 intents, at most 3 are allowed ('i3' is the first past "
        "the limit): merge intents that share an answer"
    )


def test_examples_in_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intents_module, "MAX_EXAMPLES", 5)
    text = "intents:\n" + "".join(
        f"  - name: i{i}\n    description: d\n    examples: {examples(2)}\n" for i in range(4)
    )
    assert error_of(tmp_path, text) == (
        f"{tmp_path / 'a.yaml'}:8: 'examples' of 'i2' take the folder past 5 examples in all, the most allowed "
        "(the folder has 8): keep the clearest few per intent"
    )


def test_the_limits_leave_room() -> None:
    """Far above the shipped folders (82 intents, 246 examples; HWU64's 64 and 128)."""
    assert intents_module.MAX_INTENTS >= 2000 and intents_module.MAX_EXAMPLES >= 10_000
