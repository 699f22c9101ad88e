"""`bot serve --watch`: a saved edit is live at once, a broken one is reported and the live set stays."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import write
from tests.routing.test_self_calibration import HOME
from tests.servers import bot_servers


def eventually(check: object, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_a_saved_edit_goes_live_and_a_broken_one_keeps_the_live_intents(tmp_path: Path) -> None:
    folder = tmp_path / "intents"
    write(folder / "home.yaml", HOME)
    env = {
        **os.environ,
        "BOT_INTENTS_DIR": str(folder),
        "BOT_CACHE_DIR": str(tmp_path / "cache"),
        "BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "BOT_SELF_TRAIN": "false",
    }
    with bot_servers(tmp_path, env, args=["--watch"]) as (server,):

        def live() -> dict[str, object]:
            answer: dict[str, object] = httpx.get(f"{server.url}/readyz", timeout=5).json()
            return answer

        first = live()
        write(
            folder / "home.yaml",
            HOME.replace(
                "  - name: play_music",
                "  - name: play_radio\n    description: The user wants a radio station on.\n  - name: play_music",
            ),
        )
        assert eventually(lambda: live()["intents"] == 6), server.log.read_text()[-2000:]
        edited = live()
        assert edited["intents_version"] != first["intents_version"]
        routed = httpx.post(
            f"{server.url}/v1/route", json={"messages": ["put a radio station on"]}, timeout=10
        )
        assert routed.json()["decisions"][0]["intent"] == "play_radio"

        write(folder / "home.yaml", HOME + "  - name: broken\n    descripton: a typo in a key\n")
        assert eventually(lambda: "not reloaded after a change to home.yaml" in server.log.read_text())
        log = server.log.read_text()
        assert "home.yaml:" in log and "descripton" in log  # where and what, as `bot check` says it
        assert live()["intents_version"] == edited["intents_version"]  # the live intents stayed


def test_watch_needs_one_worker(tmp_path: Path) -> None:
    import subprocess

    from tests.servers import SERVE

    result = subprocess.run(
        [*SERVE, "--watch", "--workers", "2"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 2 and result.stderr.startswith("error: --watch reloads one process")
