"""Pieces several audiences' bodies share: field types, the strict base, candidates, messages, decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from bot.content.intents import NAME_PATTERN

IntentName = Annotated[str, Field(pattern=NAME_PATTERN, max_length=100)]


AgentName = Annotated[str, Field(min_length=1, max_length=128)]


ANSWER_DESCRIPTION = (
    "Plain text, never HTML: it may contain <, > and & as typed (templates fill in customer metadata "
    "unescaped). Show it as text (textContent, not innerHTML) or escape it first."
)


class Strict(BaseModel):
    """Bodies reject unknown fields, so a typo is an error rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")


class CandidateOut(BaseModel):
    """One candidate intent with its raw score and calibrated confidence."""

    intent: str
    score: float
    confidence: float


class MessageOut(BaseModel):
    """A line of a conversation."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    role: str
    text: str
    author: str | None
    created_at: datetime


class LogOut(BaseModel):
    """A stored routing decision."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    conversation_id: str
    message_id: int | None
    text: str
    route: str
    intent: str | None
    confidence: float
    candidates: list[CandidateOut]
    options: list[str]
    answer: str
    reason: str
    threshold: float
    margin: float
    retrieval_score: float | None
    source: str | None
    context_used: bool
    escalation: str | None
    chosen: bool
    model_id: str
    intents_version: str
    calibration_id: str
    latency_ms: float
    reviewed: bool
    created_at: datetime
    request_id: str | None = None  # the X-Request-Id of the chat request: its JSON log lines carry it
