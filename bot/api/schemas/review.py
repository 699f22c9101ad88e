"""Analysts reviewing logged decisions (bot.api.review)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from bot.api.schemas.common import (
    AgentName,
    IntentName,
    LogOut,
    Strict,
)


class LogsOut(BaseModel):
    """A page of decisions, newest first."""

    items: list[LogOut]
    total: int
    limit: int
    offset: int


class ReviewIn(Strict):
    """An analyst's verdict on a decision."""

    verdict: Literal["correct", "wrong"]
    intent: IntentName | None = None
    new_intent: IntentName | None = None
    reviewer: AgentName | None = None


class ReviewOut(BaseModel):
    """A stored review."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    decision_id: int
    verdict: str
    intent: str | None
    new_intent: str | None
    reviewer: str | None
    created_at: datetime
