"""What replicas share: the training lease (one winner, renewal, take-over after expiry) on SQLite and
PostgreSQL, and the model archive (no torch weights, nothing written outside its folders)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine as Database
from sqlalchemy import update

from bot.config import Settings
from bot.routing.encoders.model_folder import FINGERPRINT_FILE, model_fingerprint
from bot.routing.encoders.onnx_files import INT8_FILE, onnx_folder
from bot.runtime.model_archive import pack, unpack
from bot.runtime.model_share import ModelShare
from bot.runtime.training import TrainingRequest, TrainingStatus
from bot.store import trained_models
from bot.store.db import make_engine, session_scope, upgrade
from bot.store.models import TrainingLease, utcnow
from tests.api_support import temporary_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with temporary_database(request.param, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        yield engine
        engine.dispose()


def test_one_replica_holds_a_lease_until_it_expires_or_is_released(database: Database) -> None:
    take = trained_models.take_lease
    assert take(database, "self-abc", "a:1", 60)
    assert not take(database, "self-abc", "b:2", 60)  # held
    assert take(database, "self-abc", "a:1", 60)  # renewed by its holder
    assert trained_models.lease_holder(database, "self-abc")[0] == "a:1"  # type: ignore[index]
    with session_scope(database) as session:  # the holder died: its lease ran out
        session.execute(update(TrainingLease).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert take(database, "self-abc", "b:2", 60) and not take(database, "self-abc", "a:1", 60)
    trained_models.release_lease(database, "self-abc", "a:1")  # not a's any more: nothing happens
    assert trained_models.lease_holder(database, "self-abc")[0] == "b:2"  # type: ignore[index]
    trained_models.release_lease(database, "self-abc", "b:2")
    assert trained_models.lease_holder(database, "self-abc") is None
    assert take(database, "self-abc", "c:3", 60)


def test_a_model_is_stored_once(database: Database) -> None:
    model = trained_models.StoredModel("self-abc", "self-abc@123", "onnx-int8", b"archive", "a:1")
    assert not trained_models.is_stored(database, "self-abc")
    assert trained_models.store(database, model, "v1")
    assert not trained_models.store(database, model, "v1")  # another replica's is kept
    assert trained_models.is_stored(database, "self-abc")
    assert trained_models.fetch(database, "self-abc") == model


def fake_model(cache: Path, name: str = "self-abc") -> Path:
    """A complete self-trained folder as the child leaves it, with its int8 export in the cache."""
    model = cache / "models" / name
    model.mkdir(parents=True)
    for file, text in {"modules.json": "[]", "tokenizer.json": "{}", "self_training.json": "{}"}.items():
        (model / file).write_text(text)
    (model / "model.safetensors").write_bytes(b"\0" * 4096)  # the torch weights
    (model / "cross_fit.npz").write_bytes(b"vectors")
    fingerprint = model_fingerprint(model)
    (model / FINGERPRINT_FILE).write_text(fingerprint)
    graph = onnx_folder(cache, fingerprint)
    graph.mkdir(parents=True)
    (graph / INT8_FILE).write_bytes(b"int8 graph")
    return model


def test_the_archive_carries_what_onnx_needs_and_names_the_model_alike(tmp_path: Path) -> None:
    model = fake_model(tmp_path / "trainer")
    archive, fingerprint = pack(model, tmp_path / "trainer", "onnx-int8")
    other = tmp_path / "replica"
    target = unpack(archive, other / "models" / model.name, other, "onnx-int8")
    assert sorted(p.name for p in target.iterdir()) == sorted(
        p.name for p in model.iterdir() if p.name != "model.safetensors"
    )
    assert model_fingerprint(target) == fingerprint  # the same id as on the replica that trained it
    assert (onnx_folder(other, fingerprint) / INT8_FILE).read_bytes() == b"int8 graph"
    assert not list((other / "models").glob("*.partial-*"))


@pytest.mark.parametrize(
    "name", ["../../escape.txt", "/etc/escape.txt", "model/../../escape.txt", "onnx/x.onnx"]
)
def test_an_archive_never_writes_outside_its_folders(tmp_path: Path, name: str) -> None:
    model = fake_model(tmp_path / "trainer")
    archive, _ = pack(model, tmp_path / "trainer", "onnx-int8")
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as source:
        members = [(m, source.extractfile(m).read()) for m in source.getmembers() if m.isfile()]  # type: ignore[union-attr]
    hostile = io.BytesIO()
    with tarfile.open(fileobj=hostile, mode="w:gz") as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data))
        extra = tarfile.TarInfo(name)
        extra.size = 4
        tar.addfile(extra, io.BytesIO(b"evil"))
    replica = tmp_path / "sandbox" / "replica"
    unpack(hostile.getvalue(), replica / "models" / model.name, replica, "onnx-int8")
    written = {p for p in tmp_path.rglob("*") if p.is_file() and "trainer" not in p.parts}
    assert all(replica in p.parents for p in written)
    assert not any(p.name in ("escape.txt", "x.onnx") for p in written)


class FakeTrainer:
    """The trainer's face ModelShare uses, without a child process: the test says when training ends."""

    def __init__(self) -> None:
        self.requested: list[TrainingRequest] = []

    def request(self, request: TrainingRequest) -> None:
        self.requested.append(request)

    def training(self, target: Path) -> bool:
        return False

    def cancel(self) -> None:
        pass

    def status(self) -> TrainingStatus:
        return TrainingStatus()


