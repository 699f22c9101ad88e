"""`bot serve` end to end (issue #19, items 3 and 11): which X-Forwarded-For it believes, and what its
access log shows. uvicorn's own proxy handling trusted any value from 127.0.0.1; the app now decides."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api_support import make_intents
from tests.servers import bot_servers


@pytest.fixture()
def served(tmp_path: Path, cache_dir: Path) -> Iterator[tuple[str, Path]]:
    """`bot serve` trusting 127.0.0.1 as its proxy, 3 requests a minute per client address."""
    env = {
        **os.environ,
        "BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.store.db'}",
        "BOT_CACHE_DIR": str(cache_dir),
        "BOT_API_KEYS": "widget:w-secret",
        "BOT_RATE_LIMIT_PER_IP": "3/minute",
        "HF_HUB_OFFLINE": "1",
    }
    args = ["--intents", str(make_intents(tmp_path / "intents")), "--forwarded-allow-ips", "127.0.0.1"]
    with bot_servers(tmp_path, env, args=args) as (served,):
        yield served.url, served.log


def test_forwarded_addresses_are_checked_and_the_log_keeps_secrets_out(served: tuple[str, Path]) -> None:
    url, log_path = served
    key = {"Authorization": "Bearer w-secret"}

    def chat(forwarded: str) -> httpx.Response:
        return httpx.post(
            f"{url}/v1/chat",
            json={"message": "where is my card"},
            headers={**key, "X-Forwarded-For": forwarded},
        )

    # values that are not addresses never pick a bucket: all four count against the proxy's own address
    statuses = [chat(f"garbage{n}").status_code for n in range(4)]
    assert statuses == [200, 200, 200, 429]
    # a real address from the trusted proxy is the client: its own bucket, and the address logged
    reply = chat("198.51.100.7")
    assert reply.status_code == 200, reply.text
    conversation = reply.json()["conversation_id"]
    poll = httpx.get(
        f"{url}/v1/conversations/{conversation}/messages", headers={**key, "X-Forwarded-For": "198.51.100.7"}
    )
    assert poll.status_code == 200
    assert httpx.get(f"{url}/demo?key=w-secret").status_code == 200
    time.sleep(0.5)  # let the access log reach the file
    log = log_path.read_text()
    assert "198.51.100.7:" in log and "garbage" not in log
    assert "/v1/conversations/[conversation]/messages" in log and conversation not in log
    assert "/demo?key=[redacted]" in log and "w-secret" not in log
