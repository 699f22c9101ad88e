"""Follow-ups: a short message that fails on its own may be read together with the previous user message.

"and when will it get here?" means nothing alone; after "I ordered a card last week" it is a card-delivery
question. Pure rules over decisions, so they are tested without an encoder or a database.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.routing.policy import Decision

FOLLOW_UP_MAX_WORDS = 8  # a follow-up this short may lean on the previous user turn


@dataclass(frozen=True)
class RouteContext:
    """What the conversation knows that may help route a message."""

    previous_user_text: str | None = None
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def wants_context(decision: Decision, text: str, context: RouteContext) -> bool:
    """Whether to re-score `text` together with the previous user message.

    Only when the message has no reading of its own: context may help a message that cannot stand
    alone, never replace one that can. An accepted intent ("talk to a person"), a clarify question ("how
    do I top up": which of two intents) and a knowledge-base answer ("is there a chequebook I can order?")
    are all readings; only a handoff for want of any is not.
    """
    return (
        decision.route == "handoff"
        and decision.intent is None
        and bool(context.previous_user_text)
        and len(text.split()) <= FOLLOW_UP_MAX_WORDS
    )


def read_together(alone: Decision, together: Decision) -> Decision:
    """The decision for the follow-up: the combined reading when it is a confident answer, else `alone`."""
    if together.route != "answer":
        return alone
    return dataclasses.replace(
        together, context_used=True, reason=f"{together.reason} (read together with the previous message)"
    )