def another_replica_looks_during_upload(database: Database, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether another replica could take the lease on self-abc at the moment the model is stored (one
    entry per upload)."""
    others: list[bool] = []
    real_store = trained_models.store

    def store_while_another_replica_looks(*args: Any) -> bool:
        others.append(trained_models.take_lease(database, "self-abc", "other:2", 60))
        return real_store(*args)

    monkeypatch.setattr(trained_models, "store", store_while_another_replica_looks)
    return others


def test_the_lease_is_held_until_the_model_is_stored_though_the_switch_cancels(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The switch to a model trained here reloads the folder, which then needs no training and cancels;
    the lease must outlive that until the upload is done, or another replica takes it meanwhile and trains
    the same model again (CI caught two replicas both training)."""
    settings = Settings(cache_dir=tmp_path / "cache", encoder_backend="onnx-int8")
    request = TrainingRequest(settings, settings.cache_dir / "models" / "self-abc", "v1")
    trainer = FakeTrainer()
    share = ModelShare(database, settings, trainer, use=lambda _: share.cancel())  # as the runtime's reload
    share.wanted = request
    assert share.step() == "training model self-abc here" and trainer.requested == [request]
    fake_model(settings.cache_dir)  # the child wrote the model

    others = another_replica_looks_during_upload(database, monkeypatch)
    share.finished(request, TrainingStatus(state="ready"))
    assert others == [False]  # still this replica's while it uploads
    assert trained_models.is_stored(database, "self-abc")
    assert trained_models.lease_holder(database, "self-abc") is None  # given up once stored


def test_a_long_switch_does_not_let_the_lease_run_out_before_the_upload(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing renews the lease once the training has ended; a switch that outlasts it (a big folder's
    reload) must not hand the model to another replica to train again."""
    settings = Settings(cache_dir=tmp_path / "cache", encoder_backend="onnx-int8")
    request = TrainingRequest(settings, settings.cache_dir / "models" / "self-abc", "v1")

    def slow_switch(_: TrainingRequest) -> None:
        share.cancel()
        with session_scope(database) as session:  # as if the reload had taken longer than the lease
            session.execute(update(TrainingLease).values(expires_at=utcnow() - timedelta(seconds=1)))

    share = ModelShare(database, settings, FakeTrainer(), use=slow_switch)
    share.wanted = request
    share.step()
    fake_model(settings.cache_dir)
    others = another_replica_looks_during_upload(database, monkeypatch)
    share.finished(request, TrainingStatus(state="ready"))
    assert others == [False]
