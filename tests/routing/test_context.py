"""Context helps a message that cannot stand alone and never replaces one that can (our two-turn set)."""

from __future__ import annotations

import csv
import sys

import pytest

from bot.routing.context import RouteContext
from bot.routing.engine import Engine
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts" / "bench"))
from bench_follow_ups import measure, right

ROWS = list(csv.DictReader((ROOT / "scripts" / "bench" / "data" / "two_turns.csv").open(encoding="utf-8")))


def test_a_change_of_topic_keeps_its_own_reading(demo_engine: Engine) -> None:
    """The issue's conversation: a clarify and a knowledge-base answer are readings of their own."""
    top_up = demo_engine.route(
        "what happened to my top up", RouteContext(previous_user_text="My new card still hasn't arrived")
    )
    assert top_up.route == "clarify" and not top_up.context_used
    chequebook = demo_engine.route(
        "Is there a chequebook I can order?", RouteContext(previous_user_text="what happened to my top up")
    )
    assert chequebook.route == "retrieve" and not chequebook.context_used


@pytest.mark.slow
def test_context_helps_follow_ups_and_breaks_no_topic_change(demo_engine: Engine) -> None:
    figures = measure(demo_engine, ROWS)
    assert figures["topic_change"]["with_context"] == figures["topic_change"]["without_context"] >= 0.8
    assert figures["follow_up"]["with_context"] >= 0.5 > figures["follow_up"]["without_context"]
    changed = [r for r in ROWS if r["kind"] == "topic_change"]
    for row in changed:  # each one: context never turns a right answer wrong
        alone = right(demo_engine.route(row["second"]), row["expected"])
        together = right(
            demo_engine.route(row["second"], RouteContext(previous_user_text=row["first"])), row["expected"]
        )
        assert together or not alone, row
