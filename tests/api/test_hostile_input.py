"""Hostile and abusive input: limits, control characters, bad Unicode, deep JSON, rate limits, redaction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.api import create_app
from bot.api.guard import clean_string
from bot.chat.redact import redact
from bot.routing.engine import Engine
from tests.api_support import make_intents, temporary_database


@pytest.fixture(params=["sqlite", "postgresql"])
def client(
    request: pytest.FixtureRequest, tmp_path: Path, bundled_encoder, cache_dir
) -> Iterator[TestClient]:
    from bot.config import Settings

    with temporary_database(request.param, tmp_path) as url:
        settings = Settings(
            intents_dir=make_intents(tmp_path / "intents"), cache_dir=cache_dir, database_url=url
        )
        engine = Engine(settings, encoder=bundled_encoder)
        engine.load()
        with TestClient(create_app(settings, engine=engine)) as test_client:
            yield test_client


def stored_texts(client: TestClient, conversation_id: str) -> list[str]:
    messages = client.get(f"/v1/conversations/{conversation_id}/messages").json()["messages"]
    return [m["text"] for m in messages if m["role"] == "user"]


def test_control_characters_and_lone_surrogates_are_stored_safely(client: TestClient) -> None:
    raw = '{"message": "my card\\u0000 has not\\u0007 arrived \\ud800 yet\\n", "metadata": {"a\\u0000": "\\udfff"}}'
    response = client.post("/v1/chat", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    (text,) = stored_texts(client, response.json()["conversation_id"])
    assert text == "my card has not arrived \ufffd yet"


@pytest.mark.parametrize(
    ("method", "path", "content", "status", "fragment"),
    [
        ("post", "/v1/chat", "[" * 5000 + "]" * 5000, 422, "nested deeper"),
        (
            "post",
            "/v1/chat",
            json.dumps({"message": "hi", "metadata": {"a": {"b": {"c": {"d": {"e": 1}}}}}}),
            422,
            "levels deep",
        ),
        ("post", "/v1/chat", json.dumps({"message": "hi", "metadata": {"x": "y" * 5000}}), 422, "bytes"),
        ("post", "/v1/chat", json.dumps({"message": "x" * 70_000}), 413, "larger than"),
        ("post", "/v1/chat", '{"message": "unterminated', 422, "JSON"),
        ("get", "/v1/conversations/ab%00cd/messages", None, 400, "control characters"),
        ("get", "/v1/logs?q=%00", None, 400, "control characters"),
        (
            "post",
            "/v1/handoffs/99999999999999999999999/claim",
            json.dumps({"agent": "a"}),
            422,
            "less than or equal",
        ),
        ("get", "/v1/conversations/x/messages?after=1e400", None, 422, "integer"),
        ("get", "/v1/logs?min_confidence=1e400", None, 422, "less than or equal"),
    ],
)
def test_hostile_requests_get_named_4xx(
    client: TestClient, method: str, path: str, content: str | None, status: int, fragment: str
) -> None:
    response = client.request(method, path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]["message"]


def test_personal_data_is_redacted_before_storage(client: TestClient) -> None:
    message = "I'm ann.lee@example.com, card 4111 1111 1111 1111, call me on 07911 123456 about my card"
    reply = client.post(
        "/v1/chat", json={"message": message, "metadata": {"email": "ann.lee@example.com"}}
    ).json()
    expected = "I'm [email], card [card number], call me on [phone number] about my card"
    assert stored_texts(client, reply["conversation_id"]) == [expected]
    log = client.get("/v1/logs").json()["items"][0]
    assert log["text"] == expected and "4111" not in json.dumps(log)


def test_rate_limits_answer_429_with_retry_after(tmp_path: Path, bundled_encoder, cache_dir) -> None:
    from bot.config import Settings

    settings = Settings(
        intents_dir=make_intents(tmp_path / "intents"),
        cache_dir=cache_dir,
        database_url=f"sqlite:///{tmp_path / 'r.db'}",
        api_keys="widget:w1,agent:a1",
        rate_limit_per_ip="3/minute",
        rate_limit_per_key="5/minute",
    )
    engine = Engine(settings, encoder=bundled_encoder)
    engine.load()
    with TestClient(create_app(settings, engine=engine)) as client:
        # an agent key is limited per key (5), not per address: a team shares an office address
        statuses = [
            client.get("/v1/handoffs", headers={"Authorization": "Bearer a1"}).status_code for _ in range(6)
        ]
        assert statuses == [200, 200, 200, 200, 200, 429]
        limited = client.get("/v1/handoffs", headers={"Authorization": "Bearer a1"})
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["error"] == {
            "type": "rate_limited",
            "message": f"too many requests with this key (5 per 1 minute); retry in {limited.headers['Retry-After']} s",
        }
        # the widget key is public: it is limited per client address (3), never as one bucket
        widget = {"Authorization": "Bearer w1"}
        statuses = [
            client.post("/v1/chat", json={"message": "hi"}, headers=widget).status_code for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        assert client.get("/healthz").status_code == 200  # monitoring is never limited


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\x00b\x1bc\x7fd", "abcd"),
        ("tab\tand\nnewline\r\n", "tab\tand\nnewline\r\n"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
        ("emoji 😀 stays", "emoji 😀 stays"),
    ],
)
def test_clean_string(text: str, expected: str) -> None:
    assert clean_string(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pay 4111-1111-1111-1111 now", "pay [card number] now"),
        ("not a card 4111 1111 1111 1112", "not a card 4111 1111 1111 1112"),  # fails the Luhn check
        ("amount 1234.56 on 2024-05-01, ref 12345678", "amount 1234.56 on 2024-05-01, ref 12345678"),
        ("ring +44 20 7946 0321", "ring [phone number]"),
        ("write to a.b+c@mail.example.co.uk", "write to [email]"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected
