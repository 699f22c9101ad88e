"""Intents versions (#20): every loaded folder is stored, listed, activated again on every replica, checked out."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from bot.api import create_app
from bot.config import Settings
from bot.routing.engine import Engine
from bot.store import versions
from bot.store.db import make_engine, upgrade
from tests.api_support import make_intents, temporary_database

KEYS = "widget:w-key,analyst:n-key,admin@Ada:root-key,admin:other-root"
ARRIVAL = "The customer ordered a card and wants to know when it arrives or where it is."
ARRIVAL_NEW = "The customer asks where their ordered card is or when the post will bring it."


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def edit(folder: Path, old: str, new: str) -> None:
    path = folder / "bank.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def client_for(folder: Path, url: str, encoder, cache_dir: Path, **settings: object) -> TestClient:
    config = Settings(intents_dir=folder, cache_dir=cache_dir, database_url=url, **settings)  # type: ignore[arg-type]
    engine = Engine(config, encoder=encoder)
    engine.load()
    return TestClient(create_app(config, engine=engine))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with temporary_database(request.param, tmp_path) as url:
        yield url


def test_loads_are_versions_and_an_old_one_comes_back_in_one_call(
    tmp_path: Path, database_url: str, bundled_encoder, cache_dir: Path
) -> None:
    folder = make_intents(tmp_path / "intents")
    with client_for(folder, database_url, bundled_encoder, cache_dir, api_keys=KEYS) as client:
        listed = client.get("/v1/versions", headers=bearer("n-key")).json()
        assert listed["total"] == 1 and listed["items"][0]["live"]
        first = listed["items"][0]
        assert first["loaded_by"] == "server start" and first["summary"].startswith(
            "first version: 5 intents"
        )
        assert first["files"] == ["bank.yaml", "knowledge/faq.yaml", "tone.yaml"]
        v1_intents = client.get("/healthz").json()["intents_version"]
        assert first["intents_version"] == v1_intents

        edit(folder, ARRIVAL, ARRIVAL_NEW)
        assert client.post("/v1/admin/reload", headers=bearer("root-key")).status_code == 200
        listed = client.get("/v1/versions", headers=bearer("n-key")).json()
        second = listed["items"][0]
        assert listed["total"] == 2 and listed["live_id"] == second["id"] != first["id"]
        assert second["loaded_by"] == "Ada"  # the admin key's owner
        assert second["summary"] == "changed card_arrival (description)"
        assert client.get("/healthz").json()["intents_version"] == second["intents_version"] != v1_intents

        # the same folder again is the same version, not a new row
        assert client.post("/v1/admin/reload", headers=bearer("other-root")).status_code == 200
        assert client.get("/v1/versions", headers=bearer("n-key")).json()["total"] == 2

        # rollback: the first version is live again, from the database; the folder on disk is untouched
        response = client.post(f"/v1/admin/versions/{first['id']}/activate", headers=bearer("other-root"))
        assert response.status_code == 200, response.text
        assert (
            response.json()["version"]["live"]
            and response.json()["version"]["last_activated_by"] == "admin key"
        )
        assert client.get("/healthz").json()["intents_version"] == v1_intents
        intents = client.get("/v1/intents", headers=bearer("n-key")).json()["intents"]
        assert next(i["description"] for i in intents if i["name"] == "card_arrival") == ARRIVAL
        assert ARRIVAL_NEW in (folder / "bank.yaml").read_text(encoding="utf-8")

        # a reload reads the folder on disk again (not the rolled-back copy), and makes it live
        assert client.post("/v1/admin/reload", headers=bearer("root-key")).status_code == 200
        assert client.get("/healthz").json()["intents_version"] == second["intents_version"]

        detail = client.get(f"/v1/versions/{first['id']}", headers=bearer("n-key")).json()
        assert ARRIVAL in detail["contents"]["bank.yaml"] and not detail["live"]

        # who may do what, and what an unknown version says
        assert client.get("/v1/versions", headers=bearer("w-key")).status_code == 403
        assert (
            client.post(f"/v1/admin/versions/{first['id']}/activate", headers=bearer("n-key")).status_code
            == 403
        )
        missing = client.post("/v1/admin/versions/999/activate", headers=bearer("root-key"))
        assert missing.status_code == 404
        assert "versions are numbered 1 to 2" in missing.json()["error"]["message"]


def roll_back_an_edit(folder: Path, url: str, encoder, cache_dir: Path) -> str:
    """Serve `folder` (version 1), reload it edited (version 2), activate version 1 again; the folder
    keeps the edit. Returns version 1's intents version."""
    with client_for(folder, url, encoder, cache_dir) as client:
        v1 = client.get("/healthz").json()["intents_version"]
        edit(folder, ARRIVAL, ARRIVAL_NEW)
        client.post("/v1/admin/reload")
        client.post("/v1/admin/versions/1/activate")
    return str(v1)


