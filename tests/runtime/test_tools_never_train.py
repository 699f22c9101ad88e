"""`bot route` and `bot shell` on a folder whose trained model is not ready never train: they route with
the stock model at once and say so on stderr (#26 item 6)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import write
from tests.routing.test_self_calibration import HOME

BOT = [sys.executable, "-c", "from bot.cli import main; main()"]


@pytest.mark.slow
@pytest.mark.parametrize("command", [["route", "switch the lamp on"], ["shell"]])
def test_a_tool_on_a_new_folder_says_it_routes_with_the_stock_model(
    tmp_path: Path, command: list[str]
) -> None:
    folder = write(tmp_path / "intents" / "home.yaml", HOME).parent
    env = {**os.environ, "BOT_SELF_TRAIN": "true", "BOT_CACHE_DIR": str(tmp_path / "cache")}
    started = time.monotonic()
    done = subprocess.run(
        [*BOT, *command, "--intents", str(folder)],
        env=env,
        input="turn the lights off\n" if command == ["shell"] else None,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "no trained model yet; routing with the stock model" in done.stderr
    assert "lights_" in done.stdout or "lights" in done.stdout
    assert not (tmp_path / "cache" / "models").exists()  # nothing was trained
    assert time.monotonic() - started < 120  # the stock export once at most, never a training
