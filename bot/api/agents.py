"""Endpoints for human agents: the handoff queue, claiming, replying and resolving."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from bot.api.deps import DatabaseDep, EngineDep, KeyOwnerDep, acting_agent, require
from bot.api.schemas import (
    QUEUE_MESSAGES,
    AgentOut,
    ClaimIn,
    ConversationReplyOut,
    HandoffQueueOut,
    MessageOut,
    QueueTicketOut,
    ReplyIn,
    ResolvedOut,
    ResolveLearnIn,
    TicketLearnableOut,
    TicketOut,
)
from bot.content.suggest import unknown_intent
from bot.errors import InvalidInputError
from bot.routing.engine import Engine
from bot.store import handoffs, helpdesk

TicketId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Ticket id.")]


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


@router.get("", response_model=HandoffQueueOut)
def list_handoffs(
    database: DatabaseDep,
    status: Literal["open", "claimed", "resolved"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> HandoffQueueOut:
    """Tickets, oldest first, optionally by status, each with the customer's latest messages."""
    rows, total = handoffs.list_tickets(database, status=status, limit=limit, offset=offset)
    words = handoffs.latest_customer_messages(
        database, [t.conversation_id for t in rows], per_conversation=QUEUE_MESSAGES
    )
    items = [
        QueueTicketOut(
            **TicketOut.model_validate(t).model_dump(), customer_messages=words.get(t.conversation_id, [])
        )
        for t in rows
    ]
    return HandoffQueueOut(items=items, total=total, limit=limit, offset=offset)


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
    detail = handoffs.ticket_detail(database, ticket_id, limit=limit, handoff_intents=handoff_intents(engine))
    return TicketLearnableOut.model_validate(detail, from_attributes=True)


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


@router.post("/conversations/{conversation_id}/reply", response_model=ConversationReplyOut)
def reply_in_conversation(
    conversation_id: Annotated[str, Path(min_length=1, max_length=64)],
    body: ReplyIn,
    database: DatabaseDep,
    owner: KeyOwnerDep,
) -> ConversationReplyOut:
    """Reply by conversation, for a helpdesk that tracks conversations, not tickets (docs/webhooks.md):
    the conversation's waiting ticket is claimed for the agent first; 409 if another agent holds it, 404
    if no ticket is open."""
    agent = _required_agent(owner, body.agent)
    ticket, message = helpdesk.reply_in_conversation(
        database, conversation_id=conversation_id, agent=agent, text=body.text
    )
    return ConversationReplyOut(
        ticket=TicketOut.model_validate(ticket), message=MessageOut.model_validate(message)
    )


@router.post("/{ticket_id}/resolve", response_model=ResolvedOut)
def resolve(
    ticket_id: TicketId,
    body: ResolveLearnIn,
    database: DatabaseDep,
    engine: EngineDep,
    owner: KeyOwnerDep,
) -> ResolvedOut:
    """Close the ticket with the intent the customer really meant; the bot answers the chat again.

    The customer's question becomes an example of the intent: the messages in `learn`, or by default
    the latest one before the handoff that did not ask for a person, escalate or pick an option. Never
    of an intent that always hands off (`handoff: true`): a `learn` list for one is refused (422), and
    by default nothing is learned (`not_learned` says why).
    """
    if body.intent is not None and engine.intents.get(body.intent) is None:
        raise InvalidInputError("intent", unknown_intent(body.intent, engine.intents.names))
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
    if body.intent is not None and resolved.learned:
        engine.learn(body.intent, *resolved.learned)  # one refit of the operating point for them all
    ticket = TicketOut.model_validate(resolved.ticket).model_dump()
    return ResolvedOut(**ticket, learned=list(resolved.learned), not_learned=resolved.not_learned)


def _required_agent(owner: str | None, claimed: str | None) -> str:
    agent = acting_agent(owner, claimed)
    if agent is None:
        raise InvalidInputError(
            "agent", "name the agent, or give each agent a key of their own (agent@NAME:KEY)"
        )
    return agent
