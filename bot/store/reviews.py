"""Routing logs for analysts: filtered listing and reviews of single decisions."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine as Database
from sqlalchemy import Subquery
from sqlmodel import Session, col, func, select

from bot.content.intents import IntentSet
from bot.content.suggest import unknown_intent
from bot.errors import InvalidInputError, NotFoundError
from bot.routing.policy import ROUTES
from bot.store.db import session_scope
from bot.store.examples import forget, remember
from bot.store.models import DecisionLog, LearnedExample, Review
from bot.store.outbox import Event, enqueue, review_data

VERDICTS = ("correct", "wrong")


@dataclass(frozen=True)
class LogFilter:
    """Which decisions to list; every field is optional."""

    route: str | None = None
    intent: str | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    reviewed: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    conversation_id: str | None = None
    request_id: str | None = None


def list_logs(
    database: Database, *, where: LogFilter, limit: int, offset: int
) -> tuple[list[DecisionLog], int]:
    """Decisions matching the filter, newest first, with the total for paging."""
    if where.route is not None and where.route not in ROUTES:
        raise InvalidInputError("route", f"'{where.route}' is not a route; allowed: {', '.join(ROUTES)}")
    conditions = []
    if where.route is not None:
        conditions.append(col(DecisionLog.route) == where.route)
    if where.intent is not None:
        conditions.append(col(DecisionLog.intent) == where.intent)
    if where.min_confidence is not None:
        conditions.append(col(DecisionLog.confidence) >= where.min_confidence)
    if where.max_confidence is not None:
        conditions.append(col(DecisionLog.confidence) <= where.max_confidence)
    if where.reviewed is not None:
        conditions.append(col(DecisionLog.reviewed) == where.reviewed)
    if where.since is not None:
        conditions.append(col(DecisionLog.created_at) >= where.since)
    if where.until is not None:
        conditions.append(col(DecisionLog.created_at) < where.until)
    if where.text:
        conditions.append(func.lower(col(DecisionLog.text)).contains(where.text.lower(), autoescape=True))
    if where.conversation_id is not None:
        conditions.append(col(DecisionLog.conversation_id) == where.conversation_id)
    if where.request_id is not None:
        conditions.append(col(DecisionLog.request_id) == where.request_id)
    with Session(database) as session:
        query = select(DecisionLog).where(*conditions).order_by(col(DecisionLog.id).desc())
        rows = session.exec(query.offset(offset).limit(limit)).all()
        total = session.exec(select(func.count()).select_from(DecisionLog).where(*conditions)).one()
        return list(rows), int(total)


@dataclass(frozen=True)
class Reviewed:
    """A stored review and the message it was about."""

    review: Review
    text: str


def review(
    database: Database,
    intents: IntentSet,
    *,
    decision_id: int,
    verdict: str,
    intent: str | None,
    new_intent: str | None,
    reviewer: str | None,
) -> Reviewed:
    """Record an analyst's verdict; 'wrong' must say what was meant (an intent or a proposed new one)."""
    if verdict not in VERDICTS:
        raise InvalidInputError("verdict", f"'{verdict}' is not a verdict; allowed: {', '.join(VERDICTS)}")
    if intent is not None and intents.get(intent) is None:
        raise InvalidInputError("intent", unknown_intent(intent, intents.names))
    if intent is not None and new_intent is not None:
        raise InvalidInputError("new_intent", "give either intent or new_intent, not both")
    with session_scope(database) as session:
        decision = session.get(DecisionLog, decision_id)
        if decision is None:
            raise NotFoundError(f"unknown decision {decision_id}")
        if verdict == "correct":
            # "correct" confirms what the bot did; naming another intent is a correction, i.e. "wrong"
            if intent is not None and intent != decision.intent:
                raise InvalidInputError(
                    "intent",
                    f"the bot chose {decision.intent or 'no intent'}; to name '{intent}' use verdict 'wrong'",
                )
            if new_intent is not None:
                raise InvalidInputError(
                    "new_intent", "a 'correct' verdict cannot propose a new intent; use 'wrong'"
                )
            meant = decision.intent  # None: the fallback (clarify, retrieve, handoff) was right
        else:
            meant = intent
            if meant is None and new_intent is None:
                raise InvalidInputError(
                    "intent", "a 'wrong' verdict needs the intent that was meant, or new_intent"
                )
            if meant is not None and meant == decision.intent:
                raise InvalidInputError("intent", f"'{meant}' is what the bot chose; use verdict 'correct'")
        row = Review(
            decision_id=decision_id, verdict=verdict, intent=meant, new_intent=new_intent, reviewer=reviewer
        )
        decision.reviewed = True
        if meant is not None:  # the message becomes an example, so the same message routes right next time
            remember(session, intent=meant, text=decision.text, source="review", decision_id=decision_id)
        else:
            forget(session, text=decision.text)
        session.add(decision)
        session.add(row)
        session.flush()
        enqueue(session, [Event("review.created", review_data(row, decision.text))])  # with the review
        return Reviewed(review=row, text=decision.text)


def latest_review_ids(decision_ids: Collection[int | None] | None = None) -> Subquery:
    """Each reviewed decision's latest review (columns `decision_id`, `id`): a decision reviewed twice
    counts as last judged. Only `decision_ids` when given."""
    query = select(col(Review.decision_id), func.max(col(Review.id)).label("id"))
    if decision_ids is not None:
        query = query.where(col(Review.decision_id).in_(decision_ids))
    return query.group_by(col(Review.decision_id)).subquery()


def latest_reviews(session: Session, decision_ids: Collection[int | None]) -> dict[int, Review]:
    """The latest review of each of `decision_ids` that has one, by decision id."""
    latest = latest_review_ids(decision_ids)
    rows = session.exec(select(Review).join(latest, col(latest.c.id) == col(Review.id))).all()
    return {row.decision_id: row for row in rows}


def reviewed_rows(database: Database) -> list[tuple[str, str | None]]:
    """Analysts' and agents' verdicts as labelled messages: (text, intent), or (text, None) out of scope.

    In scope: every learned example (a confirmed or reassigned review, a ticket resolved with an intent),
    its latest intent. Out of scope: messages whose latest review says a new intent is needed, which no
    current intent should have answered.
    """
    with Session(database) as session:
        learned = session.exec(select(LearnedExample).order_by(col(LearnedExample.id))).all()
        rows: list[tuple[str, str | None]] = [(row.text, row.intent) for row in learned]
        latest = latest_review_ids()
        unknown = session.exec(
            select(DecisionLog.text)
            .join(Review, col(Review.decision_id) == col(DecisionLog.id))
            .join(latest, col(latest.c.id) == col(Review.id))
            .where(col(Review.new_intent).is_not(None))
            .order_by(col(DecisionLog.id))
        ).all()
    taken = {text for text, _ in rows}
    rows.extend((text, None) for text in dict.fromkeys(unknown) if text not in taken)
    return rows
