"""A real `bot serve` under issue #28's template repro: its peak memory stays where a normal template's is.

The answer of `exchange_rate` is the issue's `translate` repro with its sizes taken from the customer's
metadata, so the folder loads and every chat with `{"go": true}` meets it (written with constants, the
same template is refused when the folder loads: `test_template_bounds.py`, and the reload below). Before
the fix one such chat took 2.7 GB and eight took the server to 15 GB; now each fails alone, is answered
with a handoff and logged, and the process's high-water mark (VmHWM) moves by a few megabytes.

    pytest -q -s tests/content/test_template_memory_serve.py    (prints the figures; docs/evaluation.md)
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api_support import INTENTS, make_intents
from tests.conftest import write
from tests.servers import SERVE, Served, free_port, wait_healthy

REPRO = (
    "{% if metadata.go %}{{ (metadata.a * metadata.n).translate({97: metadata.b * metadata.m}) }}"
    "{% endif %}ok"
)
GO = {"go": True, "a": "a", "n": 49999, "b": "x", "m": 49990}  # the ('a'*49999).translate(...)
CONSTANT_REPRO = "{% if metadata.go %}{{ ('a'*49999).translate({97: 'x'*49990}) }}{% endif %}ok"
RATE = "Which exchange rate do you use for foreign currency?"
CARD = "Where is my new card?"
WIDGET = {"Authorization": "Bearer w-key"}
CHATS = 8


def _folder(folder: Path, answer: str) -> Path:
    make_intents(folder)
    write(
        folder / "bank.yaml", INTENTS.replace('answer: "We use the interbank rate."', f"answer: {answer!r}")
    )
    return folder


def high_water_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM in /proc/PID/status), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.fixture()
def server(tmp_path: Path, cache_dir: Path) -> Iterator[tuple[Served, int, Path]]:
    folder = _folder(tmp_path / "intents", REPRO)
    env = {
        **os.environ,
        "BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "BOT_CACHE_DIR": str(cache_dir),
        "BOT_API_KEYS": "widget:w-key,admin:root-key",
        "BOT_RATE_LIMIT_PER_IP": "",
        "BOT_SELF_TRAIN": "false",  # no background training: its memory would hide the template's
        "HF_HUB_OFFLINE": "1",
    }
    served = Served(f"http://127.0.0.1:{free_port()}", tmp_path / "server.log")
    port = served.url.rsplit(":", 1)[1]
    with served.log.open("w") as log:
        process = subprocess.Popen(
            [*SERVE, "--port", port, "--intents", str(folder)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_healthy(process, served)
            yield served, process.pid, folder
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _chats(url: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """`CHATS` chats at once, each its own conversation; their replies."""

    def one(_: int) -> dict[str, Any]:
        response = httpx.post(
            f"{url}/v1/chat", json={"message": text, "metadata": metadata}, headers=WIDGET, timeout=120
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    with ThreadPoolExecutor(CHATS) as pool:
        return list(pool.map(one, range(CHATS)))


def test_the_repro_fails_each_reply_alone_and_the_peak_memory_stays_normal(
    server: tuple[Served, int, Path],
) -> None:
    served, pid, folder = server
    # normal: the same template without the trigger, and another intent, eight chats at a time
    for _ in range(3):
        assert all(r["answer"] == "ok" for r in _chats(served.url, RATE, {}))
        assert all(r["route"] == "answer" for r in _chats(served.url, CARD, {}))
    normal = high_water_mb(pid)
    started = time.monotonic()
    replies = _chats(served.url, RATE, GO)
    seconds = time.monotonic() - started
    repro = high_water_mb(pid)
    # a reload with the repro written with constants is refused before it builds anything
    write(
        folder / "bank.yaml",
        INTENTS.replace('answer: "We use the interbank rate."', f"answer: {CONSTANT_REPRO!r}"),
    )
    reload = httpx.post(
        f"{served.url}/v1/admin/reload", headers={"Authorization": "Bearer root-key"}, timeout=60
    )
    after_reload = high_water_mb(pid)
    print(
        f"\nbot serve VmHWM: normal {normal:.0f} MB; after {CHATS} concurrent repro chats {repro:.0f} MB "
        f"(+{repro - normal:.1f} MB, {seconds:.2f} s for all {CHATS}); after a refused reload {after_reload:.0f} MB"
    )
    assert all(r["route"] == "handoff" and r["intent"] == "exchange_rate" for r in replies), replies
    assert all("translate() would hold more than 50,000" in r["reason"] for r in replies)
    assert repro - normal < 100, (normal, repro)
    assert reload.status_code == 422 and "translate() would hold more than 50,000" in reload.text
    assert after_reload - normal < 100, (normal, after_reload)
    assert _chats(served.url, CARD, {})[0]["route"] == "answer"  # still serving
    log = served.log.read_text()
    assert log.count("answer template of 'exchange_rate' failed") >= CHATS
