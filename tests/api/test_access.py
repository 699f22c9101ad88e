"""API keys by role, CORS, reload through the API, migrations and `bot serve` start-up rules."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient

from bot.api import create_app
from bot.config import Settings
from bot.errors import ConfigError
from bot.routing.engine import Engine
from bot.store.db import _alembic_config, current_revision, make_engine, upgrade
from tests.api_support import make_intents, temporary_database

KEYS = "widget:w-key,agent:a-key,analyst:n-key,admin:root-key,widget:w-key-2"


@contextmanager
def app_client(
    tmp_path: Path, encoder, cache_dir: Path, client: tuple[str, int] = ("testclient", 50000), **settings: Any
) -> Iterator[TestClient]:
    """A test client of an app on the small intents and a fresh SQLite file, with `settings` on top."""
    config = Settings(
        intents_dir=make_intents(tmp_path / "intents"),
        cache_dir=cache_dir,
        database_url=f"sqlite:///{tmp_path / 'bot.store.db'}",
        **settings,
    )
    engine = Engine(config, encoder=encoder)
    engine.load()
    with TestClient(create_app(config, engine=engine), client=client) as test_client:
        yield test_client


@pytest.fixture()
def keyed(tmp_path: Path, bundled_encoder, cache_dir) -> Iterator[TestClient]:
    with app_client(
        tmp_path, bundled_encoder, cache_dir, api_keys=KEYS, cors_origins="https://shop.example"
    ) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("post", "/v1/chat", {"w-key", "w-key-2", "a-key", "n-key", "root-key"}),
        ("get", "/v1/handoffs", {"a-key", "root-key"}),
        ("get", "/v1/logs", {"n-key", "root-key"}),
        ("get", "/v1/intents", {"a-key", "n-key", "root-key"}),
        ("post", "/v1/admin/reload", {"root-key"}),
    ],
)
def test_roles(keyed: TestClient, method: str, path: str, allowed: set[str]) -> None:
    body = {"message": "hello"} if path == "/v1/chat" else None
    for key in ("w-key", "w-key-2", "a-key", "n-key", "root-key"):
        response = keyed.request(method, path, json=body, headers=bearer(key))
        if key in allowed:
            assert response.status_code == 200, (key, response.text)
        else:
            assert response.status_code == 403, (key, response.text)
            message = response.json()["error"]["message"]
            assert path in message and "needs a" in message
    missing = keyed.request(method, path, json=body)
    assert missing.status_code == 401 and "Authorization: Bearer KEY" in missing.json()["error"]["message"]
    wrong = keyed.request(method, path, json=body, headers=bearer("nope"))
    assert wrong.status_code == 401 and wrong.json()["error"]["message"] == "unknown API key"


def test_health_needs_no_key_and_says_keys_are_on(keyed: TestClient) -> None:
    health = keyed.get("/healthz")
    assert health.status_code == 200 and health.json()["auth"] == "keys"


def test_cors_allows_only_listed_origins(keyed: TestClient) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    ok = keyed.options("/v1/chat", headers={"Origin": "https://shop.example", **preflight})
    assert ok.headers.get("access-control-allow-origin") == "https://shop.example"
    other = keyed.options("/v1/chat", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers


def test_malformed_keys_are_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="must be ROLE:KEY"):
        create_app(Settings(api_keys="superuser:abc"))


def test_a_named_agent_key_acts_only_as_its_agent(tmp_path: Path, bundled_encoder, cache_dir) -> None:
    keys = "widget:w-key,agent@ann:ann-key,agent:team-key"
    with app_client(tmp_path, bundled_encoder, cache_dir, api_keys=keys) as client:
        ticket = client.post(
            "/v1/chat", json={"message": "I want to talk to a real person"}, headers=bearer("w-key")
        ).json()["ticket_id"]
        path = f"/v1/handoffs/{ticket}"
        assert client.get("/v1/handoffs/me", headers=bearer("ann-key")).json() == {"agent": "ann"}
        assert client.get("/v1/handoffs/me", headers=bearer("team-key")).json() == {"agent": None}
        posing = client.post(f"{path}/claim", json={"agent": "bob"}, headers=bearer("ann-key"))
        assert posing.status_code == 403
        assert (
            posing.json()["error"]["message"] == "this API key belongs to agent 'ann'; it cannot act as 'bob'"
        )
        claimed = client.post(f"{path}/claim", json={}, headers=bearer("ann-key"))  # the key says who
        assert claimed.status_code == 200 and claimed.json()["claimed_by"] == "ann"
        # a shared team key still names its agent in the body, and cannot pass for ann by leaving it out
        assert (
            client.post(f"{path}/reply", json={"text": "hi"}, headers=bearer("team-key")).status_code == 422
        )
        sent = client.post(f"{path}/reply", json={"text": "Ann here."}, headers=bearer("ann-key"))
        assert sent.status_code == 200 and sent.json()["author"] == "ann"
        done = client.post(f"{path}/resolve", json={"intent": "card_arrival"}, headers=bearer("ann-key"))
        assert done.status_code == 200 and done.json()["status"] == "resolved"


def test_a_malformed_key_owner_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="ROLE@NAME:KEY"):
        create_app(Settings(api_keys="agent@:abc"))
    with pytest.raises(ConfigError, match="ROLE@NAME:KEY"):
        create_app(Settings(api_keys="agent@ann<script>:abc"))


def test_reload_keeps_the_old_set_when_yaml_is_broken(keyed: TestClient) -> None:
    admin = bearer("root-key")
    before = keyed.get("/v1/intents", headers=admin).json()["version"]
    folder = Path(keyed.app.state.runtime.engine.intents_dir)  # type: ignore[attr-defined]
    good = (folder / "bank.yaml").read_text()
    (folder / "bank.yaml").write_text(good.replace("examples:", "exampels:", 1))
    broken = keyed.post("/v1/admin/reload", headers=admin)
    assert broken.status_code == 422
    assert broken.json()["error"]["message"].startswith(f"{folder / 'bank.yaml'}:4: unknown key 'exampels'")
    assert keyed.get("/v1/intents", headers=admin).json()["version"] == before
    assert keyed.post("/v1/chat", json={"message": "my new card still hasn't come"}, headers=admin).json()[
        "intent"
    ] == ("card_arrival")

    (folder / "bank.yaml").write_text(good.replace("which exchange rate", "what exchange rate"))
    fixed = keyed.post("/v1/admin/reload", headers=admin)
    assert fixed.status_code == 200 and fixed.json()["embedded_texts"] == 1
    assert keyed.get("/v1/intents", headers=admin).json()["version"] == fixed.json()["version"] != before


def test_reload_refuses_a_template_that_would_fail_at_the_customer(keyed: TestClient) -> None:
    admin = bearer("root-key")
    folder = Path(keyed.app.state.runtime.engine.intents_dir)  # type: ignore[attr-defined]
    good = (folder / "bank.yaml").read_text()
    for bad, problem in (
        ("{{ days | shout }}", "unknown filter 'shout'"),
        ("{{ days }}", "unknown name 'days'"),
    ):
        (folder / "bank.yaml").write_text(
            good.replace("Cards arrive in 3-5 working days", f"Cards arrive in {bad}")
        )
        refused = keyed.post("/v1/admin/reload", headers=admin)
        assert refused.status_code == 422, refused.text
        assert problem in refused.json()["error"]["message"]
        assert refused.json()["error"]["message"].startswith(f"{folder / 'bank.yaml'}:")
    (folder / "bank.yaml").write_text(good)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migrations_are_idempotent_and_match_the_models(kind: str, tmp_path: Path) -> None:
    with temporary_database(kind, tmp_path) as url:
        engine = make_engine(url)
        head = upgrade(engine)
        assert upgrade(engine) == head == current_revision(engine)
        config = _alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.check(config)  # raises if the tables differ from bot/store/models.py
        engine.dispose()


def run_bot(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_serve_refuses_public_address_without_keys(tmp_path: Path) -> None:
    result = run_bot(
        "serve", "--host", "0.0.0.0", "--intents", str(make_intents(tmp_path)), env={"BOT_API_KEYS": ""}
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: refusing to listen on 0.0.0.0 without API keys")


@pytest.mark.parametrize(
    ("address", "status"), [("203.0.113.9", 403), ("10.0.0.5", 403), ("127.0.0.1", 200), ("::1", 200)]
)
def test_an_app_without_keys_answers_only_this_machine(
    tmp_path: Path, bundled_encoder, cache_dir, address: str, status: int
) -> None:
    """Started by hand (`uvicorn bot.api.main:app --host 0.0.0.0`), an open app still refuses other machines."""
    with app_client(tmp_path, bundled_encoder, cache_dir, client=(address, 40000)) as client:
        response = client.post("/v1/chat", json={"message": "hello"})
        assert response.status_code == status, response.text
        if status == 403:
            message = response.json()["error"]["message"]
            assert "no API keys" in message and address in message
        assert client.get("/healthz").status_code == 200  # liveness stays open to load balancers


def test_db_upgrade_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = run_bot("db", "upgrade", env={"BOT_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None and f"is at revision {head}" in result.stdout
    bad = run_bot("db", "upgrade", env={"BOT_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    assert (
        bad.returncode == 2
        and bad.stderr.startswith("error: cannot migrate database")
        and "Traceback" not in bad.stderr
    )


def test_a_shared_key_cannot_act_as_an_agent_with_a_personal_key(
    tmp_path: Path, bundled_encoder, cache_dir
) -> None:
    keys = "widget:w-key,agent@ann:ann-key,agent:team-key,admin:root-key"
    with app_client(tmp_path, bundled_encoder, cache_dir, api_keys=keys) as client:
        ticket = client.post(
            "/v1/chat", json={"message": "I want to talk to a real person"}, headers=bearer("w-key")
        ).json()["ticket_id"]
        path = f"/v1/handoffs/{ticket}"
        for key in ("team-key", "root-key"):
            for name in ("ann", "ANN", " ann "):
                posing = client.post(f"{path}/claim", json={"agent": name}, headers=bearer(key))
                assert posing.status_code == 403, (key, name, posing.text)
                assert "has an API key of their own" in posing.json()["error"]["message"]
        # a name without a key of its own is still the shared key's to use
        claimed = client.post(f"{path}/claim", json={"agent": "bob"}, headers=bearer("team-key"))
        assert claimed.status_code == 200 and claimed.json()["claimed_by"] == "bob"
        for action, body in (("reply", {"text": "hi"}), ("resolve", {})):
            posing = client.post(
                f"{path}/{action}", json={**body, "agent": "ann"}, headers=bearer("team-key")
            )
            assert posing.status_code == 403, (action, posing.text)
        assert (
            client.post(
                f"{path}/reply", json={"agent": "bob", "text": "Bob here."}, headers=bearer("team-key")
            ).status_code
            == 200
        )
