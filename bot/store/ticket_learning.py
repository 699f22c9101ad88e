"""What resolving a handoff ticket may teach the bot: the conversation's customer messages, the default
pick (the customer's question), and the rule that nothing is taught to an intent that always hands off."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, func, select

from bot.errors import InvalidInputError
from bot.store.models import DecisionLog, HandoffTicket, Message

# Escalations as an agent reads them next to a message they might teach the bot
ESCALATED = {
    "angry": "escalated: angry",
    "repeated_fallback": "escalated: second message nothing answered",
    "with_agent": "sent while a person had the chat",
    "awaiting_agent": "sent while waiting for a person",
}
LEARNABLE_MAX = 100  # the latest customer messages offered to teach; older ones are rarely the question


@dataclass(frozen=True)
class Learnable:
    """A customer message of a ticket's conversation that resolving it could teach.

    `default` marks the one taught unless the agent picks others: the customer's question, that is the
    latest message before the handoff that did not ask for a person, escalate or pick a clarify option.
    `reason` says why it is (or is not) that pick.
    """

    message_id: int
    decision_id: int | None
    text: str
    default: bool
    reason: str
    route: str | None
    intent: str | None
    created_at: datetime


def never_learned_into(intent: str) -> str:
    """Why no customer message is learned into an intent that always hands off (`handoff: true`)."""
    return (
        f"'{intent}' always hands off to a person, so no customer message is learned into it: as its "
        "examples, questions like them would be handed off too"
    )


def learnable(
    session: Session, ticket: HandoffTicket, *, handoff_intents: Collection[str]
) -> list[Learnable]:
    """The customer messages resolving `ticket` may teach, oldest first, with the default pick marked.

    Messages since the conversation's previous resolved ticket and up to this one's resolution; a
    handoff request, an escalated message or a clarify pick is never the default: it is not the question.
    """
    messages = _ticket_messages(session, ticket)
    ids = [m.id for m in messages if m.id is not None]
    decisions = {
        d.message_id: d
        for d in session.exec(select(DecisionLog).where(col(DecisionLog.message_id).in_(ids))).all()
    }
    opened_at = None  # the message that handed off
    if ticket.decision_id is not None:
        opened_by = session.get(DecisionLog, ticket.decision_id)
        opened_at = opened_by.message_id if opened_by is not None else None
    reasons = {m.id: _not_the_question(decisions.get(m.id), handoff_intents) for m in messages}
    before = [
        m for m in messages if reasons[m.id] is None and (opened_at is None or (m.id or 0) <= opened_at)
    ]
    pick = before[-1].id if before else None
    out = []
    for message in messages:
        assert message.id is not None
        decision = decisions.get(message.id)
        reason = reasons[message.id]
        if message.id == pick:
            reason = "the customer's question: the latest message before the handoff"
        elif reason is None:
            reason = "after the handoff" if pick is not None and message.id > pick else "an earlier message"
        out.append(
            Learnable(
                message_id=message.id,
                decision_id=message.decision_id,
                text=message.text,
                default=message.id == pick,
                reason=reason,
                route=decision.route if decision is not None else None,
                intent=decision.intent if decision is not None else None,
                created_at=message.created_at,
            )
        )
    return out


def _ticket_messages(session: Session, ticket: HandoffTicket) -> list[Message]:
    """The customer messages since the conversation's previous resolved ticket and up to this one's
    resolution (the latest `LEARNABLE_MAX`), oldest first."""
    query = select(Message).where(Message.conversation_id == ticket.conversation_id, Message.role == "user")
    earlier = session.exec(
        select(func.max(col(HandoffTicket.resolved_at))).where(
            HandoffTicket.conversation_id == ticket.conversation_id,
            col(HandoffTicket.id) < ticket.id,
            col(HandoffTicket.resolved_at).is_not(None),
        )
    ).one()
    if earlier is not None:
        query = query.where(col(Message.created_at) > earlier)
    if ticket.resolved_at is not None:
        query = query.where(col(Message.created_at) <= ticket.resolved_at)
    return list(reversed(session.exec(query.order_by(col(Message.id).desc()).limit(LEARNABLE_MAX)).all()))


def _not_the_question(decision: DecisionLog | None, handoff_intents: Collection[str]) -> str | None:
    """Why a message with this decision is never the default pick (escalated, a handoff request, a
    clarify pick), or None."""
    if decision is None:
        return None
    if decision.escalation is not None:
        return ESCALATED.get(decision.escalation, f"escalated: {decision.escalation}")
    if decision.intent is not None and decision.intent in handoff_intents:
        return "asked for a person"
    if decision.chosen:
        return "a pick from the bot's options"
    return None


def _chosen_messages(session: Session, ticket: HandoffTicket, ids: Sequence[int]) -> list[Message]:
    """The customer messages the agent picked to teach, in the order given; 422 for anything else."""
    wanted = list(dict.fromkeys(ids))
    found = {
        m.id: m
        for m in session.exec(select(Message).where(col(Message.id).in_(wanted))).all()
        if m.conversation_id == ticket.conversation_id and m.role == "user"
    }
    foreign = [i for i in wanted if i not in found]
    if foreign:
        raise InvalidInputError(
            "learn",
            f"not customer messages of ticket {ticket.id}'s conversation: {', '.join(map(str, foreign))}",
        )
    return [found[i] for i in wanted]


def to_teach(
    session: Session,
    ticket: HandoffTicket,
    intent: str | None,
    learn: Sequence[int] | None,
    handoff_intents: Collection[str],
) -> tuple[list[tuple[str, int | None]], str]:
    """The (text, decision id) pairs resolving teaches, and why nothing is, should the list be empty.

    An intent that always hands off is never taught a customer message, whatever the client sends: its
    examples would hand those questions off too (a charge question learned as 'human_agent' then asks
    which of the two it is). An explicit `learn` list is refused with why (422); the default learns nothing.
    """
    if learn and intent is None:
        raise InvalidInputError("learn", "say which intent the messages are examples of ('intent')")
    if intent is None:
        return [], "no intent given: nothing is learned without one"
    if intent in handoff_intents:
        if learn:
            raise InvalidInputError(
                "learn",
                f"{never_learned_into(intent)}. Resolve with the intent the customer's question was about "
                f"to teach the bot, or send learn: [] to close the ticket as '{intent}' without teaching",
            )
        return [], f"nothing learned: {never_learned_into(intent)}"
    if learn is not None:
        chosen = [(m.text, m.decision_id) for m in _chosen_messages(session, ticket, learn)]
        return chosen, "learn was empty: nothing learned"
    messages = learnable(session, ticket, handoff_intents=handoff_intents)
    return [(m.text, m.decision_id) for m in messages if m.default], "no customer message to learn from"
