"""Endpoints for analysts: routing logs with filters, and reviews of single decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from bot.api.deps import DatabaseDep, EngineDep, require
from bot.api.schemas import LogOut, LogsOut, ReviewIn, ReviewOut
from bot.errors import InvalidInputError
from bot.routing.policy import Route
from bot.store import reviews

router = APIRouter(prefix="/v1/logs", tags=["analysts"], dependencies=[Depends(require("analyst"))])


@router.get("", response_model=LogsOut)
def list_logs(
    database: DatabaseDep,
    route: Route | None = None,
    intent: Annotated[str | None, Query(max_length=100)] = None,
    min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    reviewed: bool | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Text the message contains.")] = None,
    conversation_id: Annotated[str | None, Query(max_length=64)] = None,
    request_id: Annotated[
        str | None, Query(max_length=128, description="The X-Request-Id of the chat request.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> LogsOut:
    """Decisions, newest first, filtered and paged."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInputError(name, "needs a timezone, e.g. 2026-11-28T10:00:00Z")
    where = reviews.LogFilter(
        route=route,
        intent=intent,
        min_confidence=min_confidence,
        max_confidence=max_confidence,
        reviewed=reviewed,
        since=since,
        until=until,
        text=q,
        conversation_id=conversation_id,
        request_id=request_id,
    )
    rows, total = reviews.list_logs(database, where=where, limit=limit, offset=offset)
    return LogsOut(items=[LogOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)


@router.post("/{decision_id}/review", response_model=ReviewOut)
def review(
    decision_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: ReviewIn,
    database: DatabaseDep,
    engine: EngineDep,
) -> ReviewOut:
    """Mark a decision correct, or wrong with the intent that was meant (or a new intent's name)."""
    reviewed = reviews.review(
        database,
        engine.intents,
        decision_id=decision_id,
        verdict=body.verdict,
        intent=body.intent,
        new_intent=body.new_intent,
        reviewer=body.reviewer,
    )
    if reviewed.review.intent is not None:
        engine.learn(reviewed.review.intent, reviewed.text)
    else:
        engine.unlearn(reviewed.text)
    return ReviewOut.model_validate(reviewed.review)
