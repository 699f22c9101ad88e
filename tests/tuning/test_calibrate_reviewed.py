"""`bot calibrate --data reviewed`: analysts' verdicts and resolved tickets recalibrate the folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.routing.calibration import load_calibration
from bot.routing.encoders.model_folder import bundled_model_path, model_fingerprint
from bot.store.db import make_engine, session_scope, upgrade
from bot.store.examples import remember
from bot.store.models import Conversation, DecisionLog, Review
from bot.store.reviews import reviewed_rows
from tests.conftest import write
from tests.routing.test_self_calibration import HOME

pytestmark = pytest.mark.slow

LEARNED = {
    "lights_on": ["can you light up the living room", "bedroom lamp on", "I need light in the garage"],
    "lights_off": ["darken the kitchen", "no more light in the hall please", "lamp off"],
    "weather": ["do I need an umbrella today", "what is the forecast for saturday", "is it cold outside"],
    "alarm_set": ["get me up at half past six", "I need an alarm at noon", "alarm 7am"],
    "play_music": ["some rock music please", "play my chill mix", "music on"],
}
NEEDS_NEW_INTENT = ["order a pizza for me", "book a taxi to the station"]


def seed(url: str) -> None:
    """Learned examples (confirmed reviews) and two messages reviewed as needing a new intent."""
    database = make_engine(url)
    upgrade(database)
    with session_scope(database) as session:
        for intent, texts in LEARNED.items():
            for text in texts:
                remember(session, intent=intent, text=text, source="review")
        session.add(Conversation(id="c" * 32, channel="web", meta={}))
        session.flush()
        for text in NEEDS_NEW_INTENT:
            decision = DecisionLog(
                conversation_id="c" * 32,
                text=text,
                route="handoff",
                confidence=0.3,
                reason="test.",
                threshold=0.75,
                margin=0.025,
                model_id="m",
                intents_version="v",
                latency_ms=1.0,
            )
            session.add(decision)
            session.flush()
            session.add(Review(decision_id=decision.id, verdict="wrong", new_intent="takeaway_order"))
    rows = reviewed_rows(database)
    database.dispose()
    assert sorted(t for t, label in rows if label is None) == sorted(NEEDS_NEW_INTENT)
    assert len(rows) == sum(len(v) for v in LEARNED.values()) + len(NEEDS_NEW_INTENT)


def test_reviews_recalibrate_the_folder(tmp_path: Path) -> None:
    folder = write(tmp_path / "intents" / "home.yaml", HOME).parent
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    seed(url)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "BOT_CACHE_DIR": str(tmp_path / "cache"),
        "BOT_DATABASE_URL": url,
    }
    command = [sys.executable, "-c", "from bot.cli import main; main()", "calibrate", "--data", "reviewed"]
    done = subprocess.run(
        [*command, "--intents", str(folder), "--target-precision", "0.9", "--oos-rate", "0.1", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["rows"] == 17 and summary["oos_share_in_data"] == pytest.approx(2 / 17, abs=1e-3)
    assert set(summary["expected_by_oos_rate"]) >= {"0.0", "0.2"}
    calibration = load_calibration(folder, model_fingerprint(bundled_model_path()))
    assert calibration is not None and calibration.source == "reviews" and calibration.oos_rate == 0.1
    assert calibration.data == "reviewed messages"


def test_an_empty_review_store_is_one_clear_line(tmp_path: Path) -> None:
    folder = write(tmp_path / "intents" / "home.yaml", HOME).parent
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(make_engine(url))
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "BOT_CACHE_DIR": str(tmp_path / "cache"),
        "BOT_DATABASE_URL": url,
    }
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from bot.cli import main; main()",
            "calibrate",
            "--data",
            "reviewed",
            "--intents",
            str(folder),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("error: the review store has no reviewed messages yet")
    )
