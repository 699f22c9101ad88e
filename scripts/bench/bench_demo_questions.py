"""The demo bank's own questions (#27 item 7): our plain bank questions routed through an intents folder.

    python scripts/bench/bench_demo_questions.py [--intents intents] [--data tests/data/demo_questions.yaml]

`tests/data/demo_questions.yaml` holds the demo page's "Try:" prompts and plain bank questions in our own
words, each with what the bot must do: `route` and `intent` for an answer or a handoff, the passage's
`source` for a knowledge-base answer, the offered intents for a clarify question. Prints every miss
(expected, got, and the engine's reason) and how many are right. `tests/content/test_demo_questions.py`
imports this and requires all of them on the shipped folder. The encoder is the settings' as for every
command (`BOT_ENCODER_BACKEND`: the server's onnx-int8 by default; the test's engine uses torch).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from bot.config import get_settings
from bot.routing.engine import Engine
from bot.routing.policy import Decision

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = ROOT / "tests" / "data" / "demo_questions.yaml"


def load_questions(path: Path = QUESTIONS) -> list[dict[str, Any]]:
    """The questions of the set, in file order."""
    questions: list[dict[str, Any]] = YAML(typ="safe").load(path.read_text(encoding="utf-8"))["questions"]
    return questions


def expected(question: dict[str, Any]) -> tuple[str, ...]:
    """What the question must get: (route, intent), (retrieve, source) or (clarify, *options)."""
    route = question["route"]
    if route == "retrieve":
        return (route, question["source"])
    if route == "clarify":
        return (route, *sorted(question["options"]))
    return (route, question["intent"])


def outcome(decision: Decision) -> tuple[str, ...]:
    """The same shape for what the engine decided."""
    if decision.route == "retrieve":
        return ("retrieve", decision.source or "")
    if decision.route == "clarify":
        return ("clarify", *sorted(decision.options))
    return (decision.route, decision.intent or "-")


def misses(engine: Engine, questions: list[dict[str, Any]]) -> list[str]:
    """One line per question the engine gets wrong (all routed in one batch), empty when all are right."""
    decisions = engine.route_many([q["text"] for q in questions])
    return [
        f"{q['text']!r}: expected {expected(q)}, got {outcome(d)} ({d.reason})"
        for q, d in zip(questions, decisions, strict=True)
        if outcome(d) != expected(q)
    ]


def main() -> None:
    """Route the set through the folder and print the misses and the count."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--intents", type=Path, default=ROOT / "intents")
    parser.add_argument("--data", type=Path, default=QUESTIONS)
    args = parser.parse_args()
    engine = Engine(get_settings().with_overrides(intents_dir=args.intents))
    engine.load()
    questions = load_questions(args.data)
    wrong = misses(engine, questions)
    for line in wrong:
        print("miss:", line)
    print(f"{len(questions) - len(wrong)} of {len(questions)} right ({args.intents}, {engine.model_id})")


if __name__ == "__main__":
    main()
