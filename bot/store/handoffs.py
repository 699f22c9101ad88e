"""Handoff tickets: list, claim (exclusively), reply and resolve."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine as Database
from sqlalchemy import update
from sqlmodel import Session, col, func, select

from bot.errors import ConflictError, InvalidInputError, NotFoundError
from bot.store.db import session_scope
from bot.store.examples import remember
from bot.store.models import Conversation, DecisionLog, HandoffTicket, Message, utcnow

STATUSES = ("open", "claimed", "resolved")


def list_tickets(
    database: Database, *, status: str | None, limit: int, offset: int
) -> tuple[list[HandoffTicket], int]:
    """Tickets, oldest first (first come, first served), with the total for paging."""
    if status is not None and status not in STATUSES:
        raise InvalidInputError(
            "status", f"'{status}' is not a ticket status; allowed: {', '.join(STATUSES)}"
        )
    with Session(database) as session:
        query = select(HandoffTicket)
        count = select(func.count()).select_from(HandoffTicket)
        if status is not None:
            query = query.where(HandoffTicket.status == status)
            count = count.where(HandoffTicket.status == status)
        rows = session.exec(query.order_by(col(HandoffTicket.id)).offset(offset).limit(limit)).all()
        return list(rows), int(session.exec(count).one())


def get_ticket(session: Session, ticket_id: int) -> HandoffTicket:
    """The ticket, or `NotFoundError`."""
    ticket = session.get(HandoffTicket, ticket_id)
    if ticket is None:
        raise NotFoundError(f"unknown ticket {ticket_id}")
    return ticket


def claim(database: Database, *, ticket_id: int, agent: str) -> HandoffTicket:
    """Give an open ticket to `agent`. One conditional UPDATE decides the race on any backend and replica."""
    with session_scope(database) as session:
        won = session.execute(
            update(HandoffTicket)
            .where(col(HandoffTicket.id) == ticket_id, col(HandoffTicket.status) == "open")
            .values(status="claimed", claimed_by=agent, claimed_at=utcnow())
        ).rowcount  # type: ignore[attr-defined]
        ticket = get_ticket(session, ticket_id)
        session.refresh(ticket)
        if not won:
            owner = f" by {ticket.claimed_by}" if ticket.claimed_by else ""
            raise ConflictError(f"ticket {ticket_id} is already {ticket.status}{owner}")
        return ticket


def reply(database: Database, *, ticket_id: int, agent: str, text: str) -> Message:
    """Post an agent's message into the ticket's conversation; only the agent holding the ticket may."""
    with session_scope(database) as session:
        ticket = get_ticket(session, ticket_id)
        if ticket.status != "claimed":
            raise ConflictError(f"ticket {ticket_id} is {ticket.status}; claim it before replying")
        if ticket.claimed_by != agent:
            raise ConflictError(f"ticket {ticket_id} is held by {ticket.claimed_by}, not {agent}")
        message = Message(conversation_id=ticket.conversation_id, role="agent", text=text, author=agent)
        session.add(message)
        session.flush()
        return message


# Escalations as an agent reads them next to a message they might teach the bot
ESCALATED = {
    "angry": "escalated: angry",
    "repeated_fallback": "escalated: second message no intent took",
    "with_agent": "sent while a person had the chat",
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


@dataclass(frozen=True)
class Resolved:
    """A resolved ticket, and the messages that became examples of its intent (none, one or more)."""

    ticket: HandoffTicket
    learned: tuple[str, ...]


@dataclass(frozen=True)
class TicketDetail:
    """A ticket with its conversation's latest messages and decisions, oldest first, and what it could teach."""

    ticket: HandoffTicket
    messages: list[Message]
    decisions: list[DecisionLog]
    learnable: list[Learnable]


def ticket_detail(
    database: Database, ticket_id: int, *, limit: int, handoff_intents: Collection[str]
) -> TicketDetail:
    """The ticket (or `NotFoundError`), its conversation's latest `limit` messages and decisions, and the
    customer messages resolving it could teach (`learnable`)."""
    with Session(database) as session:
        ticket = get_ticket(session, ticket_id)
        # agents need the decision trail but not the analysts' log search, so this reads one conversation
        messages = session.exec(
            select(Message)
            .where(Message.conversation_id == ticket.conversation_id)
            .order_by(col(Message.id).desc())
            .limit(limit)
        ).all()
        decisions = session.exec(
            select(DecisionLog)
            .where(DecisionLog.conversation_id == ticket.conversation_id)
            .order_by(col(DecisionLog.id).desc())
            .limit(limit)
        ).all()
        return TicketDetail(
            ticket=ticket,
            messages=list(reversed(messages)),
            decisions=list(reversed(decisions)),
            learnable=learnable(session, ticket, handoff_intents=handoff_intents),
        )


