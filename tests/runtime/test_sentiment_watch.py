"""The sentiment surge alert (#32 item 3) on a real SQLite database: 20 days of customer messages with
their anger scores, one topic's negative share jumping on the last day. The detector fires for that
topic only, once however many replicas look (one outbox event), and the metrics move; a steady stream
with day-to-day noise raises nothing."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import Session, select

from bot.insights.sentiment import NEGATIVE_THRESHOLD, day_start
from bot.runtime.metrics import Metrics
from bot.runtime.sentiment import SentimentWatch
from bot.store.db import make_engine, session_scope, upgrade
from bot.store.models import Conversation, DecisionLog, SentimentSurge, WebhookDelivery, WebhookSubscription

# steady negative shares: each topic its own level (refunds are complained about more than card arrival)
TOPICS = {"card_arrival": 0.05, "exchange_rate": 0.08, "refund_request": 0.12, "lost_card": 0.04}
NAMES = frozenset(TOPICS)
NOW = datetime(2026, 11, 20, 17, 30, tzinfo=UTC)
SURGE = "refund_request"


def seed_stream(
    url: str,
    now: datetime,
    *,
    surge: str | None = None,
    surge_share: float = 0.5,
    seed: int = 0,
    days: int = 20,
    today: float | None = None,
    wording: Callable[[str, bool, str], str] = lambda intent, negative, key: (
        f"{'angry' if negative else 'calm'} {intent} message {key}"
    ),
) -> list[str]:
    """`days` UTC days of messages up to `now` (40 a topic and day on average; today's share of 40 as the
    day has gone so far, or `today` a topic), the negative share of each topic drawn per day around its
    steady level; `surge`'s share is `surge_share` on the last day. Messages without a topic or without a
    score are mixed in (never counted). `wording` writes a message's text from its intent, tone and a key
    unique in the stream. Returns the texts of the surge's negative messages of the last day."""
    rng = np.random.default_rng(seed)
    start = day_start(now)
    rows: list[DecisionLog] = []
    surged: list[str] = []
    for back in range(days - 1, -1, -1):
        day = start - timedelta(days=back)
        span = (now - day).total_seconds() if back == 0 else 86_400.0
        for intent, steady in TOPICS.items():
            spread = 9 / steady - 1  # the day's share: sd about a third of the steady one (as the bench)
            share = (
                surge_share
                if intent == surge and back == 0
                else rng.beta(steady * spread, (1 - steady) * spread)
            )
            expected = 40 if back else (today if today is not None else 40 * span / 86_400)
            for i in range(int(rng.poisson(expected))):
                negative = bool(rng.random() < share)
                text = wording(intent, negative, f"{back}-{i}")
                if negative and intent == surge and back == 0:
                    surged.append(text)
                anger = rng.uniform(NEGATIVE_THRESHOLD + 0.01, 1.3) if negative else rng.uniform(-0.4, 0.5)
                at = day + timedelta(seconds=float(rng.uniform(0, span - 1)))
                rows.append(_decision(text, intent, float(anger), at))
        rows.append(_decision(f"unrouted {back}", None, 1.0, day))  # no topic
        rows.append(_decision(f"picked {back}", "lost_card", None, day))  # a clarify pick: no score
    database = make_engine(url)
    upgrade(database)
    with session_scope(database) as session:
        session.add(Conversation(id="c1"))
        session.flush()
        session.add_all(rows)
    database.dispose()
    return surged


def _decision(text: str, intent: str | None, anger: float | None, at: datetime) -> DecisionLog:
    return DecisionLog(
        conversation_id="c1",
        text=text,
        route="answer" if intent else "handoff",
        intent=intent,
        confidence=0.9,
        reason="seeded",
        threshold=0.5,
        margin=0.05,
        model_id="m",
        intents_version="v",
        latency_ms=1.0,
        anger=anger,
        created_at=at,
    )


@pytest.fixture()
def url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'bot.db'}"


def subscribe(url: str) -> None:
    database = make_engine(url)
    with session_scope(database) as session:
        session.add(WebhookSubscription(url="https://hooks.example/bot", secret="s" * 16))
    database.dispose()


def sample(metrics: Metrics, name: str, intent: str) -> float:
    found = re.search(rf'^{name}{{intent="{intent}"}} (\S+)$', metrics.exposition().decode(), re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_the_injected_surge_fires_for_its_topic_only_and_once_across_replicas(url: str) -> None:
    surged = seed_stream(url, NOW, surge=SURGE)
    subscribe(url)
    database = make_engine(url)
    replicas = [Metrics(), Metrics()]
    watches = [SentimentWatch(database, lambda: NAMES, m, clock=lambda: NOW) for m in replicas]

    line = watches[0]()
    assert line is not None and line.startswith(f"negative surge: {SURGE} ") and "card_arrival" not in line
    assert watches[1]() is None and watches[0]() is None  # the other replica, and the same one again

    with Session(database) as session:
        surges = session.exec(select(SentimentSurge)).all()
        events = session.exec(select(WebhookDelivery)).all()
    assert [(s.intent, s.day) for s in surges] == [(SURGE, "2026-11-20")]
    assert len(events) == 1 and events[0].event_type == "sentiment.surge"
    data = events[0].payload["data"]
    assert data["intent"] == SURGE and data["day"] == "2026-11-20"
    assert data["share"] > 0.35 and data["baseline_share"] < 0.2 and data["baseline_messages"] > 400
    assert data["window"] == {"start": "2026-11-20T00:00:00+00:00", "end": NOW.isoformat()}
    assert len(data["samples"]) == 3 and set(data["samples"]) <= set(surged)

    assert sample(replicas[0], "bot_sentiment_surges_total", SURGE) == 1.0
    assert sample(replicas[1], "bot_sentiment_surges_total", SURGE) == 0.0  # counted where it was stored
    assert sample(replicas[0], "bot_sentiment_surges_total", "card_arrival") == 0.0
    share = sample(replicas[0], "bot_sentiment_negative_share", SURGE)
    assert share == pytest.approx(data["share"], abs=0.05)  # the gauge follows the day as it goes on
    assert sample(replicas[0], "bot_sentiment_negative_share", "lost_card") < 0.2
    database.dispose()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_steady_stream_with_noise_raises_nothing(url: str, seed: int) -> None:
    seed_stream(url, NOW, seed=seed)
    subscribe(url)
    database = make_engine(url)
    metrics = Metrics()
    watch = SentimentWatch(database, lambda: NAMES, metrics, clock=lambda: NOW)
    assert watch() is None
    with Session(database) as session:
        assert session.exec(select(SentimentSurge)).all() == []
        assert session.exec(select(WebhookDelivery)).all() == []
    assert 0.0 < sample(metrics, "bot_sentiment_negative_share", "refund_request") < 0.35
    database.dispose()


def test_a_database_error_is_retried_not_forgotten(url: str) -> None:
    """A run that fails while storing the surge raises (the poller logs and retries): the next one stores it."""
    seed_stream(url, NOW, surge=SURGE)
    database = make_engine(url)
    watch = SentimentWatch(database, lambda: NAMES, clock=lambda: NOW)
    with session_scope(database) as session:  # the table is gone: the insert fails
        session.connection().exec_driver_sql("ALTER TABLE sentiment_surge RENAME TO sentiment_surge_away")
    with pytest.raises(Exception, match="sentiment_surge"):
        watch()
    with session_scope(database) as session:
        session.connection().exec_driver_sql("ALTER TABLE sentiment_surge_away RENAME TO sentiment_surge")
    assert watch() is not None
    database.dispose()
