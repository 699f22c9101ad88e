"""Sentiment by topic (#32 item 3): per intent and UTC day, the share of negative customer messages, and
the counts the surge alert reads (per intent over a window, per intent and hour over a baseline).

A message is *negative* when its anger score (`bot.routing.tone`, stored on its decision as `anger`) is
above BOT_SENTIMENT_NEGATIVE_THRESHOLD (default NEGATIVE_THRESHOLD), lower than the hand-off threshold (BOT_ANGER_THRESHOLD, 0.92): a trend may
count displeased customers a person need not take over, as long as calm traffic rarely counts. Chosen on
BANKING77 train and our own complaints (`scripts/experiments/tune_negative_threshold.py`,
docs/evaluation.md "Sentiment by topic (#32 item 3)"): the lowest threshold at which at most 5% of calm
BANKING77 train reads negative with either phrase set (demo 0.43, generic 0.55: the higher); it counts
85% of anger.csv's complaints where the hand-off threshold counts 44-51%.

Counted: every customer message routed to an intent (its decision's intent, after the conversation rules:
an angry hand-off keeps its intent), including those sent while a person holds the conversation, since
their tone is the customer's all the same. Not counted: messages no intent took (no topic), clarify picks
(no text of the customer's own) and decisions stored before the score was (NULL). The counting is done by
the database (GROUP BY), like the rest of the stats page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy import Engine as Database
from sqlmodel import Session, col

from bot.config_sentiment import SentimentSettings
from bot.insights.surge import Counts
from bot.store.models import DecisionLog
from bot.store.sentiment import surges_since

NEGATIVE_THRESHOLD: float = SentimentSettings.model_fields["sentiment_negative_threshold"].default
SAMPLES = 3  # the most negative messages a surge names
TOPICS_SHOWN = 10  # topics on the stats page: those with the most negative messages in the window


class DaySentiment(BaseModel):
    """One topic's scored messages of one UTC day and the negative ones among them."""

    day: date
    messages: int
    negative: int


class TopicSentiment(BaseModel):
    """One intent's negative share over the stats window, and day by day (every day, none left out)."""

    intent: str
    messages: int
    negative: int
    share: float
    per_day: list[DaySentiment]


class SurgeOut(BaseModel):
    """A topic whose negative share over its last hours jumped over the topic's own baseline."""

    intent: str
    day: date = Field(description="The UTC day the surge was found.")
    found_at: datetime = Field(description="When it was found (the end of the window that surged).")
    active: bool = Field(description="The surge was found today (UTC).")
    messages: int = Field(description="The topic's scored messages in the window that surged, when found.")
    negative: int
    share: float
    baseline_share: float = Field(description="The topic's share over the baseline days before the window.")
    samples: list[str] = Field(description="The window's most negative messages, redacted as logged.")


class SentimentOut(BaseModel):
    """The stats page's "Sentiment by topic" card."""

    threshold: float = Field(description="Anger score above which a message counts as negative.")
    windows: list[int] = Field(description="The hours up to now whose share a surge is judged on.")
    baseline_days: int = Field(description="The days before the longest window a topic is compared with.")
    scored: int = Field(description="Messages of the window with a topic and a stored anger score.")
    negative: int
    topics: list[TopicSentiment] = Field(
        description=f"Up to {TOPICS_SHOWN} intents with the most negative messages in the window."
    )
    surges: list[SurgeOut] = Field(description="Surges of the window's days, newest first.")


@dataclass(frozen=True)
class TopicDay:
    """A (intent, UTC day) cell of the counts."""

    intent: str
    day: date


def topic_day_counts(
    database: Database, since: datetime, until: datetime, threshold: float = NEGATIVE_THRESHOLD
) -> dict[TopicDay, Counts]:
    """Scored and negative messages per intent and UTC day in [since, until), counted by the database."""
    rows = _counted(database, since, until, threshold, utc_stamp(database.dialect.name))
    return {
        TopicDay(intent, date.fromisoformat(str(d))): Counts(int(n), int(k or 0)) for intent, d, n, k in rows
    }


def topic_counts(
    database: Database, since: datetime, until: datetime, threshold: float = NEGATIVE_THRESHOLD
) -> dict[str, Counts]:
    """Scored and negative messages per intent in [since, until) (a surge window)."""
    return {
        intent: Counts(int(n), int(k or 0))
        for intent, n, k in _counted(database, since, until, threshold, None)
    }


