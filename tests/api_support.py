"""Helpers for API tests: a small intent set, throwaway SQLite/PostgreSQL databases, row counts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bot.config import Settings
from bot.routing.engine import Engine
from tests.conftest import write
from tests.scratch_postgres import scratch_postgres

PG_ADMIN_URL = os.environ.get(
    "BOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

DEMO_INTENTS = Path(__file__).resolve().parent.parent / "intents"
INTENTS = """\
intents:
  - name: card_arrival
    description: The customer ordered a card and wants to know when it arrives or where it is.
    examples: ["Where is my new card?"]
    answer: "Cards arrive in 3-5 working days{% if metadata.first_name %}, {{ metadata.first_name }}{% endif %}."
  - name: card_delivery_estimate
    description: The customer wants to know how long card delivery takes before ordering.
    answer: "Delivery takes 3-5 working days."
  - name: lost_or_stolen_card
    description: The customer lost their card or it was stolen.
    answer: "We froze your card; a colleague will call you."
    handoff: true
  - name: exchange_rate
    description: The customer asks which exchange rate we use for foreign currency.
    answer: "We use the interbank rate."
  - name: human_agent
    title: Talk to a person
    description: The customer asks to talk to a human, a real person, an agent or staff member.
    answer: "Connecting you with a colleague now."
    handoff: true
small_talk: false  # the test pins its intents: no built-in small talk (#27 item 5)
"""
FAQ = """\
entries:
  - question: Do you pay interest on savings?
    answer: Savings Pots earn 2% a year, paid monthly.
    source: https://larkspur.example/help/savings
"""


def make_intents(folder: Path) -> Path:
    """Write the small API intent set into `folder`."""
    write(folder / "bank.yaml", INTENTS)
    write(folder / "knowledge" / "faq.yaml", FAQ)
    # a bank's intents come with the demo bank's description of an angry customer (bot.content.tone)
    write(folder / "tone.yaml", (DEMO_INTENTS / "tone.yaml").read_text(encoding="utf-8"))
    return folder


def bank_engine(tmp_path_factory: Any, encoder: Any, cache_dir: Path, name: str) -> Engine:
    """An engine loaded on the small API intent set, written into a new temporary folder `name`."""
    folder = make_intents(tmp_path_factory.mktemp(name))
    engine = Engine(Settings(intents_dir=folder, cache_dir=cache_dir), encoder=encoder)
    engine.load()
    return engine


def postgres_available() -> bool:
    """Whether the machine's PostgreSQL answers."""
    try:
        with create_engine(PG_ADMIN_URL).connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


@contextmanager
def temporary_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of `kind` (sqlite or postgresql) that is dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'bot.store.db'}"
        return
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}; .ci/run should have started it")
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
    with scratch_postgres(PG_ADMIN_URL, "bot_test") as url:
        yield url


def row_counts(url: str) -> dict[str, int]:
    """How many rows each table holds."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
                for table in ("conversation", "message", "decision", "handoff_ticket", "review")
            }
    finally:
        engine.dispose()


def seed_confidences(
    url: str, calibration_id: str, *, n: int, off_topic: float, seed: int, review_every: int | None = None
) -> None:
    """`n` decisions of today in one conversation, `off_topic` of them at low confidence (the rest
    answered as card_arrival), scored with the confidence map `calibration_id`; with `review_every`,
    every so many reviewed as correct. Seeds the off-topic share estimate's tests."""
    from datetime import UTC, datetime, timedelta

    import numpy as np

    from bot.store.db import make_engine, session_scope, upgrade
    from bot.store.models import Conversation, DecisionLog, Review

    rng = np.random.default_rng(seed)
    off = round(off_topic * n)
    confidences = [*rng.uniform(0.8, 0.99, n - off), *rng.uniform(0.02, 0.25, off)]
    database = make_engine(url)
    upgrade(database)
    with session_scope(database) as session:
        conversation = Conversation()
        session.add(conversation)
        session.flush()
        rows = []
        for i, confidence in enumerate(confidences):
            answered = confidence >= 0.5
            row = DecisionLog(
                conversation_id=conversation.id,
                text=f"message {i}",
                route="answer" if answered else "handoff",
                intent="card_arrival" if answered else None,
                confidence=float(confidence),
                reason="seeded",
                threshold=0.5,
                margin=0.05,
                model_id="m",
                intents_version="v",
                calibration_id=calibration_id,
                latency_ms=1.0,
                created_at=datetime.now(UTC) - timedelta(minutes=i),
                reviewed=review_every is not None and i % review_every == 0,
            )
            session.add(row)
            rows.append(row)
        session.flush()
        for row in rows[::review_every] if review_every else []:
            session.add(Review(decision_id=row.id or 0, verdict="correct", intent=row.intent))
    database.dispose()
