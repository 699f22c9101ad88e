"""Administrators' webhook subscriptions and the outbox's failed deliveries (bot.api.webhooks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.api.schemas.agents import TicketOut
from bot.api.schemas.common import MessageOut, Strict
from bot.store.webhooks import EventType


class WebhookIn(Strict):
    """A subscription: where to POST events, the secret that signs them, which events (none: all)."""

    url: str = Field(max_length=2000, description="An http(s) URL that answers 2xx to a delivery.")
    secret: str = Field(
        min_length=16,
        max_length=200,
        description="Signs each delivery (Bot-Signature); shown only in this answer.",
    )
    events: list[EventType] = Field(default_factory=list, max_length=10)


class WebhookOut(BaseModel):
    """A stored subscription; its secret masked (all but the last 4 characters)."""

    id: int
    url: str
    secret: str = Field(description="Masked, except in the answer to the POST that set it.")
    events: list[str]
    source: Literal["api", "settings"]
    created_at: datetime


class WebhooksOut(BaseModel):
    items: list[WebhookOut]


class DeliveryOut(BaseModel):
    """One event for one subscription in the outbox."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: str
    subscription_id: int
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    payload: dict[str, Any]


class DeliveriesOut(BaseModel):
    """A page of failed deliveries, newest first."""

    items: list[DeliveryOut]
    total: int
    limit: int
    offset: int


class ConversationReplyOut(BaseModel):
    """An agent's reply posted by conversation: the ticket it went to (claimed now if it waited) and the message."""

    ticket: TicketOut
    message: MessageOut
