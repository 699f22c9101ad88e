"""The Chatwoot agent-bot connector (issue #30 item 3) against a recorded-contract double of Chatwoot
(tests/chatwoot_double.py: a real HTTP server accepting only documented requests), not a live Chatwoot."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.api import create_app
from bot.routing.engine import Engine
from bot.runtime.chatwoot import our_conversation_id
from tests.api_support import bank_engine
from tests.chatwoot_double import ChatwootDouble, body_problem, message_created, signed

TOKEN, SECRET = "bot-access-token-1", "bot-secret-1"
ACCOUNT = 2


@pytest.fixture(scope="module")
def chatwoot_engine(tmp_path_factory: pytest.TempPathFactory, bundled_encoder, cache_dir: Path) -> Engine:
    return bank_engine(tmp_path_factory, bundled_encoder, cache_dir, "chatwoot_intents")


@pytest.fixture()
def double() -> Iterator[ChatwootDouble]:
    server = ChatwootDouble(token=TOKEN, conversations={(ACCOUNT, 11), (ACCOUNT, 12), (ACCOUNT, 13)})
    yield server
    server.close()


@pytest.fixture()
def client(tmp_path: Path, chatwoot_engine: Engine, double: ChatwootDouble) -> Iterator[TestClient]:
    settings = chatwoot_engine.settings.with_overrides(
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        chatwoot_url=double.url,
        chatwoot_token=TOKEN,
        chatwoot_secret=SECRET,
    )
    app = create_app(settings, engine=chatwoot_engine)
    with TestClient(app) as test_client:
        yield test_client
    connector = getattr(app.state, "chatwoot", None)
    assert connector is None or not connector.client._thread.is_alive()  # the app's shutdown stopped it


def post(client: TestClient, payload: dict[str, Any], **kwargs: Any) -> Any:
    body = json.dumps(payload).encode()
    headers = kwargs.pop("headers", None) or signed(SECRET, body)
    return client.post("/v1/connectors/chatwoot", content=body, headers=headers, **kwargs)


def sent(client: TestClient, double: ChatwootDouble) -> list[Any]:
    """What reached the double once the connector's queue is empty."""
    connector = client.app.state.chatwoot  # type: ignore[attr-defined]
    assert connector.client.drain(15)
    assert double.rejected == [], [(r.path, r.problem) for r in double.rejected]
    return double.accepted


def test_message_in_answer_out_as_one_conversation(client: TestClient, double: ChatwootDouble) -> None:
    first = post(client, message_created(ACCOUNT, 11, "Where is my new card?"))
    assert first.status_code == 200 and first.json()["status"] == "accepted", first.text
    assert first.json()["route"] == "answer"
    second = post(client, message_created(ACCOUNT, 11, "what exchange rate do you use"))
    assert second.json()["status"] == "accepted"
    calls = sent(client, double)
    assert [c.path for c in calls] == [f"/api/v1/accounts/{ACCOUNT}/conversations/11/messages"] * 2
    assert calls[0].body == {
        "content": "Cards arrive in 3-5 working days.",
        "message_type": "outgoing",
        "private": False,
    }
    assert calls[0].headers["api_access_token"] == TOKEN
    ours = our_conversation_id(SECRET, ACCOUNT, 11)  # both turns in one conversation of ours
    texts = [m["text"] for m in client.get(f"/v1/conversations/{ours}/messages").json()["messages"]]
    assert texts[0] == "Where is my new card?" and texts[2] == "what exchange rate do you use"
    turns = [
        line for line in client.get("/metrics").text.splitlines() if line.startswith("bot_chat_turns_total")
    ]
    assert sum(float(line.split()[-1]) for line in turns) == 2  # counted like any other chat turn


def test_a_handoff_leaves_a_private_note_and_opens_the_conversation(
    client: TestClient, double: ChatwootDouble
) -> None:
    reply = post(client, message_created(ACCOUNT, 12, "I want to talk to a real person, a human agent"))
    assert reply.json()["route"] == "handoff", reply.text
    calls = sent(client, double)
    base = f"/api/v1/accounts/{ACCOUNT}/conversations/12"
    assert [c.path for c in calls] == [f"{base}/messages", f"{base}/messages", f"{base}/toggle_status"]
    assert calls[0].body["private"] is False
    note = calls[1].body
    assert (
        note["private"] is True and "Intent: human_agent" in note["content"] and "Ticket: " in note["content"]
    )
    assert calls[2].body == {"status": "open"} and double.status[(ACCOUNT, 12)] == "open"
    # had the open been lost, the next pending message opens it again (no second note)
    again = post(client, message_created(ACCOUNT, 12, "anyone there?"))
    assert again.json()["status"] == "accepted"
    assert [c.path for c in sent(client, double)[3:]] == [f"{base}/messages", f"{base}/toggle_status"]
    # Chatwoot keeps sending the now open conversation's messages: the bot stays out of it
    later = post(client, message_created(ACCOUNT, 12, "hello?", status="open"))
    assert later.json() == {
        "status": "ignored",
        "reason": "the conversation is open: Chatwoot's agents hold it",
        "route": None,
        "decision_id": None,
    }


