"""Logs that machines read (issue #30 item 5): a request id per HTTP request, echoed and kept with the
chat's stored decision, and `BOT_LOG_FORMAT=json` lines that carry it without customer text or secrets.
A real `bot serve` writing them is in tests/runtime/test_prometheus.py."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.api import create_app
from bot.chat.request_context import CURRENT, RequestContext, conversation_ref
from bot.routing.engine import Engine
from bot.runtime.logs import JsonFormatter, log_config
from tests.api_support import bank_engine


@pytest.fixture(scope="module")
def logs_engine(tmp_path_factory: pytest.TempPathFactory, bundled_encoder, cache_dir: Path) -> Engine:
    return bank_engine(tmp_path_factory, bundled_encoder, cache_dir, "json_log_intents")


@pytest.fixture()
def client(tmp_path: Path, logs_engine: Engine) -> Iterator[TestClient]:
    settings = logs_engine.settings.with_overrides(database_url=f"sqlite:///{tmp_path / 'bot.db'}")
    with TestClient(create_app(settings, engine=logs_engine)) as test_client:
        yield test_client


def test_each_request_gets_an_id_a_plain_incoming_one_is_kept(client: TestClient) -> None:
    generated = client.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert client.get("/healthz").headers["x-request-id"] != generated
    trace = "4bf92f35-77b3-4da6-a3ce-929d0e0e4736"
    assert client.get("/healthz", headers={"X-Request-Id": trace}).headers["x-request-id"] == trace
    for hostile in ("a b", "x" * 129, "id\x7f", '"><script>', "-leading-dash"):
        echoed = client.get("/healthz", headers={"X-Request-Id": hostile}).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", echoed), hostile  # replaced, never echoed or logged
    refused = client.post("/v1/chat", content=b"{", headers={"X-Request-Id": "bad-body-1"})
    assert refused.status_code == 422 and refused.headers["x-request-id"] == "bad-body-1"


def test_the_chat_decision_stores_its_request_id_and_logs_find_it_by_it(client: TestClient) -> None:
    given = client.post("/v1/chat", json={"message": "where is my new card"}, headers={"X-Request-Id": "c-1"})
    generated = client.post("/v1/chat", json={"message": "what exchange rate do you use"})
    assert given.status_code == generated.status_code == 200
    by_decision = {item["id"]: item for item in client.get("/v1/logs").json()["items"]}
    assert by_decision[given.json()["decision_id"]]["request_id"] == "c-1"
    assert by_decision[generated.json()["decision_id"]]["request_id"] == generated.headers["x-request-id"]
    (found,) = client.get("/v1/logs", params={"request_id": "c-1"}).json()["items"]
    assert found["id"] == given.json()["decision_id"]


def test_a_spooled_turn_keeps_its_request_id() -> None:
    from bot.routing.policy import Decision
    from bot.store.models import utcnow
    from bot.store.turns import PendingWrite

    decision = Decision("answer", "x", 0.9, (), "r", 0.7, 0.02)
    pending = PendingWrite("s", "c", "web", {}, "hi", decision, 1.0, False, utcnow(), request_id="r-9")
    assert PendingWrite.from_record(json.loads(json.dumps(pending.to_record()))).request_id == "r-9"


def record(name: str, message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.INFO, __file__, 1, message, args, None)


def test_a_json_line_has_the_fields_the_request_id_and_no_secrets() -> None:
    formatter = JsonFormatter()
    plain = json.loads(formatter.format(record("bot.runtime", "serving %d intents", 8)))
    assert set(plain) == {"time", "level", "logger", "message"}
    assert plain["message"] == "serving 8 intents" and plain["time"].endswith("+00:00")
    conversation = "0123456789abcdef0123456789abcdef"
    context = RequestContext("req-7", {"route": "answer", "decision_id": 12})
    context.fields["conversation"] = conversation_ref(conversation)
    token = CURRENT.set(context)
    try:
        access = record(
            "uvicorn.access", '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "POST", "/v1/chat", "1.1", 200
        )
        line = formatter.format(access)
    finally:
        CURRENT.reset(token)
    entry = json.loads(line)
    assert entry["request_id"] == "req-7" and (entry["method"], entry["path"], entry["status"]) == (
        "POST",
        "/v1/chat",
        200,
    )
    assert (entry["route"], entry["decision_id"]) == ("answer", 12)
    assert conversation not in line and len(entry["conversation"]) == 16
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord("bot", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert "ValueError: boom" in json.loads(formatter.format(failed))["exception"]


def test_the_json_log_config_covers_uvicorn_and_the_root_logger() -> None:
    assert log_config("WARNING", "text") is None  # uvicorn's own configuration, as before
    config = log_config("WARNING", "json")
    assert config is not None
    stream = io.StringIO()
    config["handlers"]["default"]["stream"] = config["handlers"]["access"]["stream"] = stream
    touched = [logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access")]
    saved = [(logger.handlers[:], logger.level, logger.propagate) for logger in touched]
    try:
        logging.config.dictConfig(config)
        logging.getLogger("bot.test").warning("one %s", "line")
        logging.getLogger("uvicorn.error").info("Started server process [1]")
        logging.getLogger("bot.test").info("below the level")
    finally:  # the other tests' logging as it was
        for logger, (handlers, level, propagate) in zip(touched, saved, strict=True):
            logger.handlers[:], logger.propagate = handlers, propagate
            logger.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["logger"], e["message"]) for e in lines] == [
        ("bot.test", "one line"),
        ("uvicorn.error", "Started server process [1]"),
    ]
