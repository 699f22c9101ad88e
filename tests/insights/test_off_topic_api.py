"""`GET /v1/stats`'s `off_topic` field and `POST /v1/off-topic-share` (#31 item 3)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from bot.api import create_app
from bot.api.insights import yaml_intents
from bot.config import Settings
from bot.content.intents import load_intents
from bot.content.off_topic import OffTopicShare
from bot.insights import off_topic_traffic
from bot.insights.off_topic_traffic import Traffic, report
from bot.routing.cross_fit import FOLDS, CrossFit, example_folds, texts_key
from bot.routing.engine import Engine
from bot.routing.pseudo_queries import SELF_TRAINING_FILE, Evidence
from tests.api_support import make_intents, seed_confidences
from tests.conftest import write
from tests.routing.test_cross_fit import OVERLAPPING
from tests.routing.test_self_calibration import engine_on


def app_on(tmp_path: Path, bundled_encoder, cache_dir: Path, keys: str = "") -> tuple[Engine, Settings]:
    folder = make_intents(tmp_path / "intents")
    settings = Settings(
        intents_dir=folder,
        cache_dir=cache_dir,
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        api_keys=keys,
    )
    engine = Engine(settings, encoder=bundled_encoder)
    engine.load()
    return engine, settings


def seed(url: str, calibration_id: str, n: int, off_topic: float) -> None:
    """`n` decisions of today, `off_topic` of them at low confidence; every tenth reviewed."""
    seed_confidences(url, calibration_id, n=n, off_topic=off_topic, seed=5, review_every=10)


def test_stats_report_the_share_and_say_when_too_few_messages(
    tmp_path: Path, bundled_encoder, cache_dir: Path
) -> None:
    engine, settings = app_on(tmp_path, bundled_encoder, cache_dir)
    with TestClient(create_app(settings, engine=engine)) as client:
        empty = client.get("/v1/stats").json()["off_topic"]
        assert not empty["enough"] and empty["share"] is None and empty["messages"] == 0
        assert empty["advice"].startswith(
            "not enough traffic yet to estimate the off-topic share: 0 messages"
        )
        assert empty["configured"] == settings.oos_rate and empty["configured_by"] == "settings"
        seed(settings.database_url, engine.state.calibration_id, 400, 0.4)
        found = client.get("/v1/stats").json()["off_topic"]
    assert found["enough"] and found["messages"] == 400 and found["off"]
    assert found["low"] <= found["share"] <= found["high"]
    assert found["advice"].startswith(f"traffic looks about {found['share']:.0%} off-topic")
    assert found["reviewed"] == 40 and found["reviewed_off_topic"] == 16  # reviews naming no intent
    assert found["reviewed_low"] < 0.4 < found["reviewed_high"]
    assert found["command"].endswith("bot check --data logs.csv --set-share")


def test_an_admin_writes_the_share_into_the_folder_and_it_goes_live(
    tmp_path: Path, bundled_encoder, cache_dir: Path
) -> None:
    engine, settings = app_on(tmp_path, bundled_encoder, cache_dir, keys="analyst:A1,admin:X1")
    with TestClient(create_app(settings, engine=engine)) as client:
        analyst = {"Authorization": "Bearer A1"}
        admin = {"Authorization": "Bearer X1"}
        assert client.post("/v1/off-topic-share", json={"share": 0.2}, headers=analyst).status_code == 403
        assert client.post("/v1/off-topic-share", json={"share": 1.0}, headers=admin).status_code == 422
        before = engine.state.version
        done = client.post("/v1/off-topic-share", json={"share": 0.2}, headers=admin)
        assert done.status_code == 200, done.text
        assert done.json()["file"] == "bank.yaml" and done.json()["version"] != before
        assert engine.state.intents.off_topic_share == 0.2
        assert client.get("/v1/stats", headers=analyst).json()["off_topic"]["configured_by"] == "folder"
    assert load_intents(settings.intents_dir).off_topic_share == 0.2


def test_without_a_calibration_the_folder_share_is_the_one_assumed(
    tmp_path: Path, bundled_encoder, cache_dir: Path
) -> None:
    """Self-calibration found too little to fit (no calibration): the folder's key still beats BOT_OOS_RATE,
    as `configured_by` says."""
    engine, settings = app_on(tmp_path, bundled_encoder, cache_dir)
    key = OffTopicShare(settings.intents_dir / "bank.yaml", 1, 0.25)
    intents = dataclasses.replace(engine.state.intents, off_topic=key)
    state = dataclasses.replace(engine.state, intents=intents, calibration=None)
    found = report(Traffic(np.zeros(0), [], []), state, settings)
    assert settings.oos_rate != 0.25
    assert found.configured == 0.25 and found.configured_by == "folder"


def test_a_self_trained_models_reference_is_scored_on_the_yaml_intents(
    tmp_path: Path, bundled_encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With learned examples live, a self-trained model's cross-fit (which covers the YAML texts only)
    still scores the in-scope reference, as the engine's self-calibration does: the learned example is
    not among the reference's pseudo-queries."""
    folder = write(tmp_path / "intents" / "home.yaml", OVERLAPPING).parent
    stock = engine_on(folder, tmp_path / "cache", bundled_encoder)
    stock.load()
    model = tmp_path / "model"  # stands in for a self-trained model folder: marker and cross-fit
    model.mkdir()
    (model / SELF_TRAINING_FILE).write_text("{}", encoding="utf-8")
    base = stock.state
    vectors = np.stack([base.intent_index.vectors()] * FOLDS)
    CrossFit(vectors=vectors, folds=example_folds(base.intents), key=texts_key(base.intents)).save(model)
    engine = engine_on(folder, tmp_path / "cache", bundled_encoder, model=str(model))
    engine.load(extra_examples={"weather": ["do I need an umbrella today"]})
    state, settings = engine.state, engine.settings
    covered = Evidence.of(str(model), base.intents).query_rows(base)

    monkeypatch.setattr(off_topic_traffic, "_cached", None)
    found = off_topic_traffic.reference_for(state, settings, engine.encoder, lambda: base.intents)
    assert found is not None and len(found.conf_in) == len(covered)
    monkeypatch.setattr(off_topic_traffic, "_cached", None)  # the folder unknown: the live intents decide
    unknown = off_topic_traffic.reference_for(state, settings, engine.encoder)
    assert unknown is not None and len(unknown.conf_in) == len(covered) + 1

    read = yaml_intents(engine, state)  # what GET /v1/stats passes: the loaded YAML intents of the state
    assert (found_yaml := read()) is not None and found_yaml.version == base.version
    write(folder / "home.yaml", OVERLAPPING.replace("play some jazz", "play some blues"))
    assert read() is not None  # an edit on disk not yet reloaded changes nothing live
    assert engine.learn("weather", "will it snow tonight")  # the live state moved on from `state`
    assert read() is None
