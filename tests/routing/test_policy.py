"""The decision policy as tables: candidates, rules and thresholds in; route, intent and options out."""

from __future__ import annotations

import pytest

from bot.routing.policy import Candidate, IntentRule, Policy, decide

POLICY = Policy(threshold=0.5, margin=0.1, retrieval_threshold=0.6, max_clarify_options=3, knowledge_lead=2.0)


def cands(*pairs: tuple[str, float]) -> list[Candidate]:
    return [Candidate(intent=name, score=conf, confidence=conf) for name, conf in pairs]


RULES = {
    "card_arrival": IntentRule(),
    "exchange_rate": IntentRule(),
    "fees": IntentRule(),
    "strict": IntentRule(threshold=0.9),
    "lenient": IntentRule(threshold=0.3),
    "fraud": IntentRule(handoff=True),
    "no_answer": IntentRule(has_answer=False),
}


@pytest.mark.parametrize(
    ("candidates", "retrieval", "route", "intent", "options"),
    [
        # clear winner above the default threshold
        (cands(("card_arrival", 0.8), ("exchange_rate", 0.3)), None, "answer", "card_arrival", ()),
        # exactly at the threshold passes; exactly at the margin is no longer "close"
        (cands(("card_arrival", 0.5), ("exchange_rate", 0.3)), None, "answer", "card_arrival", ()),
        (cands(("card_arrival", 0.8), ("exchange_rate", 0.7)), None, "answer", "card_arrival", ()),
        # runner-up within the margin: clarify between them
        (
            cands(("card_arrival", 0.8), ("exchange_rate", 0.75)),
            None,
            "clarify",
            None,
            ("card_arrival", "exchange_rate"),
        ),
        # three close ones: all offered, capped by max_clarify_options
        (
            cands(("card_arrival", 0.8), ("exchange_rate", 0.78), ("fees", 0.75), ("lenient", 0.74)),
            None,
            "clarify",
            None,
            ("card_arrival", "exchange_rate", "fees"),
        ),
        # below threshold: knowledge passage good enough -> retrieve, else handoff
        (cands(("card_arrival", 0.4), ("exchange_rate", 0.1)), 0.7, "retrieve", None, ()),
        (cands(("card_arrival", 0.4), ("exchange_rate", 0.1)), 0.6, "retrieve", None, ()),
        (cands(("card_arrival", 0.4), ("exchange_rate", 0.1)), 0.59, "handoff", None, ()),
        (cands(("card_arrival", 0.4), ("exchange_rate", 0.1)), None, "handoff", None, ()),
        # per-intent thresholds override the default both ways
        (cands(("strict", 0.85), ("fees", 0.1)), None, "handoff", None, ()),
        (cands(("strict", 0.95), ("fees", 0.1)), None, "answer", "strict", ()),
        (cands(("lenient", 0.35), ("fees", 0.1)), None, "answer", "lenient", ()),
        # accepted intents that need a person keep their intent
        (cands(("fraud", 0.9), ("fees", 0.2)), None, "handoff", "fraud", ()),
        (cands(("no_answer", 0.9), ("fees", 0.2)), None, "handoff", "no_answer", ()),
        # a single candidate, and none at all
        (cands(("card_arrival", 0.9)), None, "answer", "card_arrival", ()),
        ([], 0.9, "retrieve", None, ()),
        ([], None, "handoff", None, ()),
    ],
)
def test_decision_table(candidates, retrieval, route, intent, options) -> None:
    decision = decide(candidates, RULES, POLICY, retrieval)
    assert (decision.route, decision.intent, decision.options) == (route, intent, options)
    assert decision.reason.endswith(".") and len(decision.reason) > 20


def test_decision_records_thresholds_used() -> None:
    decision = decide(cands(("strict", 0.95), ("fees", 0.1)), RULES, POLICY, 0.2)
    assert (decision.threshold, decision.margin, decision.retrieval_score) == (0.9, 0.1, 0.2)
    assert decision.confidence == 0.95


def test_decision_is_frozen() -> None:
    decision = decide(cands(("card_arrival", 0.9)), RULES, POLICY)
    with pytest.raises(AttributeError):
        decision.route = "handoff"  # type: ignore[misc]


def test_importing_router_pulls_in_no_heavy_library() -> None:
    import subprocess
    import sys

    code = "import sys, bot.routing.policy; heavy = {'torch', 'faiss', 'fastapi', 'sentence_transformers'} & set(sys.modules); print(sorted(heavy))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("top_score", "retrieval", "route"),
    [
        (0.75, 0.95, "retrieve"),  # the passage is 0.20 closer than the accepted intent: it answers
        (0.75, 0.85, "answer"),  # 0.10 is not enough of a lead
        (0.75, 0.55, "answer"),  # below the retrieval threshold
    ],
)
def test_a_knowledge_passage_far_closer_than_the_intent_wins(
    top_score: float, retrieval: float, route: str
) -> None:
    policy = Policy(
        threshold=0.5, margin=0.1, retrieval_threshold=0.6, max_clarify_options=3, knowledge_lead=0.15
    )
    candidates = [Candidate("card_arrival", top_score, 0.9), Candidate("exchange_rate", 0.3, 0.2)]
    decision = decide(candidates, RULES, policy, retrieval)
    assert decision.route == route
    if route == "retrieve":
        assert decision.intent is None and "closer than the best intent" in decision.reason
