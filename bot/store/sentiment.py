"""Sentiment surges as stored: one row per surge, written with its `sentiment.surge` event.

Every replica runs the detector (bot.runtime.sentiment) on the same database every few minutes. Once a
topic's surge is stored, the detector judges that topic again only on hours BOT_SENTIMENT_REARM_HOURS
(at least a day) after it was found (`bot.insights.surge.rearmed_windows`, reading `found_since`), so
the surge is one alert, not one per look, and alerts again only if it is still there then. As a guard,
a new row is written only when the topic has none found since `quiet_since` (the re-arm time ago) nor on
the same UTC day; the table's unique key (intent, day) settles replicas that look in the same moment:
the first writer's transaction is the only one that commits, its row and its outbox event together, and
a later writer's insert fails on the key and rolls its event back with it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime

import sqlalchemy as sa
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
    day: str  # YYYY-MM-DD (UTC), the day it was found
    messages: int
    negative: int
    share: float
    baseline_messages: int
    baseline_negative: int
    baseline_share: float
    p_value: float
    samples: list[str]


def record_surge(
    database: Database,
    surge: SurgeRecord,
    *,
    window_start: datetime,
    window_end: datetime,
    quiet_since: datetime,
) -> bool:
    """Store the surge, found at `window_end`, and its webhook event in one transaction; False (nothing
    written) when this topic already has one found since `quiet_since` or on the same day, written by this
    process or another."""
    try:
        with session_scope(database) as session:
            if _exists(session, surge.intent, surge.day, quiet_since):  # the usual case: no failed INSERT
                return False
            row = SentimentSurge(**asdict(surge), created_at=window_end)
            session.add(row)
            session.flush()  # the unique key is checked here, before the event is written
            window = {"start": window_start.isoformat(), "end": window_end.isoformat()}
            data = {**asdict(surge), "window": window, "id": row.id}
            enqueue(session, [Event(EVENT_TYPE, data)])
    except IntegrityError:  # another replica committed it between our look and our insert
        log.debug("surge of %s on %s already recorded by another process", surge.intent, surge.day)
        return False
    return True


def _exists(session: Session, intent: str, day: str, quiet_since: datetime) -> bool:
    recent = sa.or_(col(SentimentSurge.day) == day, col(SentimentSurge.created_at) > quiet_since)
    found = session.exec(
        select(SentimentSurge.id).where(col(SentimentSurge.intent) == intent, recent)
    ).first()
    return found is not None


def found_since(database: Database, since: datetime) -> dict[str, list[datetime]]:
    """When each topic's surges found after `since` were found, oldest first (what re-arms a topic and
    keeps a surge's hours out of its baseline)."""
    query = (
        select(SentimentSurge.intent, SentimentSurge.created_at)
        .where(col(SentimentSurge.created_at) > since)
        .order_by(col(SentimentSurge.created_at))
    )
    found: dict[str, list[datetime]] = {}
    with Session(database) as session:
        for intent, at in session.exec(query).all():
            found.setdefault(intent, []).append(at)
    return found


def surges_since(database: Database, day: str, *, limit: int = 20) -> list[SentimentSurge]:
    """Surges found on `day` (YYYY-MM-DD) and later, newest first."""
    with Session(database) as session:
        return list(
            session.exec(
                select(SentimentSurge)
                .where(col(SentimentSurge.day) >= day)
                .order_by(col(SentimentSurge.day).desc(), col(SentimentSurge.id).desc())
                .limit(limit)
            ).all()
        )
