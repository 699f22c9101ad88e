"""GET /metrics (issue #30 item 4): who may read it, what a chat turn counts, the state it reads from memory,
and that labels stay bounded (path templates, the folder's intent names) and free of customer text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from bot.api import create_app
from bot.chat.spool import Spool
from bot.routing.engine import Engine
from bot.runtime.metrics import SpoolDepth
from tests.api_support import bank_engine

KEYS = "widget:w-key,analyst:n-key,admin:root-key,metrics:scrape-key"
WIDGET = {"Authorization": "Bearer w-key"}
SCRAPER = {"Authorization": "Bearer scrape-key"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def metrics_engine(tmp_path_factory: pytest.TempPathFactory, bundled_encoder, cache_dir: Path) -> Engine:
    return bank_engine(tmp_path_factory, bundled_encoder, cache_dir, "metrics_intents")


def app_client(tmp_path: Path, engine: Engine, **overrides: object) -> TestClient:
    settings = engine.settings.with_overrides(
        database_url=f"sqlite:///{tmp_path / 'bot.db'}", api_keys=KEYS, **overrides
    )
    return TestClient(create_app(settings, engine=engine))


@pytest.fixture()
def client(tmp_path: Path, metrics_engine: Engine) -> Iterator[TestClient]:
    with app_client(tmp_path, metrics_engine) as test_client:
        yield test_client


def scrape(client: TestClient) -> tuple[str, Samples]:
    response = client.get("/metrics", headers=SCRAPER)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    found: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.text, found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_need_an_admin_or_metrics_key_and_a_metrics_key_reads_nothing_else(
    client: TestClient,
) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=WIDGET).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer n-key"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer root-key"}).status_code == 200
    assert client.get("/metrics", headers=SCRAPER).status_code == 200
    # a scraper's key is no widget key: it cannot chat, poll or read the logs
    assert client.post("/v1/chat", json={"message": "hi"}, headers=SCRAPER).status_code == 403
    assert client.get("/v1/conversations/abc/messages", headers=SCRAPER).status_code == 403
    assert client.get("/v1/logs", headers=SCRAPER).status_code == 403


def test_chat_turns_are_counted_by_route_intent_and_handoff_reason(client: TestClient) -> None:
    def chat(message: str, **extra: object) -> dict:
        reply = client.post("/v1/chat", json={"message": message, **extra}, headers=WIDGET)
        assert reply.status_code == 200, reply.text
        return reply.json()

    first = chat("where is my new card")
    assert (first["route"], first["intent"]) == ("answer", "card_arrival")
    assert chat("I lost my card")["route"] == "handoff"  # the intent hands off: a ticket, reason 'router'
    angry = chat("this is ridiculous, your service is a disgrace and I am furious!!!")
    assert angry["route"] == "handoff" and angry["escalation"] == "angry"
    # a turn of a conversation a person already waits for is no new handoff, whatever its route
    waiting = chat("hello?", conversation_id=angry["conversation_id"])
    assert waiting["escalation"] in ("with_agent", "awaiting_agent")
    routes = ["answer", "handoff", "handoff", waiting["route"]]
    conversation = first["conversation_id"]
    assert client.get(f"/v1/conversations/{conversation}/messages", headers=WIDGET).status_code == 200
    too_big = client.post("/v1/chat", content=b"x" * 70_000, headers={**WIDGET, "Content-Type": "text/plain"})
    assert too_big.status_code == 413  # refused by the guard before routing: still the chat handler
    assert client.get("/no/such/page").status_code == 404

    text, samples = scrape(client)
    for route in ("answer", "handoff"):
        assert value(samples, "bot_chat_turns_total", route=route) == routes.count(route)
        assert value(samples, "bot_chat_confidence_count", route=route) == routes.count(route)
    assert value(samples, "bot_chat_intents_total", intent="card_arrival") == 1
    assert value(samples, "bot_chat_intents_total", intent="lost_or_stolen_card") == 1
    assert value(samples, "bot_handoffs_total", reason="router") == 1
    assert value(samples, "bot_handoffs_total", reason="angry") == 1
    assert value(samples, "bot_chat_turn_duration_seconds_count", route="handoff") == routes.count("handoff")
    chat_ok = {"method": "POST", "handler": "/v1/chat", "status": "200"}
    assert value(samples, "bot_http_requests_total", **chat_ok) == 4
    assert value(samples, "bot_http_requests_total", method="POST", handler="/v1/chat", status="413") == 1
    poll = "/v1/conversations/{conversation_id}/messages"
    assert value(samples, "bot_http_requests_total", method="GET", handler=poll, status="200") == 1
    assert value(samples, "bot_http_requests_total", method="GET", handler="other", status="404") == 1
    assert value(samples, "bot_http_request_duration_seconds_count", method="POST", handler="/v1/chat") == 5
    # labels are templates and intent names: no conversation id, no customer text
    assert conversation not in text and "furious" not in text and "/no/such" not in text


def test_state_metrics_say_ready_queues_live_model_and_training(client: TestClient) -> None:
    ready = client.get("/readyz").json()
    _, samples = scrape(client)
    assert value(samples, "bot_ready") == 1
    for queue in ("routing", "writing", "spool"):
        assert ("bot_queue_depth", frozenset({("queue", queue)})) in samples
    live = {
        "model": ready["model"],
        "model_kind": ready["model_kind"],
        "intents_version": ready["intents_version"],
        "version_id": str(ready["version_id"]),
    }
    assert value(samples, "bot_live_info", **live) == 1
    assert value(samples, "bot_training_state", state=ready["training"]["state"]) == 1
    assert sum(v for (name, _), v in samples.items() if name == "bot_training_state") == 1
    assert value(samples, "process_resident_memory_bytes") > 0


def test_metrics_off_mounts_neither_the_endpoint_nor_the_counting(
    tmp_path: Path, metrics_engine: Engine
) -> None:
    with app_client(tmp_path, metrics_engine, metrics=False) as client:
        assert client.app.state.runtime.metrics is None  # type: ignore[attr-defined]
        assert client.get("/metrics", headers=SCRAPER).status_code == 404
        assert client.post("/v1/chat", json={"message": "hi"}, headers=WIDGET).status_code == 200


def test_spool_depth_counts_again_only_when_the_file_changed(tmp_path: Path) -> None:
    spool, depth = Spool(tmp_path / "spool"), SpoolDepth()
    assert depth.count(spool) == 0 and depth.count(None) == 0
    spool.append({"turn": 1})
    spool.append({"turn": 2})
    assert depth.count(spool) == 2
    calls: list[int] = []
    counted = spool.pending
    spool.pending = lambda: calls.append(1) or counted()  # type: ignore[method-assign]
    assert depth.count(spool) == 2 and calls == []  # unchanged file: no read
    spool.append({"turn": 3})
    assert depth.count(spool) == 3 and calls == [1]
