"""Webhooks through the real app (issue #30 items 1 and 2): subscriptions whose secret is shown once and
then masked, failed deliveries listed and re-sent, and the helpdesk path: an outside tool claims, replies
to and resolves a ticket with an agent's own key, the customer reads the reply, and every step's event
reaches a real local receiver in the order it happened."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.api import create_app
from bot.config import Settings
from bot.routing.engine import Engine
from bot.store.db import session_scope
from bot.store.outbox import Event, enqueue
from tests.api_support import make_intents
from tests.runtime.test_outbox import SECRET, Receiver, documented_verify

ADMIN = {"Authorization": "Bearer admin-key"}
ANN = {"Authorization": "Bearer ann-key"}
WIDGET = {"Authorization": "Bearer w-key"}
KEYS = "admin:admin-key,agent@ann:ann-key,widget:w-key,analyst:an-key"


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    one = Receiver(failures=0)
    yield one
    one.close()


@pytest.fixture()
def client(
    request: pytest.FixtureRequest, tmp_path: Path, bundled_encoder, cache_dir: Path
) -> Iterator[TestClient]:
    settings = Settings(  # a test may override settings with indirect parametrization
        intents_dir=make_intents(tmp_path / "intents"),
        cache_dir=cache_dir,
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        api_keys=KEYS,
        threshold=0.5,
        margin=0.1,
        retrieval_threshold=0.5,
        webhook_retry_seconds=0.05,
        webhook_max_attempts=2,
        webhook_timeout_seconds=2,
    ).with_overrides(**getattr(request, "param", {}))
    engine = Engine(settings, encoder=bundled_encoder)
    engine.load()
    with TestClient(create_app(settings, engine=engine)) as test_client:
        yield test_client


def wait_for(check, seconds: float = 10) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)


def test_a_secret_is_shown_once_then_masked_and_never_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = {"url": "http://127.0.0.1:9/hook", "secret": SECRET, "events": ["ticket.opened"]}
    assert client.post("/v1/admin/webhooks", json=body, headers=ANN).status_code == 403
    added = client.post("/v1/admin/webhooks", json=body, headers=ADMIN)
    assert added.status_code == 201 and added.json()["secret"] == SECRET
    (listed,) = client.get("/v1/admin/webhooks", headers=ADMIN).json()["items"]
    assert listed["secret"] == "****" + SECRET[-4:] and listed["events"] == ["ticket.opened"]
    bad = client.post("/v1/admin/webhooks", json={**body, "url": "ftp://x"}, headers=ADMIN)
    assert bad.status_code == 422 and "http(s)" in bad.text
    short = client.post("/v1/admin/webhooks", json={**body, "secret": "short"}, headers=ADMIN)
    assert short.status_code == 422
    unknown = client.post("/v1/admin/webhooks", json={**body, "events": ["ticket.eaten"]}, headers=ADMIN)
    assert unknown.status_code == 422
    assert SECRET not in caplog.text
    assert client.delete(f"/v1/admin/webhooks/{listed['id']}", headers=ADMIN).status_code == 204
    assert client.get("/v1/admin/webhooks", headers=ADMIN).json()["items"] == []
    assert client.delete(f"/v1/admin/webhooks/{listed['id']}", headers=ADMIN).status_code == 404


def test_failed_deliveries_are_listed_and_resent(client: TestClient, receiver: Receiver) -> None:
    receiver.failures = 2  # == BOT_WEBHOOK_MAX_ATTEMPTS: the first delivery gives up
    body = {"url": receiver.url, "secret": SECRET, "events": []}
    assert client.post("/v1/admin/webhooks", json=body, headers=ADMIN).status_code == 201
    database = client.app.state.runtime.database  # type: ignore[attr-defined]
    with session_scope(database) as session:
        enqueue(session, [Event("review.created", {"id": 7})])

    def failed() -> list[dict]:
        return client.get("/v1/admin/webhooks/failed", headers=ADMIN).json()["items"]

    wait_for(lambda: bool(failed()))
    (item,) = failed()
    assert (item["attempts"], item["last_error"], item["event_type"]) == (2, "HTTP 500", "review.created")
    resent = client.post(f"/v1/admin/webhooks/events/{item['id']}/resend", headers=ADMIN)
    assert resent.status_code == 200 and resent.json()["status"] == "pending"
    assert client.post(f"/v1/admin/webhooks/events/{item['id']}/resend", headers=ADMIN).status_code == 409
    assert client.post("/v1/admin/webhooks/events/999/resend", headers=ADMIN).status_code == 404
    wait_for(lambda: bool(receiver.accepted()))
    assert receiver.accepted()[0]["id"] == item["event_id"] and failed() == []


def test_a_helpdesk_answers_and_closes_a_ticket_with_an_agent_key(
    client: TestClient, receiver: Receiver
) -> None:
    body = {"url": receiver.url, "secret": SECRET, "events": []}
    assert client.post("/v1/admin/webhooks", json=body, headers=ADMIN).status_code == 201
    reply = client.post(
        "/v1/chat", json={"message": "I want to talk to a real person"}, headers=WIDGET
    ).json()
    assert reply["route"] == "handoff" and reply["ticket_id"]
    ticket, conversation = reply["ticket_id"], reply["conversation_id"]
    assert client.post(f"/v1/handoffs/{ticket}/claim", json={}, headers=ANN).json()["claimed_by"] == "ann"
    more = {"message": "are you there?", "conversation_id": conversation}
    assert client.post("/v1/chat", json=more, headers=WIDGET).status_code == 200
    answer = client.post(f"/v1/handoffs/{ticket}/reply", json={"text": "Hi, Ann here."}, headers=ANN)
    assert answer.status_code == 200 and answer.json()["author"] == "ann"
    closed = client.post(f"/v1/handoffs/{ticket}/resolve", json={"note": "done in the helpdesk"}, headers=ANN)
    assert closed.json()["status"] == "resolved"
    messages = client.get(f"/v1/conversations/{conversation}/messages", headers=WIDGET).json()["messages"]
    assert ("agent", "Hi, Ann here.") in [(m["role"], m["text"]) for m in messages]

    expected = [
        "ticket.opened",
        "ticket.claimed",
        "conversation.message",
        "ticket.replied",
        "ticket.resolved",
    ]
    wait_for(lambda: len(receiver.accepted()) == len(expected))
    events = sorted(receiver.accepted(), key=lambda e: e["created_at"])
    assert [e["type"] for e in events] == expected
    assert all(e["data"].get("ticket", {}).get("id", ticket) == ticket for e in events)
    assert events[2]["data"]["message"]["text"] == "are you there?"
    assert events[2]["data"]["conversation_status"] == "agent"
    assert events[3]["data"]["message"]["text"] == "Hi, Ann here."
    verify = documented_verify()
    assert all(verify(SECRET, headers["Bot-Signature"], raw) for _, headers, raw in receiver.received)


def test_a_helpdesk_replies_by_conversation_without_knowing_the_ticket(client: TestClient) -> None:
    reply = client.post(
        "/v1/chat", json={"message": "I want to talk to a real person"}, headers=WIDGET
    ).json()
    conversation, ticket = reply["conversation_id"], reply["ticket_id"]
    path = f"/v1/handoffs/conversations/{conversation}/reply"
    answered = client.post(path, json={"text": "Ann here, from the helpdesk."}, headers=ANN)
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert (body["ticket"]["id"], body["ticket"]["status"], body["ticket"]["claimed_by"]) == (
        ticket,
        "claimed",
        "ann",
    )
    assert body["message"]["author"] == "ann"
    again = client.post(path, json={"text": "Still here."}, headers=ANN)  # already hers: no second claim
    assert again.status_code == 200
    other = client.post(path, json={"agent": "bob", "text": "Me too"}, headers=ADMIN)
    assert other.status_code == 409 and "ann" in other.text
    unknown = client.post("/v1/handoffs/conversations/nope/reply", json={"text": "hi"}, headers=ANN)
    assert unknown.status_code == 404
    client.post(f"/v1/handoffs/{ticket}/resolve", json={}, headers=ANN)
    assert client.post(path, json={"text": "late"}, headers=ANN).status_code == 404  # the bot's again
    messages = client.get(f"/v1/conversations/{conversation}/messages", headers=WIDGET).json()["messages"]
    assert [m["text"] for m in messages if m["role"] == "agent"] == [
        "Ann here, from the helpdesk.",
        "Still here.",
    ]


@pytest.mark.parametrize("client", [{"webhook_timeout_seconds": 30}], indirect=True)
def test_a_hanging_endpoint_holds_up_no_chat(client: TestClient) -> None:
    release = threading.Event()
    receiver = Receiver(failures=0, hold=release)
    try:
        body = {"url": receiver.url, "secret": SECRET, "events": []}
        assert client.post("/v1/admin/webhooks", json=body, headers=ADMIN).status_code == 201
        first = client.post("/v1/chat", json={"message": "I want to talk to a real person"}, headers=WIDGET)
        assert receiver.holding.wait(10)  # the dispatcher is stuck in the ticket.opened send (30 s timeout)
        for text in ("are you there?", "hello?", "anyone?"):
            more = {"message": text, "conversation_id": first.json()["conversation_id"]}
            assert client.post("/v1/chat", json=more, headers=WIDGET).status_code == 200
        assert not receiver.received  # every chat was answered while the send still hung
        release.set()
        wait_for(lambda: len(receiver.accepted()) == 4)
    finally:
        release.set()
        receiver.close()
