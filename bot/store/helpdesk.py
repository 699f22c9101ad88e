"""Agent replies from outside (issue #30 item 2): a helpdesk that knows a conversation, not a ticket.

A helpdesk keeps its own thread per customer conversation and answers in it; it need not track the
bot's ticket ids. Replying by conversation finds the conversation's ticket (waiting or claimed), claims
it for the agent if nobody holds it yet, and posts the reply: the same two steps, transactions and
events (`ticket.claimed`, `ticket.replied`) as the console's claim and reply.
"""

from __future__ import annotations

from sqlalchemy import Engine as Database
from sqlmodel import Session, col, select

from bot.errors import NotFoundError
from bot.store import handoffs
from bot.store.models import HandoffTicket, Message


def current_ticket(database: Database, conversation_id: str) -> HandoffTicket:
    """The conversation's ticket that is open or claimed (the newest), or `NotFoundError`."""
    with Session(database) as session:
        ticket = session.exec(
            select(HandoffTicket)
            .where(
                col(HandoffTicket.conversation_id) == conversation_id,
                col(HandoffTicket.status).in_(("open", "claimed")),
            )
            .order_by(col(HandoffTicket.id).desc())
        ).first()
    if ticket is None:
        raise NotFoundError(f"conversation '{conversation_id}' has no open ticket; it is the bot's")
    return ticket


def reply_in_conversation(
    database: Database, *, conversation_id: str, agent: str, text: str
) -> tuple[HandoffTicket, Message]:
    """Claim the conversation's waiting ticket for `agent` if need be, then post the reply (409 if another
    agent holds it)."""
    ticket = current_ticket(database, conversation_id)
    ticket_id = ticket.id or 0  # a stored row's id
    if ticket.status == "open":
        ticket = handoffs.claim(database, ticket_id=ticket_id, agent=agent)
    message = handoffs.reply(database, ticket_id=ticket_id, agent=agent, text=text)
    return ticket, message
