"""`bot logs export`: decisions with their latest review as CSV or JSON lines, streamed in batches."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import Engine as Database
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from bot.errors import ConfigError
from bot.store.db import url_without_password
from bot.store.models import DecisionLog
from bot.store.reviews import latest_reviews

BATCH = 1000
COLUMNS = (
    "id",
    "created_at",
    "conversation_id",
    "message_id",
    "text",
    "route",
    "intent",
    "confidence",
    "candidates",
    "options",
    "reason",
    "threshold",
    "margin",
    "retrieval_score",
    "source",
    "context_used",
    "escalation",
    "chosen",
    "model_id",
    "intents_version",
    "calibration_id",
    "latency_ms",
    "request_id",
    "reviewed",
    "review_verdict",
    "review_intent",
    "review_new_intent",
    "reviewer",
)


def iter_logs(database: Database, *, since: datetime | None, route: str | None) -> Iterator[dict[str, Any]]:
    """Decisions oldest first, each a flat dict of `COLUMNS`; paged by id so memory stays flat."""
    last_id = 0
    while True:
        with Session(database) as session:
            query = select(DecisionLog).where(col(DecisionLog.id) > last_id)
            if since is not None:
                query = query.where(col(DecisionLog.created_at) >= since)
            if route is not None:
                query = query.where(col(DecisionLog.route) == route)
            rows = session.exec(query.order_by(col(DecisionLog.id)).limit(BATCH)).all()
            if not rows:
                return
            ids = [row.id for row in rows]
            latest = latest_reviews(session, ids)
        for row in rows:
            review = latest.get(row.id or 0)
            item = row.model_dump(include=set(COLUMNS))
            item["created_at"] = row.created_at.isoformat()
            item["review_verdict"] = review.verdict if review else None
            item["review_intent"] = review.intent if review else None
            item["review_new_intent"] = review.new_intent if review else None
            item["reviewer"] = review.reviewer if review else None
            yield {name: item.get(name) for name in COLUMNS}
        last_id = rows[-1].id or last_id


def _cell(value: Any) -> Any:
    """A CSV cell: lists as JSON text, and text a spreadsheet would run as a formula defused with a quote."""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def write_logs(
    database: Database, out: TextIO, *, fmt: str, since: datetime | None = None, route: str | None = None
) -> int:
    """Write decisions to `out` as `csv` (lists as JSON text) or `jsonl`; returns how many were written."""
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    count = 0
    try:
        for item in iter_logs(database, since=since, route=route):
            if writer is not None:
                writer.writerow({k: _cell(v) for k, v in item.items()})
            else:
                out.write(json.dumps(item, ensure_ascii=False) + "\n")
            count += 1
    except SQLAlchemyError as exc:
        raise ConfigError(
            f"cannot read decisions from {url_without_password(str(database.url))}: {str(exc).splitlines()[0]} "
            "(is BOT_DATABASE_URL right? `bot db upgrade` creates the tables)"
        ) from None
    return count
