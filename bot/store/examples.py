"""Learned examples: messages that reviews and resolved tickets confirmed as examples of an intent."""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine as Database
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.store.models import LearnedExample, utcnow


def text_hash(text: str) -> str:
    """The key a text is stored under."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def remember(
    session: Session,
    *,
    intent: str,
    text: str,
    source: str,
    decision_id: int | None = None,
    ticket_id: int | None = None,
) -> LearnedExample:
    """Store `text` as an example of `intent`, moving it from any intent it was learned for before."""
    key = text_hash(text)
    row = session.exec(
        select(LearnedExample).where(LearnedExample.text_hash == key).with_for_update()
    ).first()
    if row is None:
        try:  # a savepoint: another transaction may insert the same text at the same moment
            with session.begin_nested():
                row = LearnedExample(
                    text_hash=key,
                    text=text,
                    intent=intent,
                    source=source,
                    decision_id=decision_id,
                    ticket_id=ticket_id,
                )
                session.add(row)
            return row
        except IntegrityError:
            row = session.exec(
                select(LearnedExample).where(LearnedExample.text_hash == key).with_for_update()
            ).one()
    if row.intent != intent:
        row.intent = intent
        row.exported = False
    row.source, row.decision_id, row.ticket_id, row.updated_at = source, decision_id, ticket_id, utcnow()
    session.add(row)
    return row


def forget(session: Session, *, text: str) -> None:
    """Drop a learned example (an analyst said the message needs a new intent)."""
    row = session.exec(select(LearnedExample).where(LearnedExample.text_hash == text_hash(text))).first()
    if row is not None:
        session.delete(row)


def learned_examples(database: Database) -> dict[str, list[str]]:
    """Every learned example, by intent, oldest first."""
    with Session(database) as session:
        rows = session.exec(select(LearnedExample).order_by(col(LearnedExample.id))).all()
    by_intent: dict[str, list[str]] = {}
    for row in rows:
        by_intent.setdefault(row.intent, []).append(row.text)
    return by_intent


def learned_fingerprint(database: Database) -> tuple[int, int | None, str | None]:
    """Changes whenever a learned example is added, moved to another intent or dropped (one cheap query).

    Row count, highest id and latest update: an insert raises the id, a move to another intent sets
    `updated_at`, and a delete lowers the count.
    """
    with Session(database) as session:
        count, top, latest = session.exec(
            select(
                func.count(col(LearnedExample.id)),
                func.max(col(LearnedExample.id)),
                func.max(col(LearnedExample.updated_at)),
            )
        ).one()
    return int(count), top, None if latest is None else str(latest)


def unexported_examples(database: Database) -> list[LearnedExample]:
    """Learned examples not yet written into the intent YAML, oldest first."""
    with Session(database) as session:
        query = select(LearnedExample).where(col(LearnedExample.exported).is_(False))
        return list(session.exec(query.order_by(col(LearnedExample.id))).all())


def mark_exported(session: Session, ids: list[int]) -> None:
    """Flag learned examples as written into the YAML, so the next export skips them."""
    if ids:
        rows = session.exec(select(LearnedExample).where(col(LearnedExample.id).in_(ids))).all()
        for row in rows:
            row.exported = True
            session.add(row)
