"""Two `bot serve` processes on one PostgreSQL: shared conversations, and exactly one winner per claim."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api_support import make_intents, row_counts, temporary_database
from tests.servers import bot_servers


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
        with bot_servers(tmp_path, env, 2) as served:
            yield [one.url for one in served], url


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


def test_examples_learned_by_another_process_reach_this_one(
    tmp_path: Path, bundled_encoder, cache_dir: Path
) -> None:
    """A replica that did not handle the review still routes with the example within a few seconds."""
    from fastapi.testclient import TestClient

    from bot.api import create_app
    from bot.config import Settings
    from bot.routing.engine import Engine
    from bot.store.db import make_engine, session_scope, upgrade
    from bot.store.examples import forget, remember

    url = f"sqlite:///{tmp_path / 'bot.store.db'}"
    settings = Settings(
        intents_dir=make_intents(tmp_path / "intents"),
        cache_dir=cache_dir,
        database_url=url,
        learned_sync_seconds=0.1,
    )
    engine = Engine(settings, encoder=bundled_encoder)
    engine.load()
    intent = engine.intents.names[0]
    other_replica = make_engine(url)
    upgrade(other_replica)

    def learned() -> list[str]:
        intents = client.get("/v1/intents").json()["intents"]
        return next(i["learned_examples"] for i in intents if i["name"] == intent)

    def eventually(check: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + 30
        while not check():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    with TestClient(create_app(settings, engine=engine)) as client:
        assert learned() == []
        with session_scope(other_replica) as session:  # another process's review teaches it
            remember(session, intent=intent, text="the plastic thing never showed up", source="review")
        assert eventually(lambda: learned() == ["the plastic thing never showed up"])
        with session_scope(other_replica) as session:  # and an analyst there drops it again
            forget(session, text="the plastic thing never showed up")
        assert eventually(lambda: learned() == [])
    other_replica.dispose()
