"""The webhook outbox and its dispatcher (issue #30 item 1), against a real local HTTP receiver.

The receiver fails its first attempts, then accepts: the event arrives once it recovers, signed so the
snippet in docs/webhooks.md verifies it, and no more than at-least-once allows; an event that exhausts its
retries is kept, listed and re-sent; an event exists exactly when the turn that caused it was committed;
two dispatchers (replicas) send each event once; and a `bot serve` killed with SIGKILL between the turn and
the send delivers it after a restart. On SQLite and on the machine's PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine as Database
from sqlmodel import Session, select

from bot.config import Settings
from bot.errors import ConfigError
from bot.routing.policy import Decision
from bot.runtime.metrics import Metrics
from bot.runtime.webhooks import WebhookDispatcher
from bot.store import deliveries, webhooks
from bot.store.db import make_engine, session_scope, upgrade
from bot.store.models import HandoffTicket, WebhookDelivery, utcnow
from bot.store.outbox import Event, enqueue
from bot.store.turns import PendingWrite, write_turns
from tests.api_support import make_intents, temporary_database
from tests.servers import SERVE, Served, free_port, wait_healthy

SECRET = "whsec_test_0123456789abcdef"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
FAST = Settings(webhook_retry_seconds=0.05, webhook_max_attempts=5, webhook_timeout_seconds=2)


def documented_verify() -> Callable[..., bool]:
    """`verify_signature` exactly as docs/webhooks.md shows it."""
    text = DOCS.read_text(encoding="utf-8")
    code = re.search(r"<!-- verify-snippet -->\n```python\n(.*?)```", text, re.S)
    assert code is not None, "docs/webhooks.md lost its verification snippet"
    scope: dict[str, Any] = {}
    exec(code.group(1), scope)
    return scope["verify_signature"]  # type: ignore[no-any-return]


@dataclass
class Receiver:
    """A real HTTP endpoint on a free port: answers 500 to its first `failures` requests, then 200; with
    `hold`, each request hangs (`holding` set) until it is set."""

    failures: int = 2
    received: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    hold: threading.Event | None = None
    holding: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.hold is not None:
                    receiver.holding.set()
                    receiver.hold.wait(30)
                status = 500 if len(receiver.received) < receiver.failures else 200
                receiver.received.append((status, dict(self.headers.items()), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def accepted(self) -> list[dict[str, Any]]:
        return [json.loads(body) for status, _, body in self.received if status == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    one = Receiver()
    yield one
    one.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with temporary_database(request.param, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        yield engine
        engine.dispose()


def handoff_turn(conversation: str, text: str = "I want a person", *, new: bool = True) -> PendingWrite:
    decision = Decision(
        route="handoff", intent=None, confidence=0.2, candidates=(), reason="no intent matched", threshold=0.5,
        margin=0.1, answer="A colleague will answer.", model_id="m", intents_version="v",
    )  # fmt: skip
    return PendingWrite(
        spool_id=f"s-{conversation}-{text}", conversation_id=conversation, channel="web", metadata={},
        text=text, decision=decision, latency_ms=1.0, chosen=False, at=utcnow(),
        new_conversation=new,
    )  # fmt: skip


def keep(conversation: Any, pending: PendingWrite) -> tuple[Decision, str | None]:
    return pending.decision, None


def send_until(dispatcher: WebhookDispatcher, done: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "the dispatcher did not finish in time"
        dispatcher.step()
        time.sleep(0.02)


def outbox(database: Database) -> list[WebhookDelivery]:
    with Session(database) as session:
        return list(session.exec(select(WebhookDelivery).order_by(WebhookDelivery.id)).all())  # type: ignore[arg-type]


def test_a_handoff_is_delivered_signed_once_the_receiver_recovers(
    database: Database, receiver: Receiver
) -> None:
    webhooks.add(database, webhooks.check_spec(receiver.url, SECRET, ["ticket.opened"]))
    with session_scope(database) as session:
        write_turns(session, [handoff_turn("new-1")], keep)
    metrics = Metrics()
    dispatcher = WebhookDispatcher(database, FAST, metrics)
    send_until(dispatcher, lambda: bool(receiver.accepted()))
    for _ in range(3):  # nothing is left to send: no duplicate beyond the retries
        dispatcher.step()
    dispatcher.stop()
    exposed = metrics.exposition().decode()
    assert 'bot_webhook_deliveries_total{result="retry"} 2.0' in exposed
    assert 'bot_webhook_deliveries_total{result="delivered"} 1.0' in exposed
    assert 'bot_webhook_outbox{state="pending"} 0.0' in exposed

    assert [status for status, _, _ in receiver.received] == [500, 500, 200]
    ids = {headers["Bot-Event-Id"] for _, headers, _ in receiver.received}
    assert len(ids) == 1  # every retry is the same event: the receiver de-duplicates by its id
    verify = documented_verify()
    for _, headers, body in receiver.received:
        assert verify(SECRET, headers["Bot-Signature"], body)
        assert not verify("another secret, 16+ chars", headers["Bot-Signature"], body)
        assert not verify(SECRET, headers["Bot-Signature"], body.replace(b"person", b"robot"))
    (event,) = receiver.accepted()
    assert event["id"] in ids and event["type"] == "ticket.opened"
    data = event["data"]
    assert data["reason"] == "no intent matched" and data["ticket"]["status"] == "open"
    assert [(m["role"], m["text"]) for m in data["transcript"]] == [
        ("user", "I want a person"),
        ("bot", "A colleague will answer."),
    ]
    assert data["decisions"][0]["route"] == "handoff"
    (row,) = outbox(database)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 3, None)


def test_an_exhausted_event_is_kept_listed_and_resent(
    database: Database, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.failures = 3
    webhooks.add(database, webhooks.check_spec(receiver.url, SECRET, []))
    with session_scope(database) as session:
        enqueue(session, [Event("review.created", {"id": 1})])
    dispatcher = WebhookDispatcher(database, FAST.with_overrides(webhook_max_attempts=2))
    send_until(dispatcher, lambda: outbox(database)[0].status == "failed")
    (failed,), total = deliveries.list_failed(database, limit=10, offset=0)
    assert total == 1 and failed.attempts == 2 and failed.last_error == "HTTP 500"
    assert failed.id is not None
    deliveries.resend(database, failed.id)
    send_until(dispatcher, lambda: outbox(database)[0].status == "delivered")
    dispatcher.stop()
    assert len(receiver.received) == 4 and len({h["Bot-Event-Id"] for _, h, _ in receiver.received}) == 1
    assert deliveries.list_failed(database, limit=10, offset=0)[1] == 0
    assert "gave up on review.created" in caplog.text and SECRET not in caplog.text
    assert deliveries.prune(database, older_than_days=1) == 0  # delivered rows are kept a while
    assert deliveries.prune(database, older_than_days=0) == 1 and outbox(database) == []


def test_an_event_exists_only_if_its_turn_was_committed(database: Database, receiver: Receiver) -> None:
    webhooks.add(database, webhooks.check_spec(receiver.url, SECRET, []))
    with pytest.raises(RuntimeError), session_scope(database) as session:
        write_turns(session, [handoff_turn("new-2")], keep)
        assert len(session.exec(select(WebhookDelivery)).all()) == 1  # written, in this transaction
        raise RuntimeError("the turn's transaction fails after the outbox row was written")
    assert outbox(database) == []
    with Session(database) as session:
        assert session.exec(select(HandoffTicket)).all() == []
    with session_scope(database) as session:  # a turn of a conversation with a ticket: its message event
        write_turns(session, [handoff_turn("new-3")], keep)
    with session_scope(database) as session:
        write_turns(session, [handoff_turn("new-3", "hello?", new=False)], keep)
    assert [row.event_type for row in outbox(database)] == ["ticket.opened", "conversation.message"]


def test_two_replicas_send_each_event_once(database: Database, receiver: Receiver) -> None:
    receiver.failures = 0
    webhooks.add(database, webhooks.check_spec(receiver.url, SECRET, []))
    with session_scope(database) as session:
        enqueue(session, [Event("review.created", {"id": n}) for n in range(24)])
    replicas = [WebhookDispatcher(database, FAST), WebhookDispatcher(database, FAST)]

    def run(dispatcher: WebhookDispatcher) -> None:
        while dispatcher.step():
            pass

    threads = [threading.Thread(target=run, args=(d,)) for d in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    sent = sorted(event["data"]["id"] for event in receiver.accepted())
    assert sent == list(range(24))  # each exactly once, though both claimed at the same time
    assert all(row.status == "delivered" for row in outbox(database))
    for dispatcher in replicas:
        dispatcher.stop()


def test_a_failing_endpoint_is_backed_off_whole_and_never_starves_a_healthy_one(database: Database) -> None:
    """In a load test a failing endpoint's retries took every round and the healthy one beside it got 30 of
    8,696 events; each endpoint is now sent to on its own, and a failing one waits out its backoff whole."""
    failing, healthy = Receiver(failures=10**6), Receiver(failures=0)
    try:
        for receiver in (failing, healthy):
            webhooks.add(database, webhooks.check_spec(receiver.url, SECRET, []))
        with session_scope(database) as session:
            enqueue(session, [Event("review.created", {"id": n}) for n in range(30)])
        dispatcher = WebhookDispatcher(database, FAST.with_overrides(webhook_retry_seconds=1.0))
        send_until(dispatcher, lambda: len(healthy.accepted()) == 30)
        dispatcher.stop()
        assert sorted(event["data"]["id"] for event in healthy.accepted()) == list(range(30))
        # one failed try holds the endpoint back: its other 29 events were not each tried and failed
        assert len(failing.received) < 5, len(failing.received)
        rows = [row for row in outbox(database) if row.status == "pending"]
        assert len(rows) == 30 and sum(row.attempts for row in rows) == len(failing.received)
        assert all(row.next_attempt_at > utcnow() for row in rows)  # all wait out the backoff
    finally:
        failing.close()
        healthy.close()


def test_a_round_serves_as_many_endpoints_as_it_sends_to_at_once_and_the_next_round_the_rest(
    database: Database,
) -> None:
    """Claiming every endpoint's rows at once left the fifth and later waiting for a worker while their
    leases ran (another replica could then send them again); a round now takes four, the next the rest."""
    receivers = [Receiver(failures=0) for _ in range(6)]
    try:
        for receiver in receivers:
            webhooks.add(database, webhooks.check_spec(receiver.url, SECRET, []))
        with session_scope(database) as session:
            enqueue(session, [Event("review.created", {"id": 1})])
        dispatcher = WebhookDispatcher(database, FAST)
        assert dispatcher.step() == 4
        assert sum(len(r.received) for r in receivers) == 4
        assert dispatcher.step() == 2
        dispatcher.stop()
        assert all(len(r.accepted()) == 1 for r in receivers)  # each endpoint once
    finally:
        for receiver in receivers:
            receiver.close()


def test_a_server_killed_between_the_turn_and_the_send_delivers_after_a_restart(
    tmp_path: Path, cache_dir: Path, receiver: Receiver
) -> None:
    receiver.failures = 10**6  # down until the server was killed
    env = {
        **os.environ,
        "BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "BOT_CACHE_DIR": str(cache_dir),
        "BOT_SELF_TRAIN": "false",
        "HF_HUB_OFFLINE": "1",
        "BOT_RATE_LIMIT_PER_IP": "",
        "BOT_WEBHOOKS": json.dumps([{"url": receiver.url, "secret": SECRET, "events": ["ticket.opened"]}]),
        "BOT_WEBHOOK_RETRY_SECONDS": "0.1",
        "BOT_WEBHOOK_TIMEOUT_SECONDS": "1",
    }
    args = ["--intents", str(make_intents(tmp_path / "intents"))]

    def start() -> tuple[subprocess.Popen[bytes], Served]:
        port = free_port()
        served = Served(f"http://127.0.0.1:{port}", tmp_path / f"server{port}.log")
        with served.log.open("w") as log:
            process = subprocess.Popen([*SERVE, "--port", str(port), *args], env=env, stdout=log, stderr=log)
        wait_healthy(process, served)
        return process, served

    process, served = start()
    try:
        reply = httpx.post(
            f"{served.url}/v1/chat", json={"message": "I want to talk to a real person"}, timeout=30
        )
        assert reply.json()["route"] == "handoff", reply.text
        database = make_engine(env["BOT_DATABASE_URL"])
        deadline = time.monotonic() + 10
        # the event was written with the turn and tried once, not delivered (killed mid-send instead, the
        # row would wait for its lease to run out: the same path, 15 s slower)
        while not [row for row in outbox(database) if row.attempts and row.lease_until is None]:
            assert time.monotonic() < deadline, "the dispatcher never tried"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        assert [row.status for row in outbox(database)] == ["pending"]
        receiver.failures = 0
        process, served = start()
        deadline = time.monotonic() + 30
        while not receiver.accepted():
            assert time.monotonic() < deadline, served.log.read_text()
            time.sleep(0.1)
        (event,) = receiver.accepted()
        assert event["type"] == "ticket.opened"
        assert event["data"]["transcript"][0]["text"] == "I want to talk to a real person"
        database.dispose()
    finally:
        process.terminate()
        process.wait(20)


def test_replicas_starting_together_add_a_settings_subscription_once(database: Database) -> None:
    specs = webhooks.parse_setting(json.dumps([{"url": "http://127.0.0.1:9/hook", "secret": SECRET}]))
    together = threading.Barrier(4)
    errors: list[Exception] = []

    def start() -> None:
        together.wait()
        try:
            webhooks.sync_settings(database, specs)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and [row.source for row in webhooks.active(database)] == ["settings"]
    webhooks.sync_settings(database, [])  # no longer listed: removed
    assert webhooks.active(database) == []


def test_a_malformed_setting_names_the_entry_never_its_secret() -> None:
    with pytest.raises(ConfigError, match=r"BOT_WEBHOOKS\[1\]\.secret") as error:
        webhooks.parse_setting(
            json.dumps(
                [{"url": "http://a.example/h", "secret": SECRET}, {"url": "http://b/h", "secret": "tiny-key"}]
            )
        )
    assert "tiny-key" not in str(error.value)
    with pytest.raises(ConfigError, match="not JSON"):
        webhooks.parse_setting("http://a.example/h")
    with pytest.raises(ConfigError, match="unknown event types"):
        webhooks.parse_setting(
            json.dumps([{"url": "http://a/h", "secret": SECRET, "events": ["ticket.lost"]}])
        )
