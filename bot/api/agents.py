"""Endpoints for human agents: the handoff queue, claiming, replying and resolving."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import Engine as Database
from sqlmodel import Session, col, func, select

from bot.api.deps import DatabaseDep, EngineDep, KeyOwnerDep, acting_agent, require
from bot.api.schemas import (
    AgentOut,
    ClaimIn,
    LogOut,
    MessageOut,
    ReplyIn,
    ResolveIn,
    TicketDetailOut,
    TicketOut,
    TicketsOut,
)
from bot.errors import InvalidInputError
from bot.routing.engine import Engine
from bot.store import handoffs
from bot.store.models import DecisionLog, Message

TicketId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Ticket id.")]
MessageId = Annotated[int, Field(ge=1, le=2**31 - 1)]


class LearnableOut(BaseModel):
    """A customer message that resolving the ticket could teach as an example of its intent."""

    message_id: int
    text: str
    default: bool = Field(description="Taught when the resolve body names no `learn` list.")
    reason: str = Field(description="Why it is, or is not, the default pick (e.g. 'asked for a person').")
    route: str | None = Field(description="The route the bot took for it.")
    intent: str | None = Field(description="The intent the bot read in it.")
    created_at: datetime


class TicketLearnableOut(TicketDetailOut):
    """A ticket with its conversation, decisions and the customer messages resolving it could teach."""

    learnable: list[LearnableOut]


class ResolveLearnIn(ResolveIn):
    """Close a ticket; `intent` is what the customer really meant, `learn` the messages that teach it.

    Without `learn`, the customer's question (the `default` of the ticket's `learnable`) is taught;
    `learn: []` teaches nothing.
    """

    learn: Annotated[list[MessageId], Field(max_length=100)] | None = Field(
        default=None,
        description="Ids of the conversation's customer messages to learn as examples of `intent`.",
    )


QUEUE_MESSAGES = 2  # the customer's latest messages shown in the queue: enough to triage, short to scan


class QueueTicketOut(TicketOut):
    """A ticket as the queue shows it: with the customer's own latest words, so agents can triage."""

    customer_messages: list[str] = Field(
        description=f"The customer's latest {QUEUE_MESSAGES} messages in the conversation, oldest first."
    )


class QueueOut(TicketsOut):
    """A page of tickets with the customer's latest messages."""

    items: list[QueueTicketOut]  # type: ignore[assignment]  # a TicketOut with one more field


def latest_customer_messages(database: Database, conversation_ids: list[str]) -> dict[str, list[str]]:
    """Each conversation's latest `QUEUE_MESSAGES` customer messages, oldest first, in one query."""
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
        .where(recent.c.rank <= QUEUE_MESSAGES)
        .order_by(recent.c.conversation_id, recent.c.id)
    )
    found: dict[str, list[str]] = {}
    with Session(database) as session:
        for conversation_id, text in session.exec(query).all():
            found.setdefault(conversation_id, []).append(text)
    return found


def closed_notice(agent: str | None) -> str:
    """What the customer reads when a ticket is resolved: who left, and that the bot answers again."""
    who = agent or "Our team"
    return (
        f"{who} closed this conversation. You're chatting with our virtual assistant again; "
        "ask for a person at any time."
    )


def handoff_intents(engine: Engine) -> frozenset[str]:
    """Intents that always hand off (`handoff: true`): a message routed to one asked for a person."""
    return frozenset(name for name, rule in engine.state.rules.items() if rule.handoff)


router = APIRouter(prefix="/v1/handoffs", tags=["agents"], dependencies=[Depends(require("agent"))])


@router.get("", response_model=QueueOut)
def list_handoffs(
    database: DatabaseDep,
    status: Literal["open", "claimed", "resolved"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> QueueOut:
    """Tickets, oldest first, optionally by status, each with the customer's latest messages."""
    rows, total = handoffs.list_tickets(database, status=status, limit=limit, offset=offset)
    words = latest_customer_messages(database, [t.conversation_id for t in rows])
    items = [
        QueueTicketOut(
            **TicketOut.model_validate(t).model_dump(), customer_messages=words.get(t.conversation_id, [])
        )
        for t in rows
    ]
    return QueueOut(items=items, total=total, limit=limit, offset=offset)


@router.get("/me", response_model=AgentOut)
async def me(owner: KeyOwnerDep) -> AgentOut:
    """The agent this API key belongs to (`agent@NAME:KEY`), or null for a shared or open key."""
    return AgentOut(agent=owner)


@router.get("/{ticket_id}", response_model=TicketLearnableOut)
def ticket_detail(
    ticket_id: TicketId,
    database: DatabaseDep,
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many latest messages.")] = 500,
) -> TicketLearnableOut:
    """One ticket with its conversation's messages and the bot's decisions, oldest first (read-only),
    and the customer messages resolving it could teach (`learnable`, the default pick marked)."""
    with Session(database) as session:
        ticket = handoffs.get_ticket(session, ticket_id)
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
        learnable = handoffs.learnable(session, ticket, handoff_intents=handoff_intents(engine))
        return TicketLearnableOut(
            ticket=TicketOut.model_validate(ticket),
            messages=[MessageOut.model_validate(m) for m in reversed(messages)],
            decisions=[LogOut.model_validate(d) for d in reversed(decisions)],
            learnable=[LearnableOut.model_validate(m, from_attributes=True) for m in learnable],
        )


@router.post("/{ticket_id}/claim", response_model=TicketOut)
def claim(ticket_id: TicketId, body: ClaimIn, database: DatabaseDep, owner: KeyOwnerDep) -> TicketOut:
    """Take an open ticket; 409 if another agent got it first."""
    agent = _required_agent(owner, body.agent)
    return TicketOut.model_validate(handoffs.claim(database, ticket_id=ticket_id, agent=agent))


@router.post("/{ticket_id}/reply", response_model=MessageOut)
def reply(ticket_id: TicketId, body: ReplyIn, database: DatabaseDep, owner: KeyOwnerDep) -> MessageOut:
    """Send a message to the customer; the widget fetches it from the conversation's messages."""
    agent = _required_agent(owner, body.agent)
    return MessageOut.model_validate(
        handoffs.reply(database, ticket_id=ticket_id, agent=agent, text=body.text)
    )


@router.post("/{ticket_id}/resolve", response_model=TicketOut)
def resolve(
    ticket_id: TicketId,
    body: ResolveLearnIn,
    database: DatabaseDep,
    engine: EngineDep,
    owner: KeyOwnerDep,
) -> TicketOut:
    """Close the ticket with the intent the customer really meant; the bot answers the chat again.

    The customer's question becomes an example of the intent: the messages in `learn`, or by default
    the latest one before the handoff that did not ask for a person, escalate or pick an option.
    """
    if body.intent is not None and engine.intents.get(body.intent) is None:
        raise InvalidInputError("intent", f"unknown intent '{body.intent}'; see GET /v1/intents")
    agent = acting_agent(owner, body.agent)
    resolved = handoffs.resolve(
        database,
        ticket_id=ticket_id,
        agent=agent,
        intent=body.intent,
        note=body.note,
        handoff_intents=handoff_intents(engine),
        learn=body.learn,
        notice=closed_notice(agent),
    )
    if body.intent is not None:
        for text in resolved.learned:
            engine.learn(body.intent, text)
    return TicketOut.model_validate(resolved.ticket)


def _required_agent(owner: str | None, claimed: str | None) -> str:
    agent = acting_agent(owner, claimed)
    if agent is None:
        raise InvalidInputError(
            "agent", "name the agent, or give each agent a key of their own (agent@NAME:KEY)"
        )
    return agent
