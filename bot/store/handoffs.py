"""Handoff tickets: list, claim (exclusively), reply and resolve."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Resolved:
    """A resolved ticket, and the message that became an example of its intent (if any)."""

    ticket: HandoffTicket
    learned: str | None


def resolve(
    database: Database, *, ticket_id: int, agent: str | None, intent: str | None, note: str | None
) -> Resolved:
    """Close a ticket, recording the intent the customer really meant; the bot answers the chat again."""
    with session_scope(database) as session:
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
        learned = None
        ticket.status = "resolved"
        ticket.resolved_at = utcnow()
        ticket.resolved_intent = intent
        ticket.note = note
        if ticket.claimed_by is None:
            ticket.claimed_by = agent
        if intent is not None and ticket.decision_id is not None:
            opened_by = session.get(DecisionLog, ticket.decision_id)
            if opened_by is not None:  # what the customer asked becomes an example of what they meant
                remember(session, intent=intent, text=opened_by.text, source="ticket", ticket_id=ticket.id)
                learned = opened_by.text
        conversation = session.get(Conversation, ticket.conversation_id)
        if conversation is not None:
            conversation.status = "bot"
            conversation.fallback_streak = 0
            session.add(conversation)
        session.add(ticket)
        return Resolved(ticket=ticket, learned=learned)


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
