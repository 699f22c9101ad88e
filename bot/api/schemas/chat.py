"""The customer's side (bot.api.chat): a chat turn, a conversation's messages, routing without storage."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator

from bot.api.schemas.common import (
    ANSWER_DESCRIPTION,
    CandidateOut,
    IntentName,
    MessageOut,
    Strict,
)
from bot.routing.policy import Route
from bot.store.turns import MAX_CONVERSATION_METADATA_KEYS

MAX_METADATA_BYTES = 4096


MAX_METADATA_DEPTH = 4


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


class OptionOut(BaseModel):
    """A clarify option: send `intent` back as `choice`."""

    intent: str
    label: str


class ChatIn(Strict):
    """A customer's message, or the pick of a clarify option (`choice`)."""

    conversation_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    message: Annotated[str, Field(max_length=100_000)] | None = None  # the real limit is a setting
    choice: IntentName | None = None
    channel: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    metadata: dict[str, Any] | None = Field(
        None,
        description="Context for answer templates (e.g. first_name), merged into the conversation's: at most "
        "4096 bytes and 50 keys per message, and the conversation's merged metadata at most "
        "8192 bytes and 50 keys (422 beyond).",
    )

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """Metadata is context for templates, not a payload: small and shallow."""
        if value is None:
            return value
        try:
            size = len(json.dumps(value, allow_nan=False))
        except ValueError:  # the guard refuses NaN and Infinity in bodies; this holds for any other caller
            raise ValueError("numbers must be finite (no NaN or Infinity)") from None
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"must be at most {MAX_METADATA_BYTES} bytes as JSON")
        if len(value) > MAX_CONVERSATION_METADATA_KEYS:
            raise ValueError(f"must have at most {MAX_CONVERSATION_METADATA_KEYS} keys")
        if _depth(value) > MAX_METADATA_DEPTH:
            raise ValueError(f"must nest at most {MAX_METADATA_DEPTH} levels deep")
        return value


class ChatOut(BaseModel):
    """The bot's decision and answer for one message."""

    conversation_id: str
    message_id: int | None  # None while the database is down: the turn is spooled (`stored` false)
    decision_id: int | None
    stored: bool = True
    route: Route
    intent: str | None
    confidence: float
    answer: str = Field(description=ANSWER_DESCRIPTION)
    reason: str
    candidates: list[CandidateOut]
    options: list[OptionOut] | None = None
    ticket_id: int | None = None
    source: str | None = None
    context_used: bool = False
    escalation: str | None = None


class MessagesOut(BaseModel):
    """Messages after the `after` id; poll again with `after=last_id`."""

    conversation_id: str
    messages: list[MessageOut]
    last_id: int | None


class RouteIn(Strict):
    """Messages to classify; nothing is stored."""

    messages: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=100_000)]], Field(min_length=1, max_length=100)
    ]


class DecisionOut(BaseModel):
    """A routing decision without storage."""

    text: str
    route: str
    intent: str | None
    confidence: float
    answer: str = Field(description=ANSWER_DESCRIPTION)
    reason: str
    candidates: list[CandidateOut]
    options: list[str]
    source: str | None


class RouteOut(BaseModel):
    """Decisions in the order of the messages."""

    decisions: list[DecisionOut]
    model_id: str
    intents_version: str
