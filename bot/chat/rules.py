"""Conversation rules: what a turn means given the conversation so far. Plain code over a `Conversation`
row (no database, no encoder), so each rule is tested on its own.

- a conversation a person holds (an agent claimed its ticket) keeps the bot quiet;
- while a ticket waits for a person (no agent has claimed it yet) the customer is never left in silence
  and no second ticket opens: the bot keeps answering what it answers confidently (an intent's answer, a
  knowledge passage), each answer followed by a line that a person is on the way, and answers anything
  else (a clarify, nothing found, an intent that hands off, an angry message) with a short line that a
  member of the team will reply here;
- an angry message, or a second fallback in a row, escalates to a person. A fallback is a message nothing
  answered: a retrieve with no passage (as "none of these" is) or a handoff no intent took. A knowledge
  passage that answered is not a fallback; a clarify question neither counts nor breaks the streak, so
  "none of these" twice, with the question between them, hands off;
- a clarify pick must be one of the options the bot offered, or "none of these" (`NONE_OF_THESE`): the bot
  then asks the customer to say it in other words, and counts it as a fallback (a second one hands off);
- an angry customer is handed off with an apology, not the everyday handoff line;
- a handoff's reason says it was handed to a person and why, then what routing alone had read, so an
  agent's ticket header describes what happened;
- what the next turn needs (fallback streak, open clarify options, the previous message) is remembered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from bot.config import Settings
from bot.errors import InvalidInputError
from bot.routing.policy import Decision
from bot.routing.state import RoutingState
from bot.store.turns import WAITING, WITH_AGENT, ConversationState, PendingWrite

ESCALATE_AFTER_FALLBACKS = 2
# The clarify answer "something else": a choice no intent can take (an intent of that name, if a folder
# defines one, is picked as itself when it is offered).
NONE_OF_THESE = "none_of_these"
NONE_OF_THESE_LABEL = "Something else"
REPHRASE_MESSAGE = (
    "No problem. Could you tell me in a few words what you need? If I still can't help, I'll pass you to "
    "a member of our team."
)
# An angry customer hears that they were heard before they hear what happens next.
ANGRY_HANDOFF_MESSAGE = (
    "I'm sorry this has been so frustrating. I've asked a member of our team to take over; they'll reply "
    "here as soon as they can."
)
# While a ticket waits for a person: after each answer the bot is sure of, and instead of anything else.
PERSON_ON_THE_WAY = "A member of our team is on the way and will reply here."
PERSON_WILL_REPLY = "A member of our team will read this and reply here as soon as they can."


class ConversationRules:
    """The rules with the settings they read (anger threshold, handoff message)."""

    def __init__(self, settings: Settings) -> None:
        self.anger_threshold = settings.anger_threshold
        self.handoff_message = settings.handoff_message

    def for_stored_turn(
        self, conversation: ConversationState, pending: PendingWrite
    ) -> tuple[Decision, str | None]:
        """The rules as the turn writer applies them (`bot.store.turns.TurnRules`).

        A spooled turn was already answered while the database was down: it is stored as sent, and only
        remembered, not decided again.
        """
        if pending.offline:
            self.remember(conversation, pending.decision, pending.text, pending.chosen)
            return pending.decision, pending.escalation
        return self.apply(conversation, pending.decision, pending.text, pending.chosen)

    def apply(
        self, conversation: ConversationState, decision: Decision, text: str, chosen: bool
    ) -> tuple[Decision, str | None]:
        """Quiet while a person holds the chat, a person-on-the-way line while a ticket waits; else
        escalate angry messages and repeated fallbacks."""
        escalation = None
        if conversation.status == WITH_AGENT:
            escalation = "with_agent"
            decision = dataclasses.replace(
                decision,
                route="handoff",
                answer="",
                options=(),
                reason="An agent has claimed the conversation; the bot stays quiet.",
            )
        elif conversation.status == WAITING:
            escalation = "awaiting_agent"
            decision = self.while_waiting(decision)
        elif decision.anger > self.anger_threshold:
            escalation = "angry"
            decision = self.escalate(
                decision,
                f"the message reads as an angry complaint (anger {decision.anger:.2f}).",
                apologise=True,
            )
        elif (
            decision.route == "retrieve"
            and is_fallback(decision)
            and conversation.fallback_streak + 1 >= ESCALATE_AFTER_FALLBACKS
        ):
            # an unmatched handoff is already with a person; a second message nothing answered should be too
            escalation = "repeated_fallback"
            decision = self.escalate(decision, "the second message in a row that nothing answered.")
        self.remember(conversation, decision, text, chosen)
        return decision, escalation

    def while_waiting(self, decision: Decision) -> Decision:
        """A ticket waits for a person: answer what the bot is sure of and say a person is on the way;
        anything else gets a line that a member of the team will reply here (the ticket stays the one)."""
        if answers_confidently(decision) and decision.anger <= self.anger_threshold:
            return dataclasses.replace(
                decision,
                answer=f"{decision.answer}\n\n{PERSON_ON_THE_WAY}",
                reason=f"{decision.reason} A person has been asked to join, so the answer says they are on the way.",
            )
        return dataclasses.replace(
            decision,
            route="handoff",
            options=(),
            answer=PERSON_WILL_REPLY,
            reason=(
                "A person has been asked to join and none has claimed the conversation yet; the bot only "
                f"says they will reply here. Routing alone read: {decision.reason}"
            ),
        )

    @staticmethod
    def remember(conversation: ConversationState, decision: Decision, text: str, chosen: bool) -> None:
        """Update what the next turn needs: fallback streak, open clarify options, context."""
        if is_fallback(decision):
            conversation.fallback_streak += 1
        elif decision.route != "clarify":  # a question back is not an answer: the streak goes on after it
            conversation.fallback_streak = 0
        clarifying = decision.route == "clarify"
        conversation.pending_options = list(decision.options) if clarifying else []
        conversation.pending_text = text if clarifying else None
        if not chosen:  # a picked option answers the earlier question; that stays the context
            conversation.last_user_text = text

    def escalate(self, decision: Decision, why: str, apologise: bool = False) -> Decision:
        """Hand off to a person; a handoff intent the router already chose keeps its own answer.

        `apologise` (an angry customer) says sorry instead of the everyday handoff line, unless the
        router handed off to an intent whose own answer was written for exactly this. The reason says
        what happened first (an agent reads it as the ticket's header), then what routing alone read.
        """
        if decision.route == "handoff" and (decision.intent is not None or not apologise):
            answer = decision.answer
        else:
            answer = ANGRY_HANDOFF_MESSAGE if apologise else self.handoff_message
        return dataclasses.replace(
            decision,
            route="handoff",
            options=(),
            answer=answer,
            reason=f"Handed to a person: {why} Routing alone read: {decision.reason}",
        )


def answers_confidently(decision: Decision) -> bool:
    """The bot answers this itself: an intent's answer, or a knowledge passage."""
    return decision.route == "answer" or (decision.route == "retrieve" and decision.passage is not None)


def is_fallback(decision: Decision) -> bool:
    """Nothing answered the message: no intent took it and no passage answered it (a retrieve without a
    passage, as "none of these" is, or a handoff no intent took). A clarify question is not one."""
    return decision.route in ("retrieve", "handoff") and decision.intent is None and decision.passage is None


def none_of_these(question: str, offered: Sequence[str], state: RoutingState) -> Decision:
    """The decision when the customer answers a clarify question with "something else".

    No intent took the message, so it is a fallback (route `retrieve`, no intent): the customer is asked
    to rephrase, and `ConversationRules.apply` hands a second fallback in a row to a person.
    """
    return Decision(
        route="retrieve",
        intent=None,
        confidence=0.0,
        candidates=(),
        reason=(
            f"The customer said none of the options offered for '{question}' fit "
            f"({', '.join(offered) or 'none recorded'}); asked them to rephrase."
        ),
        threshold=state.policy.threshold,
        margin=state.policy.margin,
        answer=REPHRASE_MESSAGE,
        model_id=state.model_id,
        intents_version=state.version,
        calibration_id=state.calibration_id,
    )


def check_choice(choice: str, offered: Sequence[str]) -> None:
    """A clarify pick must be one of the options the bot offered (or, offline, any known intent), or
    `NONE_OF_THESE` while a clarify question is open."""
    if choice == NONE_OF_THESE and offered:
        return
    if choice not in offered:
        allowed = ", ".join(offered) if offered else "none: there is no open clarify question"
        raise InvalidInputError("choice", f"'{choice}' was not offered; allowed: {allowed}")
