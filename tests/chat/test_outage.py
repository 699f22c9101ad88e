"""Database outage: chat keeps answering, turns are spooled, and written exactly once when it returns.

The outage is made by a TCP proxy on 127.0.0.1 in front of the machine's PostgreSQL that the test cuts
and restores; nothing is stopped on the machine, and every loop here is bounded.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.api import create_app
from bot.chat.spool import Spool
from bot.config import Settings
from bot.routing.engine import Engine
from tests.api_support import make_intents, row_counts, temporary_database


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `cut()` drops every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            if self._listener is not None:
                with contextlib.suppress(OSError):  # wakes the thread in accept(); close() alone may not
                    self._listener.shutdown(socket.SHUT_RDWR)
                self._listener.close()
                self._listener = None
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target, timeout=5)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.close()


@pytest.fixture()
def proxied(tmp_path: Path) -> Iterator[tuple[str, str, TcpProxy]]:
    with temporary_database("postgresql", tmp_path) as direct_url:
        proxy = TcpProxy(("127.0.0.1", 5432))
        proxy.start()
        via_proxy = direct_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}") + "?connect_timeout=2"
        try:
            yield direct_url, via_proxy, proxy
        finally:
            proxy.cut()


def wait_for(condition, seconds: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return False


def test_chat_survives_an_outage_and_nothing_is_lost_or_doubled(
    proxied: tuple[str, str, TcpProxy], tmp_path: Path, bundled_encoder, cache_dir
) -> None:
    direct_url, via_proxy, proxy = proxied
    settings = Settings(
        intents_dir=make_intents(tmp_path / "intents"),
        cache_dir=cache_dir,
        database_url=via_proxy,
        spool_dir=tmp_path / "spool",
        rate_limit_per_ip="",
    )
    engine = Engine(settings, encoder=bundled_encoder)
    engine.load()
    messages = [f"my new card still hasn't come (order {n})" for n in range(30)]
    ok = 0
    with TestClient(create_app(settings, engine=engine)) as client:
        for text in messages[:10]:
            reply = client.post("/v1/chat", json={"message": text})
            assert reply.status_code == 200 and reply.json()["stored"] is True
            ok += 1
        conversation = reply.json()["conversation_id"]

        proxy.cut()
        for text in messages[10:20]:
            reply = client.post("/v1/chat", json={"message": text, "conversation_id": conversation})
            assert reply.status_code == 200, reply.text
            body = reply.json()
            assert (body["stored"], body["intent"], body["conversation_id"]) == (
                False,
                "card_arrival",
                conversation,
            )
            ok += 1
        health = client.get("/healthz").json()
        assert (
            health["status"] == "degraded"
            and health["spooled"] == 10
            and health["database"].startswith("error")
        )
        logs = client.get("/v1/logs")
        assert logs.status_code == 503 and logs.json()["error"]["type"] == "database_unavailable"

        proxy.start()
        assert wait_for(lambda: client.get("/healthz").json()["spooled"] == 0), (
            "spool was not drained in 30 s"
        )
        for text in messages[20:]:
            assert client.post("/v1/chat", json={"message": text}).json()["stored"] is True
            ok += 1
        assert client.app.state.runtime.service.drain_spool() == 0  # type: ignore[attr-defined]
        stored = client.get("/v1/logs", params={"limit": 100}).json()["items"]

    assert ok == 30 and row_counts(direct_url)["decision"] == 30
    assert sorted(item["text"] for item in stored) == sorted(messages)  # each once
    continued = [item for item in stored if item["conversation_id"] == conversation]
    assert len(continued) == 11  # the outage turns joined the conversation they belonged to


def test_a_record_replayed_twice_is_written_once(tmp_path: Path, bundled_encoder, cache_dir) -> None:
    with temporary_database("sqlite", tmp_path) as url:
        settings = Settings(
            intents_dir=make_intents(tmp_path / "intents"),
            cache_dir=cache_dir,
            database_url=url,
            spool_dir=tmp_path / "spool",
        )
        engine = Engine(settings, encoder=bundled_encoder)
        engine.load()
        with TestClient(create_app(settings, engine=engine)) as client:
            service = client.app.state.runtime.service  # type: ignore[attr-defined]
            from bot.store.db import make_engine

            service.database = make_engine("sqlite:////nonexistent/dir/x.db")  # unreachable: spools
            assert (
                client.post("/v1/chat", json={"message": "my card hasn't arrived"}).json()["stored"] is False
            )
            spool: Spool = service.spool
            (line,) = spool.path.read_text().splitlines()
            spool.path.write_text(f"{line}\n{line}\n")  # as if a crash left an applied record behind
            service.database = make_engine(url)
            assert service.drain_spool() == 2
        assert row_counts(url)["decision"] == 1


def _append_many(folder: str, prefix: str, count: int) -> None:
    spool = Spool(Path(folder))
    for n in range(count):
        spool.append({"spool_id": f"{prefix}{n}"})


def test_spool_loses_nothing_while_processes_append_and_drain(tmp_path: Path) -> None:
    import multiprocessing

    seen: list[str] = []
    spool = Spool(tmp_path)
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_append_many, args=(str(tmp_path), p, 150)) for p in ("a", "b")]
    for writer in writers:
        writer.start()
    while any(w.is_alive() for w in writers):
        spool.drain(lambda record: seen.append(record["spool_id"]))
    for writer in writers:
        writer.join(timeout=60)
    spool.drain(lambda record: seen.append(record["spool_id"]))
    assert sorted(seen) == sorted([f"a{n}" for n in range(150)] + [f"b{n}" for n in range(150)])
    assert [s for s in seen if s.startswith("a")] == [f"a{n}" for n in range(150)]  # order kept per writer
    assert spool.pending() == 0


def test_a_failed_drain_keeps_the_rest_for_later(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for n in range(5):
        spool.append({"spool_id": str(n)})
    applied: list[str] = []

    def flaky(record: dict) -> None:
        if record["spool_id"] == "2":
            raise RuntimeError("database went away again")
        applied.append(record["spool_id"])

    with pytest.raises(RuntimeError):
        spool.drain(flaky)
    assert applied == ["0", "1"] and spool.pending() == 3
    assert spool.drain(lambda record: applied.append(record["spool_id"])) == 3
    assert applied == ["0", "1", "2", "3", "4"]


def test_a_record_that_cannot_be_applied_is_set_aside_and_does_not_block_the_rest(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for n in range(4):
        spool.append({"spool_id": str(n)})
    with spool.path.open("a", encoding="utf-8") as handle:
        handle.write('{"spool_id": "torn')  # a crash in the middle of an append
    spool.append({"spool_id": "5"})
    applied: list[str] = []

    def apply(record: dict) -> None:
        if record["spool_id"] == "1":
            raise ValueError("the database refused this row")
        applied.append(record["spool_id"])

    assert spool.drain(apply, retryable=(ConnectionError,)) == 4
    assert applied == ["0", "2", "3", "5"] and spool.pending() == 0
    assert spool.rejected() == 2
    reasons = [json.loads(line)["error"] for line in spool.rejected_path.read_text().splitlines()]
    assert reasons[0].startswith("ValueError: the database refused") and reasons[1].startswith(
        "JSONDecodeError"
    )


def test_a_retryable_error_still_stops_the_drain_and_keeps_the_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for n in range(3):
        spool.append({"spool_id": str(n)})

    def down(record: dict) -> None:
        raise ConnectionError("still down")

    with pytest.raises(ConnectionError):
        spool.drain(down, retryable=(ConnectionError,))
    assert spool.pending() == 3 and spool.rejected() == 0


def test_set_aside_turns_can_be_requeued_and_torn_lines_stay_aside(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append({"spool_id": "refused"})
    spool.path.write_text(spool.path.read_text() + '{"spool_id": "tor')  # a crash tore this append

    def refuse(record: dict[str, object]) -> None:
        raise ValueError("the database refused it")

    assert spool.drain(refuse, retryable=(ConnectionError,)) == 0
    assert spool.rejected() == 2 and spool.pending() == 0
    spool.path.write_text('{"spool_id": "tor')  # and the spool ends in a torn line again
    assert spool.requeue_rejected() == (1, 1)
    assert spool.rejected() == 1 and "tor" in spool.rejected_path.read_text()
    seen: list[object] = []
    assert spool.drain(lambda record: seen.append(record["spool_id"]), retryable=(ConnectionError,)) == 1
    assert seen == ["refused"]  # the requeued record is whole, not glued to the torn line
    assert spool.rejected() == 2  # the torn line of the spool itself was set aside in turn


def test_spool_commands_report_and_requeue(tmp_path: Path) -> None:
    from tests.tuning.test_evaluate import bot

    spool = Spool(tmp_path / "spool")
    spool.append({"spool_id": "a"})
    spool.drain(lambda record: (_ for _ in ()).throw(ValueError("refused")), retryable=(ConnectionError,))
    status = bot("spool", "status", "--json", cache=tmp_path)  # the spool defaults to CACHE_DIR/spool
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout) == {"pending": 0, "rejected": 1, "folder": str(tmp_path / "spool")}
    requeued = bot("spool", "requeue", cache=tmp_path)
    assert requeued.returncode == 0 and "requeued 1 turns" in requeued.stdout
    assert spool.pending() == 1 and spool.rejected() == 0


def test_a_turn_spooled_before_calibration_id_existed_still_replays() -> None:
    """Spool lines outlive upgrades: a decision without the newer calibration_id field loads with ''."""
    from datetime import UTC, datetime

    from bot.routing.policy import Candidate, Decision
    from bot.store.turns import PendingWrite

    decision = Decision(
        "answer", "card_arrival", 0.9, (Candidate("card_arrival", 0.8, 0.9),), "why", 0.5, 0.1
    )
    pending = PendingWrite(
        spool_id="a" * 32, conversation_id="c" * 32, channel="web", metadata={}, text="where is my card",
        decision=decision, latency_ms=3.0, chosen=False, at=datetime.now(UTC),
    )  # fmt: skip
    record = json.loads(json.dumps(pending.to_record()))
    assert PendingWrite.from_record(record) == pending  # the round trip, as the spool does it
    del record["decision"]["calibration_id"]
    assert PendingWrite.from_record(record).decision.calibration_id == ""