IGNORED = [
    {"message_type": "outgoing"},  # the bot's own reply or an agent's: answering it would loop
    {"message_type": "activity"},
    {"private": True},
    {"sender_type": "user"},
    {"sender_type": "agent_bot"},
]


def test_outgoing_private_and_agent_messages_are_ignored(client: TestClient, double: ChatwootDouble) -> None:
    for changes in IGNORED:
        reply = post(client, message_created(ACCOUNT, 13, "Where is my new card?", **changes))
        assert reply.status_code == 200 and reply.json()["status"] == "ignored", (changes, reply.text)
    other = post(client, {**message_created(ACCOUNT, 13, "x"), "event": "conversation_status_changed"})
    assert other.json()["status"] == "ignored"
    assert sent(client, double) == []


def test_clarify_options_are_numbered_and_a_number_picks_one(
    client: TestClient, double: ChatwootDouble
) -> None:
    asked = post(client, message_created(ACCOUNT, 13, "card delivery"))
    assert asked.json()["route"] == "clarify", asked.text
    picked = post(client, message_created(ACCOUNT, 13, "2"))
    assert picked.json()["route"] == "answer", picked.text
    question, answer = (c.body["content"] for c in sent(client, double))
    assert "1. Card arrival" in question and "2. Card delivery estimate" in question
    assert answer == "Delivery takes 3-5 working days."


def test_a_caller_without_the_secret_is_refused(client: TestClient, double: ChatwootDouble) -> None:
    payload = message_created(ACCOUNT, 11, "Where is my new card?")
    body = json.dumps(payload).encode()
    forged = signed("not-the-secret", body)
    assert post(client, payload, headers=forged).status_code == 401
    stale = signed(SECRET, body, timestamp=int(time.time()) - 3600)  # a replayed old delivery
    assert post(client, payload, headers=stale).status_code == 401
    plain = {"Content-Type": "application/json"}
    assert post(client, payload, headers=plain).status_code == 401
    assert post(client, payload, headers=plain, params={"token": "guess"}).status_code == 401
    # a Chatwoot that does not sign: the secret in the bot's URL
    assert post(client, payload, headers=plain, params={"token": SECRET}).json()["status"] == "accepted"
    assert len(sent(client, double)) == 1


def test_chatwoot_down_does_not_fail_the_webhook_and_is_retried(
    client: TestClient, double: ChatwootDouble, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.runtime.chatwoot_client")
    double.fail_next = 2  # Chatwoot answers 500 twice, then recovers
    started = time.perf_counter()
    reply = post(client, message_created(ACCOUNT, 11, "Where is my new card?"))
    assert reply.status_code == 200 and reply.json()["status"] == "accepted"
    assert time.perf_counter() - started < 1.0  # not held by the failing calls (first backoff is 0.5 s)
    calls = sent(client, double)
    assert double.failed == 2 and len(calls) == 1 and calls[0].body["content"].startswith("Cards arrive")
    failures = [r.getMessage() for r in caplog.records]
    assert len(failures) == 2 and all(
        "HTTP 500" in line and "/conversations/11/messages" in line for line in failures
    )
    assert not any(TOKEN in line for line in failures)  # the token is never logged


def test_the_double_refuses_what_chatwoot_does_not_document() -> None:
    assert body_problem("messages", {"content": "hi", "message_type": "outgoing", "private": False}) is None
    assert body_problem("messages", {"text": "hi"}) is not None
    assert body_problem("messages", {"content": "hi", "message_type": "bot"}) is not None
    assert body_problem("toggle_status", {"status": "open"}) is None
    assert body_problem("toggle_status", {"status": "closed"}) is not None


def test_the_connector_is_off_until_configured(tmp_path: Path, chatwoot_engine: Engine) -> None:
    settings = chatwoot_engine.settings.with_overrides(database_url=f"sqlite:///{tmp_path / 'bot.db'}")
    with TestClient(create_app(settings, engine=chatwoot_engine)) as test_client:
        off = post(test_client, message_created(ACCOUNT, 11, "hi"))
    assert off.status_code == 404 and "BOT_CHATWOOT_URL" in off.text
