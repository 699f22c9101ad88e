"""The webhook outbox: events written in the transaction of what caused them, one row per subscriber.

A chat turn that opens a ticket or reaches a person, a claim, an agent's reply, a resolution and a review
each call `enqueue` with their own session, so the event exists exactly when what caused it was
committed: a crash before the commit loses both, never one of them. The dispatcher
(bot.runtime.webhooks) sends the rows later, with `bot.store.deliveries`. Turns the bot answers alone
write nothing here and cost one `if`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from bot.store.models import (
    DecisionLog,
    HandoffTicket,
    Message,
    Review,
    WebhookDelivery,
    WebhookSubscription,
    utcnow,
)

TRANSCRIPT_MESSAGES = 50  # a ticket.opened carries the conversation's latest messages and decisions
DELIVERIES = WebhookDelivery.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Event:
    """Something that happened, as its subscribers receive it (`data` is JSON-ready)."""

    type: str
    data: dict[str, Any]


Subscribers = Sequence[tuple[int | None, list[str]]]  # active subscriptions' ids and event types


def active_subscribers(session: Session) -> Subscribers:
    """The active subscriptions and the event types each asked for (empty: all)."""
    rows = session.exec(
        select(WebhookSubscription.id, WebhookSubscription.events).where(col(WebhookSubscription.active))
    ).all()
    return [(subscription_id, list(types)) for subscription_id, types in rows]


def wanted(subscribers: Subscribers, event_type: str) -> bool:
    """Whether any of `subscribers` asked for `event_type`."""
    return any(not types or event_type in types for _, types in subscribers)


def enqueue(session: Session, events: Sequence[Event], subscribers: Subscribers | None = None) -> int:
    """Write `events` to the outbox in the caller's transaction, one row per subscriber that asked for
    its type; returns how many rows. Without subscribers nothing is written. `subscribers`: as
    `active_subscribers` reads them, if the caller has."""
    if not events:
        return 0
    if subscribers is None:
        subscribers = active_subscribers(session)
    if not subscribers:
        return 0
    now = utcnow()
    rows = []
    for event in events:
        event_id = f"evt_{uuid.uuid4().hex}"
        payload = {"id": event_id, "type": event.type, "created_at": now.isoformat(), "data": event.data}
        for subscription_id, wanted in subscribers:
            if not wanted or event.type in wanted:
                rows.append(
                    {
                        "event_id": event_id,
                        "subscription_id": subscription_id,
                        "event_type": event.type,
                        "payload": payload,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                )
    if rows:
        session.execute(insert(DELIVERIES), rows)
    return len(rows)


@dataclass(frozen=True)
class HeldTurn:
    """A customer message of a conversation with a ticket (waiting or claimed), as the writer stored it."""

    conversation_id: str
    conversation_status: str  # handoff (the ticket waits) | agent (claimed)
    ticket_id: int
    message_id: int
    decision_id: int
    text: str
    at: datetime


def enqueue_turns(session: Session, turns: Sequence[HeldTurn]) -> int:
    """The events of a batch's turns that have a ticket: `ticket.opened` for the turn that opened it
    (with the transcript and the bot's decisions), `conversation.message` for the others. A payload
    nobody subscribed to is not built: a ticket's transcript costs two reads in the chat writer's
    transaction (docs/evaluation.md, "Webhooks and metrics under load")."""
    subscribers = active_subscribers(session) if turns else []
    if not subscribers:
        return 0
    decision_ids = [t.decision_id for t in turns]
    opened = {
        ticket.id: ticket
        for ticket in session.exec(
            select(HandoffTicket).where(
                col(HandoffTicket.id).in_({t.ticket_id for t in turns}),
                col(HandoffTicket.decision_id).in_(decision_ids),
            )
        ).all()
    }
    events = []
    for turn in turns:
        ticket = opened.get(turn.ticket_id)
        if ticket is not None and ticket.decision_id == turn.decision_id:
            if wanted(subscribers, "ticket.opened"):
                events.append(Event("ticket.opened", ticket_opened(session, ticket)))
        elif wanted(subscribers, "conversation.message"):
            events.append(Event("conversation.message", _customer_message(turn)))
    return enqueue(session, events, subscribers)


def _customer_message(turn: HeldTurn) -> dict[str, Any]:
    return {
        "conversation_id": turn.conversation_id,
        "ticket_id": turn.ticket_id,
        "conversation_status": turn.conversation_status,
        "message": {"id": turn.message_id, "role": "user", "text": turn.text, "created_at": _iso(turn.at)},
        "decision_id": turn.decision_id,
    }


def ticket_opened(session: Session, ticket: HandoffTicket) -> dict[str, Any]:
    """A handoff as a helpdesk needs it: the ticket, why, and the conversation so far with the bot's
    decisions (the latest TRANSCRIPT_MESSAGES of each, oldest first)."""
    messages = session.exec(
        select(Message)
        .where(Message.conversation_id == ticket.conversation_id)
        .order_by(col(Message.id).desc())
        .limit(TRANSCRIPT_MESSAGES)
    ).all()
    decisions = session.exec(
        select(DecisionLog)
        .where(DecisionLog.conversation_id == ticket.conversation_id)
        .order_by(col(DecisionLog.id).desc())
        .limit(TRANSCRIPT_MESSAGES)
    ).all()
    return {
        "ticket": ticket_data(ticket),
        "reason": ticket.reason,
        "transcript": [message_data(m) for m in reversed(messages)],
        "decisions": [
            {
                "id": d.id,
                "message_id": d.message_id,
                "text": d.text,
                "route": d.route,
                "intent": d.intent,
                "confidence": d.confidence,
                "reason": d.reason,
                "escalation": d.escalation,
                "created_at": _iso(d.created_at),
            }
            for d in reversed(decisions)
        ],
    }


def ticket_data(ticket: HandoffTicket) -> dict[str, Any]:
    """A ticket's fields as every ticket event carries them."""
    return {
        "id": ticket.id,
        "conversation_id": ticket.conversation_id,
        "status": ticket.status,
        "intent": ticket.intent,
        "reason": ticket.reason,
        "claimed_by": ticket.claimed_by,
        "resolved_intent": ticket.resolved_intent,
        "note": ticket.note,
        "created_at": _iso(ticket.created_at),
    }


def message_data(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "role": message.role,
        "text": message.text,
        "author": message.author,
        "created_at": _iso(message.created_at),
    }


def review_data(review: Review, text: str) -> dict[str, Any]:
    return {
        "id": review.id,
        "decision_id": review.decision_id,
        "text": text,
        "verdict": review.verdict,
        "intent": review.intent,
        "new_intent": review.new_intent,
        "reviewer": review.reviewer,
        "created_at": _iso(review.created_at),
    }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None
