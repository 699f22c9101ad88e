"""The agent's ticket detail endpoint (SQLite and PostgreSQL) and how the widget and console pages are served."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.api import create_app
from bot.chat.rules import PERSON_WILL_REPLY
from bot.config import Settings
from bot.routing.engine import Engine
from tests.api_support import make_intents, temporary_database

POLICY = {"threshold": 0.5, "margin": 0.1, "retrieval_threshold": 0.5}
KEYS = "widget:w-key,agent:a-key,analyst:n-key"


@pytest.fixture(scope="module")
def small_engine(tmp_path_factory: pytest.TempPathFactory, bundled_encoder, cache_dir) -> Engine:
    folder = make_intents(tmp_path_factory.mktemp("widget_api_intents"))
    engine = Engine(Settings(intents_dir=folder, cache_dir=cache_dir, **POLICY), encoder=bundled_encoder)
    engine.load()
    return engine


def serve(engine: Engine, url: str, **settings: object) -> TestClient:
    configured = engine.settings.with_overrides(database_url=url, **settings)
    fresh = Engine(configured, encoder=engine.query_encoder)
    fresh.load()
    return TestClient(create_app(configured, engine=fresh))


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request: pytest.FixtureRequest, tmp_path: Path, small_engine: Engine) -> Iterator[TestClient]:
    with temporary_database(request.param, tmp_path) as url, serve(small_engine, url) as test_client:
        yield test_client


@pytest.fixture()
def keyed(tmp_path: Path, small_engine: Engine) -> Iterator[TestClient]:
    with serve(small_engine, f"sqlite:///{tmp_path / 'bot.store.db'}", api_keys=KEYS) as test_client:
        yield test_client


def chat(client: TestClient, message: str, **extra: object) -> dict:
    response = client.post("/v1/chat", json={"message": message, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def test_ticket_detail_has_the_conversation_and_the_decision_trail(client: TestClient) -> None:
    handoff = chat(client, "I want to talk to a real person")
    conversation = handoff["conversation_id"]
    chat(client, "<img src=x onerror=alert(1)>", conversation_id=conversation)
    ticket = handoff["ticket_id"]
    chat(client, "another customer entirely")  # other conversations stay out of the detail

    response = client.get(f"/v1/handoffs/{ticket}")
    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["ticket"]["id"] == ticket and detail["ticket"]["status"] == "open"
    assert detail["ticket"]["conversation_id"] == conversation
    assert [(m["role"], m["text"]) for m in detail["messages"]] == [
        ("user", "I want to talk to a real person"),
        ("bot", "Connecting you with a colleague now."),
        ("user", "<img src=x onerror=alert(1)>"),
        ("bot", PERSON_WILL_REPLY),  # no agent has claimed it yet: the bot says one will reply
    ]
    trail = detail["decisions"]
    assert [(d["route"], d["escalation"]) for d in trail] == [
        ("handoff", None),
        ("handoff", "awaiting_agent"),
    ]
    assert [d["message_id"] for d in trail] == [detail["messages"][i]["id"] for i in (0, 2)]
    assert trail[0]["intent"] == "human_agent" and trail[0]["candidates"][0]["intent"] == "human_agent"
    assert trail[0]["reason"] and trail[0]["threshold"] == 0.5

    client.post(f"/v1/handoffs/{ticket}/claim", json={"agent": "ann"})
    client.post(f"/v1/handoffs/{ticket}/reply", json={"agent": "ann", "text": "Hi, Ann here."})
    latest = client.get(f"/v1/handoffs/{ticket}", params={"limit": 2}).json()
    assert latest["ticket"]["claimed_by"] == "ann"
    assert [(m["role"], m["author"]) for m in latest["messages"]] == [("bot", None), ("agent", "ann")]

    missing = client.get("/v1/handoffs/999")
    assert missing.status_code == 404 and "unknown ticket 999" in missing.json()["error"]["message"]


def test_ticket_detail_is_for_agents(keyed: TestClient) -> None:
    reply = keyed.post(
        "/v1/chat",
        json={"message": "I want to talk to a real person"},
        headers={"Authorization": "Bearer w-key"},
    ).json()
    path = f"/v1/handoffs/{reply['ticket_id']}"
    statuses = {
        key: keyed.get(path, headers={"Authorization": f"Bearer {key}"}).status_code
        for key in ("a-key", "w-key", "n-key")
    }
    assert statuses == {"a-key": 200, "w-key": 403, "n-key": 403}
    assert keyed.get(path).status_code == 401


@pytest.mark.parametrize(
    ("path", "kind", "cache"),
    [
        ("/widget.js", "text/javascript", "public, max-age=300"),
        ("/demo", "text/html", "no-store"),
        ("/demo/demo.css", "text/css", "no-cache"),
        ("/agent", "text/html", "no-cache"),
        ("/agent/console.js", "text/javascript", "no-cache"),
        ("/agent/console.css", "text/css", "no-cache"),
    ],
)
def test_pages_are_served_with_types_caching_and_a_strict_csp(
    keyed: TestClient, path: str, kind: str, cache: str
) -> None:
    response = keyed.get(path)  # public: no key needed for the pages themselves
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{kind}; charset=utf-8"
    assert response.headers["cache-control"] == cache
    assert response.headers["x-content-type-options"] == "nosniff"
    if kind == "text/html":
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe" not in csp
        assert "frame-ancestors 'none'" in csp
        # no inline code at all: scripts come from files, and no element carries an on* handler
        assert "<script>" not in response.text and not re.search(r"\son[a-z]+=", response.text)
    revalidated = keyed.get(path, headers={"If-None-Match": response.headers["etag"]})
    assert revalidated.status_code == 304 and not revalidated.content
    assert keyed.head(path).status_code == 200


def test_pages_stay_out_of_the_openapi_schema(keyed: TestClient) -> None:
    paths = keyed.get("/openapi.json").json()["paths"]
    assert "/v1/handoffs/{ticket_id}" in paths
    assert not {"/widget.js", "/demo", "/agent"} & set(paths)


def test_demo_key_is_escaped_and_only_used_when_the_server_has_keys(
    keyed: TestClient, tmp_path: Path, small_engine: Engine
) -> None:
    page = keyed.get("/demo", params={"key": 'w-key"><script>alert(1)</script>'}).text
    assert 'data-key="w-key&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page
    assert keyed.get("/demo", params={"key": "w-key"}).text.count('data-key="w-key"') == 1
    with serve(small_engine, f"sqlite:///{tmp_path / 'open.db'}") as open_server:
        assert 'data-key=""' in open_server.get("/demo", params={"key": "w-key"}).text
