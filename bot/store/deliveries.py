"""Sending the outbox: claiming due deliveries (one replica each), recording results, listing and re-sending.

A claim is a lease: the row's `lease_until` is set in the claiming transaction, and no other dispatcher
takes a row whose lease runs. Each subscription's due rows are claimed apart (up to the limit each), so an
endpoint with a long backlog of retries never crowds out another's new events. PostgreSQL picks the rows with `SELECT ... FOR UPDATE SKIP LOCKED`, so two
replicas claiming at once take different rows without waiting on each other; SQLite (one writer at a
time) claims each row with a conditional UPDATE. A dispatcher that dies after sending, before recording
it, leaves the lease to run out and the row is sent again: at least once, never lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine as Database
from sqlalchemy import delete, or_, update
from sqlmodel import Session, col, func, select

from bot.errors import ConflictError, NotFoundError
from bot.store.db import session_scope
from bot.store.models import WebhookDelivery, WebhookSubscription, utcnow


@dataclass(frozen=True)
class Due:
    """A claimed delivery: what to send, where, signed with which secret."""

    id: int
    event_id: str
    event_type: str
    payload: dict[str, Any]
    attempts: int  # made before this one
    url: str
    secret: str
    subscription_id: int = 0


def _due(now: Any) -> Any:
    """The condition of a row that may be sent now: pending, its time come, nobody holding it."""
    return (
        (col(WebhookDelivery.status) == "pending")
        & (col(WebhookDelivery.next_attempt_at) <= now)
        & or_(col(WebhookDelivery.lease_until).is_(None), col(WebhookDelivery.lease_until) < now)
    )


def claim(
    database: Database,
    *,
    limit: int,
    lease_seconds: float,
    endpoints: int | None = None,
    after: int = 0,
) -> list[Due]:
    """Up to `limit` due deliveries of each subscription, oldest first, leased to the caller for
    `lease_seconds`; of at most `endpoints` subscriptions, taken in id order from the first after `after`
    (round the end), so that with more endpoints than are sent to at once each gets its turn."""
    now = utcnow()
    lease = now + timedelta(seconds=lease_seconds)
    with session_scope(database) as session:
        waiting = sorted(
            session.exec(select(WebhookDelivery.subscription_id).where(_due(now)).distinct()).all()
        )
        waiting = [i for i in waiting if i > after] + [i for i in waiting if i <= after]
        postgres = session.get_bind().dialect.name == "postgresql"
        rows: list[WebhookDelivery] = []
        for subscription_id in waiting[:endpoints]:
            due = (
                select(WebhookDelivery)
                .where(_due(now), col(WebhookDelivery.subscription_id) == subscription_id)
                .order_by(col(WebhookDelivery.id))
                .limit(limit)
            )
            if postgres:
                taken = list(session.exec(due.with_for_update(skip_locked=True)).all())
                for row in taken:
                    row.lease_until = lease
                    session.add(row)
            else:  # SQLite: each row is taken by an UPDATE that only matches while nobody holds it
                taken = [row for row in session.exec(due).all() if _take(session, row, now, lease)]
            rows.extend(taken)
        session.flush()
        secrets = _subscriptions(session, {row.subscription_id for row in rows})
        return [
            Due(
                row.id or 0,
                row.event_id,
                row.event_type,
                row.payload,
                row.attempts,
                *secrets[row.subscription_id],
                subscription_id=row.subscription_id,
            )
            for row in rows
            if row.subscription_id in secrets
        ]


def release(database: Database, delivery_ids: Sequence[int], *, at: datetime) -> None:
    """Give claimed rows back unsent, due again `at` (their endpoint just failed: no attempt is counted)."""
    if not delivery_ids:
        return
    with session_scope(database) as session:
        session.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id).in_(list(delivery_ids)), col(WebhookDelivery.status) == "pending")
            .values(lease_until=None, next_attempt_at=at)
        )


def defer(database: Database, subscription_id: int, *, until: datetime) -> int:
    """Hold back a failing endpoint's other pending rows until `until` (its backoff), so its backlog is
    not tried row by row meanwhile; returns how many were deferred."""
    now = utcnow()
    with session_scope(database) as session:
        done = session.execute(
            update(WebhookDelivery)
            .where(
                col(WebhookDelivery.subscription_id) == subscription_id,
                col(WebhookDelivery.status) == "pending",
                col(WebhookDelivery.next_attempt_at) < until,
                or_(col(WebhookDelivery.lease_until).is_(None), col(WebhookDelivery.lease_until) < now),
            )
            .values(next_attempt_at=until)
        )
        return int(done.rowcount)  # type: ignore[attr-defined]


def _take(session: Session, row: WebhookDelivery, now: Any, lease: Any) -> bool:
    won = session.execute(
        update(WebhookDelivery)
        .where(
            col(WebhookDelivery.id) == row.id,
            col(WebhookDelivery.status) == "pending",
            or_(col(WebhookDelivery.lease_until).is_(None), col(WebhookDelivery.lease_until) < now),
        )
        .values(lease_until=lease)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    return bool(won)


def _subscriptions(session: Session, ids: set[int]) -> dict[int, tuple[str, str]]:
    if not ids:
        return {}
    rows = session.exec(
        select(WebhookSubscription.id, WebhookSubscription.url, WebhookSubscription.secret).where(
            col(WebhookSubscription.id).in_(ids)
        )
    ).all()
    return {row_id: (url, secret) for row_id, url, secret in rows if row_id is not None}


def delivered(database: Database, delivery_ids: Sequence[int]) -> None:
    """Their receiver answered 2xx (one write for a round's deliveries to one endpoint)."""
    if not delivery_ids:
        return
    with session_scope(database) as session:
        session.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id).in_(list(delivery_ids)))
            .values(
                status="delivered",
                attempts=WebhookDelivery.attempts + 1,
                delivered_at=utcnow(),
                lease_until=None,
                last_error=None,
            )
        )


