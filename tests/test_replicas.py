"""Two `bot serve` processes on one PostgreSQL: shared conversations, and exactly one winner per claim."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api_support import make_intents, row_counts, temporary_database


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def two_servers(tmp_path: Path, cache_dir: Path) -> Iterator[tuple[list[str], str]]:
    with temporary_database("postgresql", tmp_path) as url:
        env = {
            **os.environ,
            "BOT_DATABASE_URL": url,
            "BOT_INTENTS_DIR": str(make_intents(tmp_path / "intents")),
            "BOT_CACHE_DIR": str(cache_dir),
            "BOT_API_KEYS": "",
            "HF_HUB_OFFLINE": "1",
        }
        ports = [free_port(), free_port()]
        logs = [(tmp_path / f"server{p}.log").open("w") for p in ports]
        servers = [
            subprocess.Popen(
                [sys.executable, "-c", "from bot.cli import main; main()", "serve", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            for port, log in zip(ports, logs, strict=True)
        ]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        try:
            deadline = time.monotonic() + 120
            for url_, server in zip(urls, servers, strict=True):
                while True:
                    assert server.poll() is None, (
                        tmp_path / f"server{url_.rsplit(':', 1)[1]}.log"
                    ).read_text()
                    try:
                        if httpx.get(f"{url_}/healthz", timeout=2).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    assert time.monotonic() < deadline, "server did not start within 120 s"
                    time.sleep(0.5)
            yield urls, url
        finally:
            for server in servers:
                server.terminate()
            for server in servers:
                try:
                    server.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    server.kill()
            for log in logs:
                log.close()


@pytest.mark.slow
def test_two_replicas_share_conversations_and_claims_are_exclusive(
    two_servers: tuple[list[str], str],
) -> None:
    (a, b), db_url = two_servers
    with httpx.Client(timeout=30) as http:
        # a conversation started on one replica continues on the other
        first = http.post(f"{a}/v1/chat", json={"message": "I ordered a new card last week"}).json()
        follow = http.post(
            f"{b}/v1/chat",
            json={"conversation_id": first["conversation_id"], "message": "and when will it get here?"},
        ).json()
        assert (follow["intent"], follow["context_used"]) == ("card_arrival", True)

        tickets = []
        for i in range(10):
            reply = http.post(
                f"{(a, b)[i % 2]}/v1/chat", json={"message": "I want to talk to a real person"}
            ).json()
            tickets.append(reply["ticket_id"])
        assert len(set(tickets)) == 10

    attempts = [(ticket, f"agent{n}", (a, b)[n % 2]) for ticket in tickets for n in range(5)]

    def claim(attempt: tuple[int, str, str]) -> int:
        ticket, agent, server = attempt
        return httpx.post(
            f"{server}/v1/handoffs/{ticket}/claim", json={"agent": agent}, timeout=30
        ).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(claim, attempts))
    assert len(statuses) == 50
    assert statuses.count(200) == 10 and statuses.count(409) == 40

    claimed = httpx.get(f"{a}/v1/handoffs", params={"status": "claimed", "limit": 50}).json()
    assert sorted(t["id"] for t in claimed["items"]) == sorted(tickets)
    counts = row_counts(db_url)
    assert counts["decision"] == 12 and counts["handoff_ticket"] == 10 and counts["conversation"] == 11
