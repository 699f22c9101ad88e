"""The demo bank answers its own questions (#27 item 7): every "Try:" prompt of the demo page and a set
of plain bank questions in our own words (tests/data/demo_questions.yaml), routed through the demo engine
in one batch (scripts/bench/bench_demo_questions.py prints the same for any folder)."""

from __future__ import annotations

import csv
import html
import re
import sys

from bot.content.intents import load_intents
from bot.routing.engine import Engine
from tests.conftest import INTENTS, ROOT, banking77

sys.path.insert(0, str(ROOT / "scripts" / "bench"))
from bench_demo_questions import load_questions, misses

QUESTIONS = load_questions()
DEMO_PAGE = ROOT / "bot" / "web" / "widget" / "demo.html"


def norm(text: str) -> str:
    """A text as the BANKING77 check compares them: lowercase letters, digits and spaces."""
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).strip()


def test_the_set_holds_every_try_prompt_of_the_demo_page() -> None:
    page = DEMO_PAGE.read_text(encoding="utf-8")
    prompts = {html.unescape(p) for p in re.findall(r'class="try">Try: <q>(.*?)</q>', page)}
    assert prompts, "the demo page has no Try: prompts any more; update this test"
    assert prompts == {q["text"] for q in QUESTIONS if q.get("try")}
    assert len(QUESTIONS) >= 40


def test_the_questions_are_not_the_folders_own_examples() -> None:
    """Held-out questions: none is one of the intents' examples, so the set measures what the folder
    understands, not what it repeats."""
    examples = {norm(e) for intent in load_intents(INTENTS).intents for e in intent.spec.examples}
    assert [q["text"] for q in QUESTIONS if norm(q["text"]) in examples] == []


def test_no_question_is_a_banking77_test_message() -> None:
    with banking77("test.csv").open(newline="", encoding="utf-8") as handle:
        test = {norm(row["text"]) for row in csv.DictReader(handle)}
    assert [q["text"] for q in QUESTIONS if norm(q["text"]) in test] == []


def test_the_demo_bank_answers_its_own_questions(demo_engine: Engine) -> None:
    wrong = misses(demo_engine, QUESTIONS)
    assert wrong == [], "\n".join(wrong)
