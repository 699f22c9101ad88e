"""Follow-ups against topic changes: the second turn of two-turn conversations, with and without context.

    python scripts/bench/bench_follow_ups.py [--intents intents] [--data scripts/bench/data/two_turns.csv]

`scripts/bench/data/two_turns.csv` is our own set on the demo bank (no BANKING77 text): 15 true follow-ups
("and when will it get here?" after a card question) and 15 changes of topic (a second question that
stands alone, including ones the knowledge base answers and one the bot should clarify). A second turn
is right when its final decision is the expected intent, or the expected route (`retrieve`, `clarify`).
Prints accuracy per kind, with the previous message as context and without it.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from bot.config import Settings
from bot.routing.context import RouteContext
from bot.routing.engine import Engine
from bot.routing.policy import Decision

ROOT = Path(__file__).resolve().parents[2]


def right(decision: Decision, expected: str) -> bool:
    """The expected intent, or the expected route for `retrieve` and `clarify`."""
    if expected in ("retrieve", "clarify"):
        return decision.route == expected
    return decision.intent == expected and decision.route in ("answer", "handoff")


def measure(engine: Engine, rows: list[dict[str, str]]) -> dict[str, dict[str, float]]:
    """Accuracy per kind, with and without the previous message."""
    result: dict[str, dict[str, float]] = {}
    for kind in sorted({r["kind"] for r in rows}):
        mine = [r for r in rows if r["kind"] == kind]
        alone = [engine.route(r["second"]) for r in mine]
        together = [engine.route(r["second"], RouteContext(previous_user_text=r["first"])) for r in mine]
        result[kind] = {
            "n": len(mine),
            "without_context": sum(right(d, r["expected"]) for d, r in zip(alone, mine, strict=True))
            / len(mine),
            "with_context": sum(right(d, r["expected"]) for d, r in zip(together, mine, strict=True))
            / len(mine),
        }
    return result


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--intents", type=Path, default=ROOT / "intents")
    parser.add_argument("--data", type=Path, default=ROOT / "scripts" / "bench" / "data" / "two_turns.csv")
    args = parser.parse_args()
    engine = Engine(Settings(intents_dir=args.intents, self_train=False))
    engine.load()
    with args.data.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    print("| second turn | n | accuracy without context | with context |")
    print("|---|---|---|---|")
    for kind, figures in measure(engine, rows).items():
        print(
            f"| {kind} | {figures['n']:.0f} | {figures['without_context']:.2f} | {figures['with_context']:.2f} |"
        )


if __name__ == "__main__":
    main()
