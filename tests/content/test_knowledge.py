"""Knowledge base: FAQ YAML entries and Markdown pages split at headings."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.content.knowledge import load_knowledge, split_markdown
from bot.errors import KnowledgeFileError
from tests.conftest import INTENTS, write


def test_markdown_is_split_at_headings_not_inside_code(tmp_path: Path) -> None:
    page = write(
        tmp_path / "fees.md",
        "# Fees\nIntro.\n\n## Card fees\nNo card fee.\nReally.\n\n## Transfers\n```\n# not a heading\n```\nFree.\n",
    )
    passages = split_markdown(page)
    assert [(p.title, p.line, p.source) for p in passages] == [
        ("Fees", 1, "fees.md#fees"),
        ("Fees: Card fees", 4, "fees.md#card-fees"),
        ("Fees: Transfers", 8, "fees.md#transfers"),
    ]
    assert passages[1].text == "No card fee. Really."
    assert "# not a heading" in passages[2].text


def test_faq_entries_and_their_errors(tmp_path: Path) -> None:
    write(tmp_path / "faq.yaml", "entries:\n  - question: Q?\n    answer: A.\n")
    (passage,) = load_knowledge(tmp_path)
    assert (passage.title, passage.text, passage.source, passage.line) == ("Q?", "A.", "faq.yaml#q", 2)
    bad = write(tmp_path / "faq.yaml", "entries:\n  - question: Q?\n    answr: A.\n")
    with pytest.raises(
        KnowledgeFileError,
        match=rf"^{bad}:3: unknown key 'answr' \(did you mean 'answer'\?\); allowed: question, answer, source$",
    ):
        load_knowledge(tmp_path)


def test_absent_folder_is_an_empty_knowledge_base(tmp_path: Path) -> None:
    assert load_knowledge(tmp_path / "knowledge") == ()


def test_shipped_knowledge_base_is_substantial() -> None:
    passages = load_knowledge(INTENTS / "knowledge")
    faq = [p for p in passages if p.path.suffix == ".yaml"]
    pages = {p.path for p in passages if p.path.suffix == ".md"}
    assert len(faq) >= 30 and len(pages) >= 3
    assert all(p.text and p.source for p in passages)


def test_every_faq_question_reaches_its_own_entry(demo_engine) -> None:
    """Asked word for word, each of the shipped FAQ questions is answered by its own entry."""
    questions = [(i, p) for i, p in enumerate(demo_engine.state.passages) if p.path.suffix == ".yaml"]
    assert len(questions) == 42  # + freezing a card and what a replacement costs (#27 item 7)
    missed = [
        (p.title, d.route, d.intent)
        for i, p in questions
        if (d := demo_engine.route(p.title)).route != "retrieve" or d.passage != i
    ]
    assert missed == []