def test_a_restarted_replica_does_not_undo_a_rollback_but_a_new_folder_deploys(
    tmp_path: Path, bundled_encoder, cache_dir: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.store.db'}"
    folder = make_intents(tmp_path / "intents")
    v1 = roll_back_an_edit(folder, url, bundled_encoder, cache_dir)
    # the folder still holds version 2: a restart serves the rolled-back version 1
    with client_for(folder, url, bundled_encoder, cache_dir) as client:
        assert client.get("/healthz").json()["intents_version"] == v1
    # a folder never seen before is a deploy: it is stored and goes live
    edit(folder, ARRIVAL_NEW, ARRIVAL_NEW + " Also tracking.")
    with client_for(folder, url, bundled_encoder, cache_dir) as client:
        listed = client.get("/v1/versions").json()
        assert listed["total"] == 3 and listed["items"][0]["live"]
        assert client.get("/healthz").json()["intents_version"] == listed["items"][0]["intents_version"] != v1


def test_an_upgrade_that_renames_the_backend_does_not_undo_a_rollback(
    tmp_path: Path, bundled_encoder, cache_dir: Path
) -> None:
    """Versions stored under the model's former backend name (`+onnx-int8` before per-row scales) still
    identify the folder: a restart after the upgrade keeps serving the version rolled back to."""
    url = f"sqlite:///{tmp_path / 'bot.store.db'}"
    folder = make_intents(tmp_path / "intents")
    v1 = roll_back_an_edit(folder, url, bundled_encoder, cache_dir)
    database = make_engine(url)
    with database.begin() as connection:  # as an older release stored them: another backend, other hashes
        connection.exec_driver_sql(
            "UPDATE intents_version SET model_id = substr(model_id, 1, instr(model_id || '+', '+') - 1) "
            "|| '+former-backend', hash = 'former-' || id"
        )
    database.dispose()
    with client_for(folder, url, bundled_encoder, cache_dir) as client:
        assert client.get("/healthz").json()["intents_version"] == v1
        assert client.get("/v1/versions").json()["total"] == 2  # nothing new stored, nothing activated


def run_bot(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def test_checkout_writes_a_version_back_and_list_shows_them(
    tmp_path: Path, bundled_encoder, cache_dir: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.store.db'}"
    folder = make_intents(tmp_path / "intents")
    with client_for(folder, url, bundled_encoder, cache_dir) as client:
        edit(folder, ARRIVAL, ARRIVAL_NEW)
        (folder / "extra.yaml").write_text(
            "intents:\n  - name: opening_hours\n    description: When the branch is open.\n", encoding="utf-8"
        )
        client.post("/v1/admin/reload")
    env = {"BOT_DATABASE_URL": url, "BOT_CACHE_DIR": str(cache_dir)}
    listed = run_bot("versions", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert (
        lines[0].startswith("*    2")
        and "added opening_hours; changed card_arrival (description)" in lines[0]
    )
    assert lines[1].startswith("     1") and "by server start: first version" in lines[1]

    refused = run_bot("versions", "checkout", "1", "--intents", str(folder), env=env)
    assert refused.returncode == 2 and "--force" in refused.stderr and "extra.yaml" in refused.stderr
    assert (folder / "extra.yaml").exists()  # nothing was touched

    done = run_bot("versions", "checkout", "1", "--intents", str(folder), "--force", env=env)
    assert done.returncode == 0, done.stderr
    assert "1 written, 1 deleted, 2 unchanged" in done.stdout
    assert not (folder / "extra.yaml").exists()
    database = make_engine(url)
    upgrade(database)
    assert versions.folder_files(folder) == versions.get(database, 1).files
    database.dispose()

    fresh = tmp_path / "fresh"
    assert run_bot("versions", "checkout", "2", "--intents", str(fresh), env=env).returncode == 0
    assert (fresh / "extra.yaml").exists() and ARRIVAL_NEW in (fresh / "bank.yaml").read_text()
    unknown = run_bot("versions", "checkout", "9", "--intents", str(fresh), env=env)
    assert unknown.returncode == 2 and "no intents version 9" in unknown.stderr


def eventually(check: Callable[[], bool], seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.mark.slow
def test_activating_on_one_replica_makes_both_route_by_it(tmp_path: Path, cache_dir: Path) -> None:
    from tests.servers import bot_servers

    with temporary_database("postgresql", tmp_path) as url:
        folder = make_intents(tmp_path / "intents")
        env = {
            **os.environ,
            "BOT_DATABASE_URL": url,
            "BOT_INTENTS_DIR": str(folder),
            "BOT_CACHE_DIR": str(cache_dir),
            "BOT_API_KEYS": "",
            "BOT_LEARNED_SYNC_SECONDS": "0.5",
            "HF_HUB_OFFLINE": "1",
        }

        def version(base: str) -> str:
            return str(httpx.get(f"{base}/healthz", timeout=5).json()["intents_version"])

        # one after the other: the second finds the first's model files (exported once) in the cache
        with bot_servers(tmp_path, env, 2, one_by_one=True) as served:
            a, b = (one.url for one in served)
            v1 = version(a)
            assert version(b) == v1
            edit(folder, ARRIVAL, ARRIVAL_NEW)
            # replica a reloads the edited folder: b follows it from the database
            assert httpx.post(f"{a}/v1/admin/reload", timeout=60).status_code == 200
            v2 = version(a)
            assert v2 != v1 and eventually(lambda: version(b) == v2)
            # rollback on replica b: both route by version 1 again, and the decision log says so
            assert httpx.post(f"{b}/v1/admin/versions/1/activate", timeout=60).status_code == 200
            assert version(b) == v1 and eventually(lambda: version(a) == v1)
            httpx.post(f"{a}/v1/chat", json={"message": "where is my new card?"}, timeout=30)
            logged = httpx.get(f"{b}/v1/logs", params={"reviewed": "false"}, timeout=30).json()["items"]
            assert [d["intents_version"] for d in logged] == [v1]
