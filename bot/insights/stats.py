"""Routing statistics for analysts: traffic by route and day, top intents, confidence, confusions, accuracy,
sentiment by topic (bot.insights.sentiment)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy import Engine as Database
from sqlmodel import Session, col, select

from bot.config_sentiment import SentimentSettings
from bot.insights.sentiment import SentimentOut, sentiment_card, utc_stamp
from bot.routing.policy import ROUTES
from bot.store.models import DecisionLog, Review

HISTOGRAM_BINS = 10
TOP = 10
# Messages a customer sends while an agent holds the ticket are logged as handoffs, but the bot decided
# nothing: counting them would make the handoff rate track how chatty customers are with agents.
NOT_A_BOT_DECISION = "with_agent"
# While a ticket waits for a person the bot still answers what it is sure of (counted as answers), and
# defers the rest to the open ticket, logged as a handoff: not a new one, so not counted as one.
WAITING = "awaiting_agent"


def bot_decisions() -> sa.ColumnElement[bool]:
    """The decisions the stats count: the bot's own, each handoff once."""
    escalation = col(DecisionLog.escalation)
    deferred = (escalation == WAITING) & (col(DecisionLog.route) == "handoff")
    return escalation.is_(None) | ((escalation != NOT_A_BOT_DECISION) & sa.not_(deferred))


class DayCount(BaseModel):
    """Decisions of one UTC day, by route."""

    day: date
    answer: int = 0
    clarify: int = 0
    retrieve: int = 0
    handoff: int = 0


class IntentCount(BaseModel):
    """How often an intent was the decision's intent."""

    intent: str
    count: int


class HistogramBin(BaseModel):
    """Decisions whose confidence falls in [low, high) (the last bin includes 1.0)."""

    low: float
    high: float
    count: int


class ConfusedPair(BaseModel):
    """Reviews saying the bot's intent (None: it accepted none) should have been `meant`."""

    predicted: str | None
    meant: str
    new_intent: bool  # `meant` is a proposed intent that does not exist yet
    count: int


class WeekAccuracy(BaseModel):
    """Reviewed decisions of the week starting `week` (Monday, UTC) and the share judged correct."""

    week: date
    reviewed: int
    correct: int
    accuracy: float


class StatsOut(BaseModel):
    """Everything on the stats page, for the last `days` days (UTC, today included)."""

    days: int
    since: datetime
    until: datetime
    total: int
    routes: dict[str, int]
    answer_rate: float
    clarify_rate: float
    fallback_rate: float  # share routed to retrieval: no intent was confident
    handoff_rate: float
    per_day: list[DayCount]
    top_intents: list[IntentCount]
    confidence_histogram: list[HistogramBin]
    reviewed: int
    review_accuracy: float | None
    confused_pairs: list[ConfusedPair]
    weekly_accuracy: list[WeekAccuracy]
    sentiment: SentimentOut  # negative share by intent and day, and surges (#32 item 3)