def latest_customer_messages(
    database: Database, conversation_ids: Collection[str], *, per_conversation: int
) -> dict[str, list[str]]:
    """Each conversation's latest `per_conversation` customer messages, oldest first, in one query."""
    if not conversation_ids:
        return {}
    rank = (
        func.row_number()
        .over(partition_by=col(Message.conversation_id), order_by=col(Message.id).desc())
        .label("rank")
    )
    recent = (
        select(col(Message.conversation_id), col(Message.id), col(Message.text), rank)
        .where(col(Message.conversation_id).in_(conversation_ids), col(Message.role) == "user")
        .subquery()
    )
    query = (
        select(recent.c.conversation_id, recent.c.text)
        .where(recent.c.rank <= per_conversation)
        .order_by(recent.c.conversation_id, recent.c.id)
    )
    found: dict[str, list[str]] = {}
    with Session(database) as session:
        for conversation_id, text in session.exec(query).all():
            found.setdefault(conversation_id, []).append(text)
    return found


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


def resolve(
    database: Database,
    *,
    ticket_id: int,
    agent: str | None,
    intent: str | None,
    note: str | None,
    handoff_intents: Collection[str] = (),
    learn: Sequence[int] | None = None,
    notice: str | None = None,
) -> Resolved:
    """Close a ticket, recording the intent the customer really meant; the bot answers the chat again.

    With an intent, the customer's question becomes an example of it: the messages `learn` names (ids
    of the conversation's customer messages; empty = none), or by default the pick of `learnable`.
    `notice`, if given, is stored in the conversation as a `system` message (the widget reads it as "the
    person left, the bot answers again"), in the same transaction as the ticket's closing.
    """
    with session_scope(database) as session:
        ticket = _ticket_to_resolve(session, ticket_id, agent)
        if learn and intent is None:
            raise InvalidInputError("learn", "say which intent the messages are examples of ('intent')")
        taught: list[tuple[str, int | None]] = []
        if learn is not None:
            taught = [(m.text, m.decision_id) for m in _chosen_messages(session, ticket, learn)]
        elif intent is not None:
            messages = learnable(session, ticket, handoff_intents=handoff_intents)
            taught = [(m.text, m.decision_id) for m in messages if m.default]
        ticket.status = "resolved"
        ticket.resolved_at = utcnow()
        ticket.resolved_intent = intent
        ticket.note = note
        if ticket.claimed_by is None:
            ticket.claimed_by = agent
        learned: list[str] = []
        if intent is not None:  # what the customer asked becomes an example of what they meant
            for text, decision_id in taught:
                if text not in learned:
                    remember(
                        session,
                        intent=intent,
                        text=text,
                        source="ticket",
                        decision_id=decision_id,
                        ticket_id=ticket.id,
                    )
                    learned.append(text)
        conversation = session.get(Conversation, ticket.conversation_id)
        if conversation is not None:
            conversation.status = "bot"
            conversation.fallback_streak = 0
            session.add(conversation)
            if notice:
                session.add(
                    Message(conversation_id=conversation.id, role="system", text=notice, author=agent)
                )
        session.add(ticket)
        return Resolved(ticket=ticket, learned=tuple(learned))


def _ticket_to_resolve(session: Session, ticket_id: int, agent: str | None) -> HandoffTicket:
    """The ticket, its row locked, if `agent` may resolve it now; else why not (404, 409, 422)."""
    ticket = session.exec(
        select(HandoffTicket).where(HandoffTicket.id == ticket_id).with_for_update()
    ).first()
    if ticket is None:
        raise NotFoundError(f"unknown ticket {ticket_id}")
    if ticket.status == "resolved":
        raise ConflictError(f"ticket {ticket_id} is already resolved")
    if ticket.status == "claimed" and agent is None:
        raise InvalidInputError(
            "agent", f"ticket {ticket_id} is held by {ticket.claimed_by}; say who resolves it"
        )
    if ticket.status == "claimed" and ticket.claimed_by != agent:
        raise ConflictError(f"ticket {ticket_id} is held by {ticket.claimed_by}, not {agent}")
    return ticket


def messages_after(
    database: Database, *, conversation_id: str, after: int | None, limit: int
) -> list[Message]:
    """A conversation's messages with id greater than `after`, oldest first (widgets poll this)."""
    with Session(database) as session:
        if session.get(Conversation, conversation_id) is None:
            raise NotFoundError(f"unknown conversation '{conversation_id}'")
        query = select(Message).where(Message.conversation_id == conversation_id)
        if after is not None:
            query = query.where(col(Message.id) > after)
        return list(session.exec(query.order_by(col(Message.id)).limit(limit)).all())
