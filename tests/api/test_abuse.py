"""Abuse that used to get through (issue #19): duplicate headers, one widget bucket for everyone, forwarded
addresses, the input guard's blind spots, batch routing as a CPU lever, unbounded metadata, leaks."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from sqlalchemy.exc import SQLAlchemyError

from bot.api import create_app
from bot.api.access_log import AccessLogRedactor, redact_path
from bot.api.callers import TrustedProxies
from bot.api.guard import RateLimits, RequestGuard
from bot.config import Settings
from bot.errors import ConfigError
from bot.routing.engine import Engine
from bot.store.db import make_engine
from tests.api_support import make_intents, temporary_database

PROXY = "10.0.0.1"  # the test client's address, configured as the trusted proxy where a test needs one


@contextmanager
def app(
    tmp_path: Path, encoder: Any, cache_dir: Path, database_url: str | None = None, **overrides: Any
) -> Iterator[TestClient]:
    settings = Settings(
        intents_dir=make_intents(tmp_path / "intents"),
        cache_dir=cache_dir,
        database_url=database_url or f"sqlite:///{tmp_path / 'bot.store.db'}",
        **overrides,
    )
    engine = Engine(settings, encoder=encoder)
    engine.load()
    # an app without keys answers only this machine
    address = PROXY if settings.api_keys else "127.0.0.1"
    with TestClient(create_app(settings, engine=engine), client=(address, 40000)) as client:
        yield client


def from_(address: str, key: str | None = "w1") -> dict[str, str]:
    """Headers of a request from `address` through the trusted proxy, with a key."""
    headers = {"X-Forwarded-For": address}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


# -- 1. one parse of the credentials -------------------------------------------------------------------


def test_a_second_authorization_header_is_refused_not_split_between_auth_and_limits(
    tmp_path: Path, bundled_encoder: Any, cache_dir: Path
) -> None:
    with app(
        tmp_path, bundled_encoder, cache_dir, api_keys="widget:w1,agent:a1", rate_limit_per_key="3/minute"
    ) as client:
        two = [("Authorization", "Bearer a1"), ("authorization", f"Bearer other-{0}")]
        response = client.get("/v1/handoffs", headers=two)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["message"] == "send one Authorization header, not several"
        # the key authentication accepts is the key the limit counts: the 4th request is over
        statuses = [
            client.get("/v1/handoffs", headers={"Authorization": f"Bearer a1{' ' * n}"}).status_code
            for n in range(4)
        ]
        assert statuses == [200, 200, 200, 429]


# -- 2. widget limits per client, polls apart from chat --------------------------------------------------


def test_one_client_cannot_lock_other_customers_out_of_the_widget(
    tmp_path: Path, bundled_encoder: Any, cache_dir: Path
) -> None:
    with app(
        tmp_path,
        bundled_encoder,
        cache_dir,
        api_keys="widget:w1,agent:a1",
        forwarded_allow_ips=PROXY,
        rate_limit_per_key="5/minute",  # agent, analyst and admin keys only: a widget key is public
        rate_limit_per_ip="4/minute",
        rate_limit_polls_per_ip="8/minute",
        rate_limit_polls_per_conversation="3/minute",
    ) as client:
        attacker, customer = "198.51.100.7", "203.0.113.5"
        mine = client.post("/v1/chat", json={"message": "where is my card"}, headers=from_(attacker))
        conversation = mine.json()["conversation_id"]
        polls = [
            client.get(f"/v1/conversations/{conversation}/messages", headers=from_(attacker)).status_code
            for _ in range(4)
        ]
        assert polls == [200, 200, 200, 429]  # per address and conversation
        limited = client.get(f"/v1/conversations/{conversation}/messages", headers=from_(attacker))
        assert "message polls of this conversation from this address" in limited.json()["error"]["message"]
        # polling is counted apart from chat: the attacker may still chat (2nd of 4)
        assert client.post("/v1/chat", json={"message": "hi"}, headers=from_(attacker)).status_code == 200
        # ... and every other customer is untouched, though all share the one widget key
        for _ in range(4):
            reply = client.post("/v1/chat", json={"message": "where is my card"}, headers=from_(customer))
            assert reply.status_code == 200, reply.text
        theirs = reply.json()["conversation_id"]
        assert client.get(f"/v1/conversations/{theirs}/messages", headers=from_(customer)).status_code == 200
        # chat from one address stops at its own limit, with a message that says which one
        over = client.post("/v1/chat", json={"message": "hi"}, headers=from_(customer))
        assert over.status_code == 429 and "requests from this address" in over.json()["error"]["message"]
        # many conversations from one address are bounded by the per-address poll limit
        statuses = [
            client.get(f"/v1/conversations/x{n}/messages", headers=from_(attacker)).status_code
            for n in range(6)
        ]
        assert statuses[-1] == 429 and 429 not in statuses[:5]


# -- 3. forwarded addresses only from configured proxies -------------------------------------------------


@pytest.mark.parametrize(
    ("proxies", "peer", "forwarded", "client"),
    [
        ("", "127.0.0.1", ["198.51.100.7"], "127.0.0.1"),  # no proxy configured: the header is ignored
        ("10.0.0.0/8", "203.0.113.1", ["198.51.100.7"], "203.0.113.1"),  # not from a proxy
        ("10.0.0.0/8", "10.0.0.1", ["198.51.100.7"], "198.51.100.7"),
        ("10.0.0.0/8", "10.0.0.1", ["198.51.100.7, 10.0.0.2"], "198.51.100.7"),  # two proxies
        ("10.0.0.0/8", "10.0.0.1", ["1.1.1.1, 198.51.100.7"], "198.51.100.7"),  # client-supplied prefix
        ("10.0.0.0/8", "10.0.0.1", ["garbage"], "10.0.0.1"),  # not an address: the proxy's own
        ("10.0.0.0/8", "10.0.0.1", ["198.51.100.7, garbage"], "10.0.0.1"),
        ("10.0.0.0/8", "10.0.0.1", ["garbage, 198.51.100.7"], "198.51.100.7"),
        ("10.0.0.0/8", "10.0.0.1", ["1.1.1.1", "198.51.100.7"], "198.51.100.7"),  # two headers
        ("10.0.0.1, ::1", "::1", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("*", "203.0.113.1", ["198.51.100.7:5555"], "198.51.100.7"),
    ],
)
def test_the_client_address(proxies: str, peer: str, forwarded: list[str], client: str) -> None:
    assert TrustedProxies(proxies).client(peer, [value.encode() for value in forwarded]) == client


def test_a_bad_proxy_setting_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match=r"BOT_FORWARDED_ALLOW_IPS entry 'proxy\.local'"):
        create_app(Settings(forwarded_allow_ips="10.0.0.1,proxy.local"))


def test_without_trusted_proxies_a_forwarded_header_does_not_pick_a_bucket(
    tmp_path: Path, bundled_encoder: Any, cache_dir: Path
) -> None:
    with app(
        tmp_path, bundled_encoder, cache_dir, api_keys="widget:w1", rate_limit_per_ip="2/minute"
    ) as client:
        statuses = [
            client.post("/v1/chat", json={"message": "hi"}, headers=from_(f"198.51.100.{n}")).status_code
            for n in range(3)
        ]
        assert statuses == [200, 200, 429]


# -- 4. the input guard, whatever the headers say -------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(
    request: pytest.FixtureRequest, tmp_path: Path, bundled_encoder: Any, cache_dir: Path
) -> Iterator[TestClient]:
    with (
        temporary_database(request.param, tmp_path) as url,
        app(tmp_path, bundled_encoder, cache_dir, database_url=url) as client,
    ):
        yield client


@pytest.mark.parametrize(
    "headers",
    [
        [("Content-Type", "application/JSON")],
        [("CONTENT-TYPE", "Application/Json; charset=UTF-8")],
        [("Content-Type", "application/problem+JSON")],  # FastAPI parses any */*+json
        [("content-type", "application/json"), ("content-type", "text/plain")],  # FastAPI reads the first
    ],
)
def test_control_characters_are_cleaned_whatever_the_content_type_header(
    any_db: TestClient, headers: list[tuple[str, str]]
) -> None:
    body = b'{"message": "my card\\u0000 has not arrived", "metadata": {"a\\u0000": "b\\u0000"}}'
    response = any_db.post("/v1/chat", content=body, headers=headers)
    assert response.status_code == 200, response.text
    conversation = response.json()["conversation_id"]
    messages = any_db.get(f"/v1/conversations/{conversation}/messages").json()["messages"]
    assert [m["text"] for m in messages if m["role"] == "user"] == ["my card has not arrived"]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_non_finite_numbers_are_a_422(any_db: TestClient, number: str) -> None:
    body = f'{{"message": "where is my card", "metadata": {{"score": {number}}}}}'
    response = any_db.post("/v1/chat", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert "is not a finite number" in response.json()["error"]["message"]
    assert any_db.get("/v1/logs").json()["total"] == 0


def test_finite_numbers_still_pass(any_db: TestClient) -> None:
    body = '{"message": "where is my card", "metadata": {"score": 1.5e300, "n": -2}}'
    assert (
        any_db.post("/v1/chat", content=body, headers={"Content-Type": "application/json"}).status_code == 200
    )


def test_database_errors_never_carry_the_statement_parameters(tmp_path: Path) -> None:
    database = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(SQLAlchemyError) as raised, database.connect() as connection:
        connection.execute(text("INSERT INTO no_such_table VALUES (:v)"), {"v": "my card 4111 secret"})
    assert "no_such_table" in str(raised.value) and "secret" not in str(raised.value)


async def _raising_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    raise ValueError("customer said: my password is hunter2")


def test_an_unexpected_error_is_one_log_line_without_the_request_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = RequestGuard(_raising_app, max_body_bytes=65536, limits=None)
    client = TestClient(guard)  # type: ignore[arg-type]  # no lifespan: the guard alone
    with caplog.at_level(logging.ERROR):
        response = client.post("/v1/conversations/abc123/messages", json={"message": "hunter2"})
    assert response.status_code == 500 and response.json()["error"]["type"] == "server_error"
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    line = record.getMessage()
    assert "ValueError" in line and "test_abuse.py" in line
    assert "hunter2" not in line and "abc123" not in line and record.exc_info is None


def test_a_bad_turn_costs_its_batch_a_few_transactions_and_no_good_turn(any_db: TestClient) -> None:
    service = any_db.app.state.runtime.service  # type: ignore[attr-defined]
    transactions = []
    here = (
        threading.get_ident()
    )  # the runtime's background threads (poller, webhook dispatcher) begin their own
    event.listen(
        service.database,
        "begin",
        lambda _connection: transactions.append(1) if threading.get_ident() == here else None,
    )
    pendings = []
    for n in range(32):
        turn = service.open_turn(message=f"where is my card {n}", metadata={"n": n})
        pendings.append(service.pending_write(turn, turn.message, service.engine.route(turn.message)))
    bad = 13
    # a value no JSON column can store: the batch's bulk INSERT fails, as a row the database refuses would
    pendings[bad] = service.pending_write(
        service.open_turn(message="poisoned", metadata={"x": {1, 2}}),
        "poisoned",
        service.engine.route("poisoned"),
    )
    results = service.store_batch(pendings)
    assert isinstance(results[bad], Exception)
    stored = [r for n, r in enumerate(results) if n != bad]
    assert all(not isinstance(r, BaseException) and r.stored and r.message_id for r in stored)
    # each turn retried alone would be 33 transactions; halving down to the bad turn is 2*log2(32)+1
    assert len(transactions) <= 11, len(transactions)
    assert any_db.get("/v1/logs?limit=100").json()["total"] == 31


# -- 7. batch routing: analysts only, charged by work -----------------------------------------------------


def test_batch_routing_is_for_analysts_and_charged_by_characters(
    tmp_path: Path, bundled_encoder: Any, cache_dir: Path
) -> None:
    with app(
        tmp_path,
        bundled_encoder,
        cache_dir,
        api_keys="widget:w1,analyst:n1",
        rate_limit_route_chars="1000/minute",
    ) as client:
        five = {"messages": ["where is my card"] * 5}  # 5 x at least 100 characters
        refused = client.post("/v1/route", json=five, headers={"Authorization": "Bearer w1"})
        assert refused.status_code == 403, refused.text
        analyst = {"Authorization": "Bearer n1"}
        assert client.post("/v1/route", json=five, headers=analyst).status_code == 200
        assert client.post("/v1/route", json=five, headers=analyst).status_code == 200
        spent = client.post("/v1/route", json=five, headers=analyst)
        assert spent.status_code == 429 and int(spent.headers["Retry-After"]) >= 1
        assert (
            spent.json()["error"]
            == {
                "type": "rate_limited",
                "message": spent.json()["error"]["message"],
            }
            and "characters routed with this key" in spent.json()["error"]["message"]
        )
        too_big = client.post("/v1/route", json={"messages": ["x" * 600] * 2}, headers=analyst)
        assert too_big.status_code == 422
        assert too_big.json()["error"]["message"].startswith("would route 1200 characters")
        assert "BOT_RATE_LIMIT_ROUTE_CHARS" in too_big.json()["error"]["message"]


# -- 8. conversation metadata is capped as a whole ------------------------------------------------------


def test_conversation_metadata_is_capped_in_keys_and_bytes(
    tmp_path: Path, bundled_encoder: Any, cache_dir: Path
) -> None:
    with app(tmp_path, bundled_encoder, cache_dir) as client:
        first = client.post(
            "/v1/chat", json={"message": "where is my card", "metadata": {f"k{n}": n for n in range(40)}}
        )
        conversation = first.json()["conversation_id"]
        more = {"conversation_id": conversation, "message": "and now?"}
        same_keys = client.post("/v1/chat", json={**more, "metadata": {f"k{n}": -n for n in range(40)}})
        assert same_keys.status_code == 200, same_keys.text  # replacing values adds nothing
        too_many = client.post("/v1/chat", json={**more, "metadata": {f"new{n}": n for n in range(11)}})
        assert too_many.status_code == 422
        error = too_many.json()["error"]
        assert error["field"] == "metadata" and "51 keys" in error["message"]
        assert "at most 50 keys and 8192 bytes" in error["message"]

        second = client.post("/v1/chat", json={"message": "hello", "metadata": {"a": "x" * 3500}})
        conversation = second.json()["conversation_id"]
        more = {"conversation_id": conversation, "message": "and now?"}
        assert client.post("/v1/chat", json={**more, "metadata": {"b": "x" * 3500}}).status_code == 200
        too_big = client.post("/v1/chat", json={**more, "metadata": {"c": "x" * 3500}})
        assert too_big.status_code == 422 and "8192 bytes" in too_big.json()["error"]["message"]
        one_request = client.post(
            "/v1/chat", json={"message": "hi", "metadata": {f"k{n}": 1 for n in range(51)}}
        )
        assert one_request.status_code == 422 and "at most 50 keys" in one_request.json()["error"]["message"]


# -- 11. small leaks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    ["redis://:hunter2@127.0.0.1:6379/0", "redis://user:hunter2@127.0.0.1:6379", "nosuch://:hunter2@h:1"],
)
def test_a_bad_rate_limit_storage_never_prints_its_password(uri: str) -> None:
    try:
        RateLimits(Settings(rate_limit_storage=uri))
    except ConfigError as exc:
        assert "hunter2" not in str(exc) and ":***@" in str(exc)
    else:  # the redis driver is installed: nothing is printed at all
        assert uri.startswith("redis")


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/v1/conversations/0123abcd/messages?after=3", "/v1/conversations/[conversation]/messages?after=3"),
        ("/demo?key=w-secret", "/demo?key=[redacted]"),
        ("/demo?lang=en&KEY=w-secret&x=1", "/demo?lang=en&KEY=[redacted]&x=1"),
        ("/v1/handoffs/12/claim", "/v1/handoffs/12/claim"),
    ],
)
def test_the_access_log_hides_conversation_ids_and_keys(path: str, shown: str) -> None:
    assert redact_path(path) == shown
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", path, "1.1", 200),
        None,
    )
    assert (
        AccessLogRedactor().filter(record)
        and record.getMessage() == f'1.2.3.4:5 - "GET {shown} HTTP/1.1" 200'
    )


# -- 12. answers are plain text ----------------------------------------------------------------------


def test_the_api_docs_say_answers_are_plain_text(
    tmp_path: Path, bundled_encoder: Any, cache_dir: Path
) -> None:
    with app(tmp_path, bundled_encoder, cache_dir) as client:
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for model in ("ChatOut", "DecisionOut"):
        description = schemas[model]["properties"]["answer"]["description"]
        assert description.startswith("Plain text, never HTML") and "innerHTML" in description


def test_nan_is_not_a_python_float_we_store() -> None:  # the guard's float hook, by itself
    from bot.api.guard import NonFiniteNumber, parse_json

    assert parse_json(b'{"a": 1.5, "b": [2, -0.0]}') == {"a": 1.5, "b": [2, -0.0]}
    for body in (b"[NaN]", b"[1e400]", b'{"x": -Infinity}'):
        with pytest.raises(NonFiniteNumber):
            parse_json(body)
    assert not math.isnan(parse_json(b"[1e308]")[0])
