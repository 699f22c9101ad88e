"""A decision's answer text: the intent's template, the knowledge passage, a clarify question or the
hand-off notice."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from bot.errors import TemplateError
from bot.routing.policy import Decision
from bot.routing.state import RoutingState

log = logging.getLogger(__name__)


def render(
    decision: Decision, text: str, metadata: Mapping[str, Any], state: RoutingState, handoff_message: str
) -> Decision:
    """`decision` with its `answer` filled from `state`; a template that fails hands off instead."""
    intent = state.intents.get(decision.intent) if decision.intent else None
    if decision.route in ("answer", "handoff") and intent is not None and intent.template is not None:
        try:
            answer = intent.template.render(message=text, intent=intent.name, metadata=metadata)
        except TemplateError as exc:  # e.g. metadata of an unexpected type: a person answers instead
            log.warning("answer template of '%s' failed: %s", intent.name, exc)
            return dataclasses.replace(
                decision,
                route="handoff",
                answer=handoff_message,
                reason=f"The answer template of '{intent.name}' failed ({exc}), so a person takes it.",
            )
    elif decision.route == "handoff":
        answer = handoff_message
    elif decision.route == "retrieve" and decision.passage is not None:
        answer = state.passages[decision.passage].text
    else:
        offered = (state.intents.get(name) for name in decision.options)
        labels = [intent.spec.label for intent in offered if intent is not None]
        answer = "Did you mean: " + ", or ".join(labels) + "?"
    return dataclasses.replace(decision, answer=answer)
