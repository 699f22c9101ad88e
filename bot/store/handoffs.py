"""Handoff tickets: list, claim (exclusively), reply and resolve."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine as Database
from sqlalchemy import update
from sqlmodel import Session, col, func, select

from bot.errors import ConflictError, InvalidInputError, NotFoundError
from bot.store.db import session_scope
from bot.store.examples import remember
from bot.store.models import Conversation, DecisionLog, HandoffTicket, Message, utcnow
from bot.store.outbox import Event, enqueue, message_data, ticket_data
from bot.store.ticket_learning import Learnable, learnable, to_teach
from bot.store.turns import WAITING, WITH_AGENT, WITH_BOT

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
    """Give an open ticket to `agent`. One conditional UPDATE decides the race on any backend and replica.

    The conversation is then the agent's (`WITH_AGENT`): the bot, which answered while the ticket
    waited, goes quiet. Updated in this transaction, so the row lock orders it with the turn writer's.
    """
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
        session.execute(
            update(Conversation)
            .where(col(Conversation.id) == ticket.conversation_id, col(Conversation.status) == WAITING)
            .values(status=WITH_AGENT)
        )
        enqueue(session, [Event("ticket.claimed", {"ticket": ticket_data(ticket)})])  # with the claim
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
        data = {"ticket": ticket_data(ticket), "message": message_data(message)}
        enqueue(session, [Event("ticket.replied", data)])  # committed with the message, or neither
        return message


@dataclass(frozen=True)
class Resolved:
    """A resolved ticket, and the messages that became examples of its intent (none, one or more);
    `not_learned` says why, when none did."""

    ticket: HandoffTicket
    learned: tuple[str, ...]
    not_learned: str | None = None


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
    Never into an intent of `handoff_intents` (see `bot.store.ticket_learning.to_teach`).
    `notice`, if given, is stored in the conversation as a `system` message (the widget reads it as "the
    person left, the bot answers again"), in the same transaction as the ticket's closing.
    """
    with session_scope(database) as session:
        ticket = _ticket_to_resolve(session, ticket_id, agent)
        taught, not_learned = to_teach(session, ticket, intent, learn, handoff_intents)
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
            conversation.status = WITH_BOT
            conversation.fallback_streak = 0
            session.add(conversation)
            if notice:
                session.add(
                    Message(conversation_id=conversation.id, role="system", text=notice, author=agent)
                )
        session.add(ticket)
        data = {"ticket": ticket_data(ticket), "learned": learned}
        enqueue(session, [Event("ticket.resolved", data)])  # committed with the resolution, or neither
        return Resolved(ticket=ticket, learned=tuple(learned), not_learned=None if learned else not_learned)


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