def window(days: int, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[since, until): the last `days` whole UTC days, today included."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    until = datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=UTC)
    return until - timedelta(days=days), until


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _confidence_bin() -> sa.ColumnElement[int]:
    """Bin i holds confidences in [i/10, (i+1)/10), the last one 1.0 too (a CASE: SQLite may lack FLOOR)."""
    width = 1 / HISTOGRAM_BINS
    confidence = col(DecisionLog.confidence)
    return sa.case(
        *((confidence < round((i + 1) * width, 10), i) for i in range(HISTOGRAM_BINS - 1)),
        else_=HISTOGRAM_BINS - 1,
    )


def compute_stats(
    database: Database,
    *,
    days: int = 30,
    now: datetime | None = None,
    sentiment: SentimentSettings | None = None,
) -> StatsOut:
    """Statistics of the decisions made in the window, and of the reviews of those decisions.

    Decisions are counted by the database (GROUP BY), so the page costs a few aggregate queries rather
    than reading every decision of the window (docs/evaluation.md, "Stats page"). Reviews are few, made
    by people: those are read and aggregated here.
    """
    since, until = window(days, now)
    rows = _window_rows(database, since, until)
    per_day, routes = _per_day(rows.by_day, since, days)
    reviews = _Reviews.of(rows.reviews)
    total = sum(routes.values())
    width = 1 / HISTOGRAM_BINS
    return StatsOut(
        days=days,
        since=since,
        until=until,
        total=total,
        routes={route: routes[route] for route in ROUTES},
        answer_rate=_rate(routes["answer"], total),
        clarify_rate=_rate(routes["clarify"], total),
        fallback_rate=_rate(routes["retrieve"], total),
        handoff_rate=_rate(routes["handoff"], total),
        per_day=per_day,
        top_intents=[IntentCount(intent=intent, count=n) for intent, n in rows.top],
        confidence_histogram=[
            HistogramBin(low=round(i * width, 2), high=round((i + 1) * width, 2), count=rows.bins.get(i, 0))
            for i in range(HISTOGRAM_BINS)
        ],
        reviewed=len(reviews.latest),
        review_accuracy=_rate(reviews.correct, len(reviews.latest)) if reviews.latest else None,
        confused_pairs=[
            ConfusedPair(predicted=p, meant=m, new_intent=new, count=n)
            for (p, m, new), n in sorted(reviews.confused.items(), key=lambda item: (-item[1], str(item[0])))[
                :TOP
            ]
        ],
        weekly_accuracy=[
            WeekAccuracy(week=w, reviewed=r, correct=c, accuracy=_rate(c, r))
            for w, (r, c) in sorted(reviews.weeks.items())
        ],
        sentiment=sentiment_card(database, since, until, now or datetime.now(UTC), sentiment),
    )


def unrouted_messages(database: Database, *, days: int, limit: int, now: datetime | None = None) -> list[str]:
    """Recent customer messages that no intent and no knowledge passage answered, newest first.

    A message the knowledge base answered (route `retrieve`, or any decision with a passage as its source)
    is not a gap, and clustered with real gaps it drafts an intent with wrong examples. Messages an analyst
    has since assigned to an intent are left out too: they are no longer a gap.
    """
    since, until = window(days, now)
    assigned = select(Review.decision_id).where(col(Review.intent).is_not(None))
    query = (
        select(DecisionLog.text)
        .where(
            col(DecisionLog.route) == "handoff",
            col(DecisionLog.intent).is_(None),
            col(DecisionLog.source).is_(None),
            col(DecisionLog.created_at) >= since,
            col(DecisionLog.created_at) < until,
            bot_decisions(),
            col(DecisionLog.id).not_in(assigned),
        )
        .order_by(col(DecisionLog.id).desc())
        .limit(limit)
    )
    with Session(database) as session:
        return list(session.exec(query).all())


@dataclass(frozen=True)
class _WindowRows:
    """What the database aggregates for the window: routes by day, top intents, confidence bins, reviews."""

    by_day: Sequence[Any]  # (day 'YYYY-MM-DD', route, count)
    top: Sequence[Any]  # (intent, count), most frequent first
    bins: dict[int, int]  # confidence bin -> count
    reviews: Sequence[Any]  # (decision id, verdict, meant, new intent, decided at, predicted), oldest first


def _window_rows(database: Database, since: datetime, until: datetime) -> _WindowRows:
    """The window's aggregate queries, in one session."""
    in_window = (
        col(DecisionLog.created_at) >= since,
        col(DecisionLog.created_at) < until,
        bot_decisions(),
    )
    day = utc_stamp(database.dialect.name).label("day")
    count = sa.func.count().label("count")
    with Session(database) as session:
        by_day = session.execute(
            sa.select(day, col(DecisionLog.route), count)
            .where(*in_window)
            .group_by(day, col(DecisionLog.route))
        ).all()
        top = session.execute(
            sa.select(col(DecisionLog.intent), count)
            .where(*in_window, col(DecisionLog.intent).is_not(None))
            .group_by(col(DecisionLog.intent))
            .order_by(count.desc(), col(DecisionLog.intent))
            .limit(TOP)
        ).all()
        confidence_bin = _confidence_bin().label("bin")
        bins = dict(
            session.execute(sa.select(confidence_bin, count).where(*in_window).group_by(confidence_bin)).all()
        )
        reviews = session.execute(
            sa.select(
                col(Review.decision_id),
                col(Review.verdict),
                col(Review.intent),
                col(Review.new_intent),
                col(DecisionLog.created_at),
                col(DecisionLog.intent),
            )
            .join(DecisionLog, col(DecisionLog.id) == col(Review.decision_id))
            .where(*in_window)
            .order_by(col(Review.id))
        ).all()
    return _WindowRows(by_day, top, bins, reviews)


def _per_day(by_day: Sequence[Any], since: datetime, days: int) -> tuple[list[DayCount], Counter[str]]:
    """Every day of the window with its decisions by route (days without any too), and the route totals."""
    per_day = {
        since.date() + timedelta(days=i): DayCount(day=since.date() + timedelta(days=i)) for i in range(days)
    }
    routes: Counter[str] = Counter()
    for day_text, route, n in by_day:
        routes[route] += n
        counts = per_day.get(date.fromisoformat(str(day_text)))
        if counts is not None and route in ROUTES:
            setattr(counts, route, getattr(counts, route) + n)
    return list(per_day.values()), routes


@dataclass(frozen=True)
class _Reviews:
    """The window's reviews, each decision as last judged: confusions and weekly accuracy."""

    latest: dict[int, tuple[str, str | None, str | None, date, str | None]]
    confused: Counter[tuple[str | None, str, bool]]
    weeks: dict[date, list[int]]  # Monday -> [reviewed, correct]

    @property
    def correct(self) -> int:
        """Decisions judged correct."""
        return sum(1 for verdict, *_ in self.latest.values() if verdict == "correct")

    @classmethod
    def of(cls, reviews: Sequence[Any]) -> _Reviews:
        """From review rows, oldest first."""
        latest = {  # a decision reviewed twice counts once, as last judged
            decision_id: (verdict, meant, new, created_at.astimezone(UTC).date(), predicted)
            for decision_id, verdict, meant, new, created_at, predicted in reviews
        }
        confused: Counter[tuple[str | None, str, bool]] = Counter()
        weeks: dict[date, list[int]] = {}
        for verdict, meant, new, reviewed_day, predicted in latest.values():
            week = weeks.setdefault(reviewed_day - timedelta(days=reviewed_day.weekday()), [0, 0])
            week[0] += 1
            if verdict == "correct":
                week[1] += 1
            elif meant is not None or new is not None:
                confused[(predicted, meant or new or "", meant is None)] += 1
        return cls(latest, confused, weeks)
