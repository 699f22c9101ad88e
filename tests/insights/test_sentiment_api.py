"""Sentiment by topic through the API (#32 item 3): a chat turn stores its message's anger score, and
`GET /v1/stats` counts it per intent and day, negative above the stated threshold."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from bot.api import create_app
from bot.insights.sentiment import NEGATIVE_THRESHOLD
from bot.routing.engine import Engine
from bot.routing.policy import Decision
from bot.store.db import make_engine
from bot.store.models import DecisionLog
from bot.store.turn_rows import decision_values
from tests.api_support import bank_engine

CALM = "When will my new card arrive?"
ANGRY = "Where on earth is my card? I ordered it weeks ago and you keep fobbing me off, this is a disgrace!"


@pytest.fixture(scope="module")
def small_engine(tmp_path_factory: pytest.TempPathFactory, bundled_encoder, cache_dir) -> Engine:
    return bank_engine(tmp_path_factory, bundled_encoder, cache_dir, "sentiment_intents")


def test_a_turn_keeps_its_anger_and_the_stats_count_it(small_engine: Engine, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    settings = small_engine.settings.with_overrides(database_url=url)
    engine = Engine(settings, encoder=small_engine.query_encoder)
    engine.load()
    with TestClient(create_app(settings, engine=engine)) as client:
        for text in (CALM, CALM, ANGRY):
            assert client.post("/v1/chat", json={"message": text}).status_code == 200
        database = make_engine(url)
        with Session(database) as session:
            rows = session.exec(select(DecisionLog).order_by(DecisionLog.id)).all()
        database.dispose()
        assert [r.text for r in rows] == [CALM, CALM, ANGRY]
        assert {r.intent for r in rows} == {"card_arrival"}
        assert all(r.anger is not None for r in rows)
        assert rows[0].anger < NEGATIVE_THRESHOLD < rows[2].anger
        assert rows[2].escalation == "angry"  # an angry hand-off keeps its topic, and is counted under it

        card = client.get("/v1/stats", params={"days": 7}).json()["sentiment"]
    assert card["threshold"] == NEGATIVE_THRESHOLD and (card["scored"], card["negative"]) == (3, 1)
    [topic] = card["topics"]
    assert (topic["intent"], topic["messages"], topic["negative"], topic["share"]) == (
        "card_arrival",
        3,
        1,
        0.3333,
    )
    assert len(topic["per_day"]) == 7 and topic["per_day"][-1] == {
        "day": datetime.now(UTC).date().isoformat(),
        "messages": 3,
        "negative": 1,
    }
    assert card["surges"] == []


def test_a_clarify_pick_stores_no_anger_score() -> None:
    """A pick's text is the option's label, not the customer's words: nothing to count as a tone."""
    decision = Decision(
        route="answer",
        intent="card_arrival",
        confidence=1.0,
        candidates=(),
        reason="picked",
        threshold=0.5,
        margin=0.05,
        anger=0.0,
    )
    common = {"conversation_id": "c", "message_id": 1, "text": "Card arrival", "latency_ms": 1.0}
    picked = decision_values(decision, **common, escalation=None, chosen=True, at=datetime.now(UTC))
    typed = decision_values(
        replace(decision, anger=0.71234), **common, escalation=None, chosen=False, at=datetime.now(UTC)
    )
    assert picked["anger"] is None and typed["anger"] == 0.7123
