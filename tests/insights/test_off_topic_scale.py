"""Which logged decisions the off-topic share estimate reads: those on the live
confidence scale, across the calibration ids learned examples create, read from SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from bot.insights.off_topic_scale import on_live_scale
from bot.insights.off_topic_traffic import database_traffic, report
from bot.routing.engine import Engine
from bot.routing.state import RoutingState, Scoring
from bot.store.db import make_engine, session_scope, upgrade
from bot.store.models import Conversation, DecisionLog
from tests.api_support import temporary_database
from tests.conftest import write
from tests.routing.test_self_calibration import HOME, engine_on


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with temporary_database(request.param, tmp_path) as url:
        yield url


def logged(
    state: RoutingState, n: int, off_topic: float, seed: int, *, scoring: Scoring | None = None
) -> list[dict[str, object]]:
    """`n` decisions as the router logs them under `state`: a raw top score (a low one for `off_topic` of
    them), its confidence by `scoring` (default: the state's), both rounded as `candidates` rounds them."""
    scoring = scoring or state.scoring
    rng = np.random.default_rng(seed)
    off = round(off_topic * n)
    raw = np.concatenate([rng.normal(0.75, 0.08, n - off), rng.normal(0.3, 0.08, off)])
    rows = []
    for score in raw:
        confidence = round(float(scoring.confidence(np.array([score]))[0]), 4)
        top = {"intent": "weather", "score": round(float(score), 4), "confidence": confidence}
        rows.append(
            {
                "confidence": confidence,
                "candidates": [top],
                "model_id": state.model_id,
                "calibration_id": state.calibration_id,
                "intents_version": state.version,
            }
        )
    return rows


def store(url: str, rows: list[dict[str, object]]) -> None:
    """The rows as answered decisions of the last few hours, in one conversation."""
    database = make_engine(url)
    upgrade(database)
    now = datetime.now(UTC)
    with session_scope(database) as session:
        conversation = Conversation()
        session.add(conversation)
        session.flush()
        session.add_all(
            DecisionLog(
                conversation_id=conversation.id,
                text=f"message {i}",
                route="answer",
                intent="weather",
                reason="logged",
                threshold=0.5,
                margin=0.05,
                latency_ms=1.0,
                created_at=now - timedelta(seconds=i + 1),
                **row,  # type: ignore[arg-type]
            )
            for i, row in enumerate(rows)
        )
    database.dispose()


def test_decisions_before_a_learned_example_are_still_read(
    tmp_path: Path, bundled_encoder, cache_dir: Path, database_url: str
) -> None:
    """A learned example refits the self-calibrated point (a new calibration id) but keeps the confidence
    map, so the decisions logged before it count; a calibration with another map, and another model's
    decisions under the live id (a settings id names no model), do not."""
    folder = write(tmp_path / "intents" / "home.yaml", HOME).parent
    engine: Engine = engine_on(folder, cache_dir, bundled_encoder, database_url=database_url)
    engine.load()
    before = engine.state
    assert engine.learn("weather", "do I need an umbrella on friday")
    live = engine.state
    assert live.calibration_id != before.calibration_id and live.scoring == before.scoring

    other_map = dataclasses.replace(
        live.scoring, slope=live.scoring.slope * 1.5, center=live.scoring.center + 0.05
    )
    elsewhere = [
        {**row, "calibration_id": "an-older-folder"} for row in logged(live, 300, 0.3, 3, scoring=other_map)
    ]
    other_model = [{**row, "model_id": "another-model"} for row in logged(live, 100, 0.3, 4)]
    store(database_url, logged(before, 300, 0.3, 1) + logged(live, 250, 0.3, 2) + elsewhere + other_model)

    now = datetime.now(UTC)
    traffic = database_traffic(make_engine(database_url), now - timedelta(days=1), now + timedelta(minutes=1))
    assert len(traffic.confidences) == 950 and set(traffic.tops) == {"weather"}
    found = report(traffic, live, engine.settings)
    assert found.messages == 550 and found.other_operating_points == 0
    assert found.enough and found.low is not None and found.high is not None
    assert found.low - 0.02 <= 0.3 <= found.high + 0.02


def test_a_calibration_is_kept_or_dropped_whole(tmp_path: Path, bundled_encoder, cache_dir: Path) -> None:
    """Another map gives the same confidences near 0 and 1: a per-decision test would keep only those and
    bias the share, so a calibration whose decisions mostly disagree is dropped with all of them; and one
    stray row does not drop a calibration that agrees."""
    folder = write(tmp_path / "intents" / "home.yaml", HOME).parent
    engine = engine_on(folder, cache_dir, bundled_encoder)
    engine.load()
    live = engine.state
    steep = dataclasses.replace(live.scoring, slope=live.scoring.slope * 3)
    rows = logged(live, 200, 0.3, 5, scoring=steep) + logged(live, 200, 0.3, 6)
    ids = ["steep"] * 200 + ["refit"] * 200
    rows[250]["confidence"] = 0.5  # one odd row in the agreeing calibration
    confidences = np.array([r["confidence"] for r in rows], dtype=np.float64)
    scores = [r["candidates"][0]["score"] for r in rows]  # type: ignore[index]
    models = [live.model_id] * 400
    kept = on_live_scale(confidences, ids, models, scores, live)
    assert not kept[:200].any() and kept[200:].all()
    mapped = live.scoring.confidence(np.array(scores[:200]))
    assert (np.abs(mapped - confidences[:200]) < 1e-3).any()  # some of the steep map's agree on their own
    # without raw scores only the live calibration counts, as before
    assert not on_live_scale(confidences, ids, models, [None] * 400, live).any()
