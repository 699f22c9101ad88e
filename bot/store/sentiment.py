"""Sentiment surges as stored: one row per intent and UTC day, written with its `sentiment.surge` event.

Every replica runs the detector (bot.runtime.sentiment) on the same database, so several may find the
same surge in the same minute. The table's unique key (intent, day) makes the first writer's transaction
the only one that commits: its row and its outbox event go in together, and a later writer's insert
fails on the key and rolls its event back with it. A subscriber therefore gets one event per topic and
day, however many replicas look.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from sqlalchemy import Engine as Database
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.store.db import session_scope
from bot.store.models import SentimentSurge
from bot.store.outbox import Event, enqueue

log = logging.getLogger(__name__)

EVENT_TYPE = "sentiment.surge"


@dataclass(frozen=True)
class SurgeRecord:
    """What a surge row and its event say (the columns of `SentimentSurge` but its id and time)."""

    intent: str
    day: str  # YYYY-MM-DD (UTC)
    messages: int
    negative: int
    share: float
    baseline_messages: int
    baseline_negative: int
    baseline_share: float
    p_value: float
    samples: list[str]


def record_surge(database: Database, surge: SurgeRecord, *, window_start: str, window_end: str) -> bool:
    """Store the surge and its webhook event in one transaction; False (nothing written) when this topic
    already has one for that day, written by this process or another."""
    try:
        with session_scope(database) as session:
            if _exists(session, surge.intent, surge.day):  # the usual case after the first: no failed INSERT
                return False
            row = SentimentSurge(**asdict(surge))
            session.add(row)
            session.flush()  # the unique key is checked here, before the event is written
            data = {**asdict(surge), "window": {"start": window_start, "end": window_end}, "id": row.id}
            enqueue(session, [Event(EVENT_TYPE, data)])
    except IntegrityError:  # another replica committed it between our look and our insert
        log.debug("surge of %s on %s already recorded by another process", surge.intent, surge.day)
        return False
    return True


def _exists(session: Session, intent: str, day: str) -> bool:
    found = session.exec(
        select(SentimentSurge.id).where(col(SentimentSurge.intent) == intent, col(SentimentSurge.day) == day)
    ).first()
    return found is not None


def surges_since(database: Database, day: str, *, limit: int = 20) -> list[SentimentSurge]:
    """Surges of `day` (YYYY-MM-DD) and later, newest first."""
    with Session(database) as session:
        return list(
            session.exec(
                select(SentimentSurge)
                .where(col(SentimentSurge.day) >= day)
                .order_by(col(SentimentSurge.day).desc(), col(SentimentSurge.id).desc())
                .limit(limit)
            ).all()
        )
