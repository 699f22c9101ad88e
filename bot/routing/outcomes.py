"""What a customer gets from a decision, as one comparable label, and whether it agrees with a review.

Shared by the routing diff (`bot.tuning.diff`) and the shadow comparison (`bot.insights.shadow`), which
compare decisions of two versions: they must call the same thing a change.
"""

from __future__ import annotations


def outcome(route: str, intent: str | None, source: str | None = None) -> str:
    """'answer card_arrival', 'handoff human_agent', 'retrieve faq.yaml#fees', 'clarify', 'handoff'."""
    if route in ("answer", "handoff") and intent:
        return f"{route} {intent}"
    if route == "retrieve" and source:
        return f"retrieve {source}"
    return route


def agrees(
    route: str,
    intent: str | None,
    *,
    verdict: str | None,
    logged_route: str,
    logged_intent: str | None,
    meant: str | None,
) -> bool | None:
    """Whether a decision (route, intent) agrees with a logged decision's latest review; None unreviewed.

    'correct' confirms the logged route and intent; 'wrong' with an intent wants that intent taken;
    'wrong' without one (a new intent is needed) wants no canned answer.
    """
    if verdict == "correct":
        return (route, intent) == (logged_route, logged_intent)
    if verdict == "wrong":
        if meant is not None:
            return route in ("answer", "handoff") and intent == meant
        return route != "answer"
    return None