def topic_hour_counts(
    database: Database, since: datetime, until: datetime, threshold: float = NEGATIVE_THRESHOLD
) -> dict[str, list[Counts]]:
    """Each intent's counts per hour of [since, until) (whole UTC hours), oldest first, hours without
    messages included: a surge baseline, cut into blocks of any window's length (`surge.blocks_of`)."""
    hours = int((until - since).total_seconds() // 3600)
    counts: dict[str, list[Counts]] = {}
    for intent, at, n, k in _counted(
        database, since, until, threshold, utc_stamp(database.dialect.name, hour=True)
    ):
        stamp = datetime.strptime(str(at)[:10], "%Y-%m-%d").replace(hour=int(str(at)[11:13]), tzinfo=UTC)
        index = int((stamp - since).total_seconds() // 3600)
        if 0 <= index < hours:
            counts.setdefault(intent, [Counts(0, 0)] * hours)[index] = Counts(int(n), int(k or 0))
    return counts


def _counted(
    database: Database,
    since: datetime,
    until: datetime,
    threshold: float,
    bucket: sa.ColumnElement[str] | None,
) -> list[tuple[Any, ...]]:
    """(intent, [bucket,] scored, negative) rows of the decisions in [since, until) with a topic and a
    score, grouped by intent and the bucket (a UTC day or hour) when one is given."""
    anger = col(DecisionLog.anger)
    negative = sa.func.sum(sa.case((anger > threshold, 1), else_=0))
    keys: list[Any] = [col(DecisionLog.intent)] if bucket is None else [col(DecisionLog.intent), bucket]
    query = (
        sa.select(*keys, sa.func.count(), negative)
        .where(
            col(DecisionLog.created_at) >= since,
            col(DecisionLog.created_at) < until,
            col(DecisionLog.intent).is_not(None),
            anger.is_not(None),
        )
        .group_by(*keys)
    )
    with Session(database) as session:
        return [tuple(row) for row in session.execute(query).all()]


def by_topic(counts: dict[TopicDay, Counts]) -> dict[str, Counts]:
    """The cells summed per intent."""
    totals: dict[str, list[int]] = {}
    for cell, c in counts.items():
        total = totals.setdefault(cell.intent, [0, 0])
        total[0] += c.messages
        total[1] += c.negative
    return {intent: Counts(n, k) for intent, (n, k) in totals.items()}


def negative_samples(
    database: Database, intent: str, since: datetime, until: datetime, threshold: float = NEGATIVE_THRESHOLD
) -> list[str]:
    """The topic's most negative messages in [since, until) (SAMPLES of them), as the decisions keep them
    (redacted before they were stored)."""
    anger = col(DecisionLog.anger)
    query = (
        sa.select(col(DecisionLog.text))
        .where(
            col(DecisionLog.intent) == intent,
            col(DecisionLog.created_at) >= since,
            col(DecisionLog.created_at) < until,
            anger > threshold,
        )
        .order_by(anger.desc(), col(DecisionLog.id).desc())
        .limit(SAMPLES)
    )
    with Session(database) as session:
        return [str(text) for text in session.execute(query).scalars().all()]


def sentiment_card(
    database: Database,
    since: datetime,
    until: datetime,
    now: datetime,
    settings: SentimentSettings | None = None,
) -> SentimentOut:
    """The card of the stats window [since, until) (whole UTC days); `now` tells today's surges;
    `settings`: the BOT_SENTIMENT_* in force (default: the defaults)."""
    settings = settings or SentimentSettings()
    threshold = settings.sentiment_negative_threshold
    counts = topic_day_counts(database, since, until, threshold)
    totals = by_topic(counts)
    days = [since.date() + timedelta(days=i) for i in range((until - since).days)]
    shown = sorted(totals, key=lambda intent: (-totals[intent].negative, -totals[intent].messages, intent))
    topics = [
        TopicSentiment(
            intent=intent,
            messages=totals[intent].messages,
            negative=totals[intent].negative,
            share=round(totals[intent].share, 4),
            per_day=[
                DaySentiment(day=d, messages=c.messages, negative=c.negative)
                for d in days
                for c in [counts.get(TopicDay(intent, d), Counts(0, 0))]
            ],
        )
        for intent in shown[:TOPICS_SHOWN]
    ]
    today = now.astimezone(UTC).date()
    surges = [
        SurgeOut(
            intent=s.intent,
            day=date.fromisoformat(s.day),
            found_at=s.created_at,
            active=s.day == today.isoformat(),
            messages=s.messages,
            negative=s.negative,
            share=s.share,
            baseline_share=s.baseline_share,
            samples=s.samples,
        )
        for s in surges_since(database, since.date().isoformat())
        if s.day < until.date().isoformat()
    ]
    return SentimentOut(
        threshold=threshold,
        windows=list(settings.sentiment_window_hours),
        baseline_days=settings.sentiment_baseline_days,
        scored=sum(c.messages for c in totals.values()),
        negative=sum(c.negative for c in totals.values()),
        topics=topics,
        surges=surges,
    )


def day_start(now: datetime) -> datetime:
    """The start (00:00 UTC) of `now`'s UTC day."""
    return datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)


def hour_start(now: datetime) -> datetime:
    """The start of `now`'s UTC hour: where a surge baseline's hours are counted from."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def utc_stamp(dialect: str, *, hour: bool = False) -> sa.ColumnElement[str]:
    """A decision's UTC day as 'YYYY-MM-DD', computed by the database, or with `hour` its UTC hour as
    'YYYY-MM-DD HH' (the 11th character differs by backend, never read). SQLite keeps UTC text."""
    if dialect == "postgresql":
        pattern = "YYYY-MM-DD HH24" if hour else "YYYY-MM-DD"
        return sa.func.to_char(sa.func.timezone("UTC", col(DecisionLog.created_at)), pattern)
    return sa.func.substr(sa.cast(col(DecisionLog.created_at), sa.String), 1, 13 if hour else 10)