@dataclass(frozen=True)
class Failed:
    """A recorded failed attempt: whether the delivery gave up, and when it (or its endpoint) is tried next."""

    gave_up: bool
    retry_at: datetime


def attempt_failed(
    database: Database, due: Due, error: str, *, max_attempts: int, backoff_seconds: float, max_backoff: float
) -> Failed:
    """Record a failed attempt: retried after an exponentially growing wait (`backoff_seconds` doubled per
    attempt, at most `max_backoff`), or kept as failed after `max_attempts`."""
    attempts = due.attempts + 1
    exhausted = attempts >= max_attempts
    wait = min(max_backoff, backoff_seconds * 2 ** (attempts - 1))
    retry_at = utcnow() + timedelta(seconds=wait)
    with session_scope(database) as session:
        session.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id) == due.id)
            .values(
                status="failed" if exhausted else "pending",
                attempts=attempts,
                next_attempt_at=retry_at,
                lease_until=None,
                last_error=error[:500],
            )
        )
    return Failed(exhausted, retry_at)


def list_failed(database: Database, *, limit: int, offset: int) -> tuple[list[WebhookDelivery], int]:
    """Deliveries that exhausted their retries (or lost their subscription), newest first, with the total."""
    with Session(database) as session:
        where = col(WebhookDelivery.status) == "failed"
        rows = session.exec(
            select(WebhookDelivery)
            .where(where)
            .order_by(col(WebhookDelivery.id).desc())
            .offset(offset)
            .limit(limit)
        ).all()
        total = session.exec(select(func.count()).select_from(WebhookDelivery).where(where)).one()
        return list(rows), int(total)


def get(database: Database, delivery_id: int) -> WebhookDelivery:
    """One delivery, whatever its state (the failed-deliveries page follows a re-sent one with it)."""
    with Session(database) as session:
        row = session.get(WebhookDelivery, delivery_id)
        if row is None:
            raise NotFoundError(f"unknown webhook event {delivery_id}")
        return row


def resend(database: Database, delivery_id: int) -> WebhookDelivery:
    """Queue a failed (or delivered) delivery again, with fresh retries; the same event id, so a receiver
    that got it before can tell."""
    with session_scope(database) as session:
        row = session.get(WebhookDelivery, delivery_id)
        if row is None:
            raise NotFoundError(f"unknown webhook event {delivery_id}")
        if row.status == "pending":
            raise ConflictError(f"webhook event {delivery_id} is already waiting to be sent")
        subscription = session.get(WebhookSubscription, row.subscription_id)
        if subscription is None or not subscription.active:
            raise ConflictError(
                f"webhook event {delivery_id}'s subscription was deleted; nothing to send it to"
            )
        row.status, row.attempts, row.next_attempt_at, row.lease_until = "pending", 0, utcnow(), None
        session.add(row)
        session.flush()
        return row


def counts(database: Database) -> dict[str, int]:
    """How many deliveries are pending and failed (the metrics' backlog and failures)."""
    with Session(database) as session:
        rows = session.exec(
            select(WebhookDelivery.status, func.count())
            .where(col(WebhookDelivery.status).in_(("pending", "failed")))
            .group_by(col(WebhookDelivery.status))
        ).all()
    found = {status: int(n) for status, n in rows}
    return {"pending": found.get("pending", 0), "failed": found.get("failed", 0)}


def prune(database: Database, *, older_than_days: float) -> int:
    """Delete deliveries delivered more than `older_than_days` ago (failed ones are kept until re-sent);
    returns how many."""
    cutoff = utcnow() - timedelta(days=older_than_days)
    with session_scope(database) as session:
        done = session.execute(
            delete(WebhookDelivery).where(
                col(WebhookDelivery.status) == "delivered", col(WebhookDelivery.delivered_at) < cutoff
            )
        )
        return int(done.rowcount)  # type: ignore[attr-defined]
