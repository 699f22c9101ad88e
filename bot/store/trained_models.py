"""Trained models replicas share, and the lease that makes exactly one replica train a folder version.

A lease is one row per model key. Taking it is a single conditional write that succeeds for one replica
only: an INSERT when nobody holds it, else an UPDATE that matches only an expired lease (its holder
died) or one this replica already holds. The holder renews it while it trains and deletes it when the
model is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine as Database
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.store.db import session_scope
from bot.store.models import TrainedModel, TrainingLease, utcnow


@dataclass(frozen=True)
class StoredModel:
    """A stored model's archive and what unpacking it needs."""

    key: str
    fingerprint: str
    backend: str
    archive: bytes
    trained_by: str


def is_stored(database: Database, key: str) -> bool:
    """Whether the model `key` is in the database (the archive is not read)."""
    with Session(database) as session:
        return session.exec(select(TrainedModel.id).where(TrainedModel.key == key)).first() is not None


def fetch(database: Database, key: str) -> StoredModel | None:
    """The stored model `key` with its archive, or None."""
    with Session(database) as session:
        row = session.exec(select(TrainedModel).where(TrainedModel.key == key)).first()
        if row is None:
            return None
        return StoredModel(row.key, row.fingerprint, row.backend, row.archive, row.trained_by)


def store(database: Database, model: StoredModel, intents_version: str) -> bool:
    """Store a trained model; False when one with this key is stored already (another replica's)."""
    try:
        with session_scope(database) as session:
            session.add(
                TrainedModel(
                    key=model.key,
                    intents_version=intents_version,
                    fingerprint=model.fingerprint,
                    backend=model.backend,
                    size_bytes=len(model.archive),
                    archive=model.archive,
                    trained_by=model.trained_by[:200],
                )
            )
        return True
    except IntegrityError:
        return False


def take_lease(database: Database, key: str, holder: str, seconds: float) -> bool:
    """Whether `holder` now holds the lease on `key` for `seconds` (taken, taken over, or renewed)."""
    now = utcnow()
    expires = now + timedelta(seconds=seconds)
    try:
        with session_scope(database) as session:
            session.add(TrainingLease(key=key, holder=holder[:200], expires_at=expires))
        return True
    except IntegrityError:
        pass
    with session_scope(database) as session:
        taken = session.execute(
            update(TrainingLease)
            .where(col(TrainingLease.key) == key)
            .where((col(TrainingLease.expires_at) < now) | (col(TrainingLease.holder) == holder[:200]))
            .values(holder=holder[:200], expires_at=expires)
        )
        return bool(taken.rowcount == 1)  # type: ignore[attr-defined]


def release_lease(database: Database, key: str, holder: str) -> None:
    """Give the lease up (only if `holder` holds it)."""
    with session_scope(database) as session:
        session.execute(
            delete(TrainingLease)
            .where(col(TrainingLease.key) == key)
            .where(col(TrainingLease.holder) == holder[:200])
        )


def lease_holder(database: Database, key: str) -> tuple[str, datetime] | None:
    """Who holds the lease on `key` and until when, or None."""
    with Session(database) as session:
        row = session.get(TrainingLease, key)
        return (row.holder, row.expires_at) if row is not None else None
