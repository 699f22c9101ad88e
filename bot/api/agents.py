"""Endpoints for human agents: the handoff queue, claiming, replying and resolving."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from bot import handoffs
from bot.api.deps import DatabaseDep, EngineDep, require
from bot.api.schemas import ClaimIn, MessageOut, ReplyIn, ResolveIn, TicketOut, TicketsOut
from bot.errors import InvalidInputError

router = APIRouter(prefix="/v1/handoffs", tags=["agents"], dependencies=[Depends(require("agent"))])


@router.get("", response_model=TicketsOut)
def list_handoffs(
    database: DatabaseDep,
    status: Literal["open", "claimed", "resolved"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> TicketsOut:
    """Tickets, oldest first, optionally by status."""
    rows, total = handoffs.list_tickets(database, status=status, limit=limit, offset=offset)
    return TicketsOut(
        items=[TicketOut.model_validate(t) for t in rows], total=total, limit=limit, offset=offset
    )


@router.post("/{ticket_id}/claim", response_model=TicketOut)
def claim(ticket_id: int, body: ClaimIn, database: DatabaseDep) -> TicketOut:
    """Take an open ticket; 409 if another agent got it first."""
    return TicketOut.model_validate(handoffs.claim(database, ticket_id=ticket_id, agent=body.agent))


@router.post("/{ticket_id}/reply", response_model=MessageOut)
def reply(ticket_id: int, body: ReplyIn, database: DatabaseDep) -> MessageOut:
    """Send a message to the customer; the widget fetches it from the conversation's messages."""
    return MessageOut.model_validate(
        handoffs.reply(database, ticket_id=ticket_id, agent=body.agent, text=body.text)
    )


@router.post("/{ticket_id}/resolve", response_model=TicketOut)
def resolve(ticket_id: int, body: ResolveIn, database: DatabaseDep, engine: EngineDep) -> TicketOut:
    """Close the ticket with the intent the customer really meant; the bot answers the chat again."""
    if body.intent is not None and engine.intents.get(body.intent) is None:
        raise InvalidInputError("intent", f"unknown intent '{body.intent}'; see GET /v1/intents")
    resolved = handoffs.resolve(
        database, ticket_id=ticket_id, agent=body.agent, intent=body.intent, note=body.note
    )
    if body.intent is not None and resolved.learned is not None:
        engine.learn(body.intent, resolved.learned)
    return TicketOut.model_validate(resolved.ticket)
