"""`bot shell` and `bot route -` as a user runs them: a real subprocess, the model loaded once per run,
learned examples read from BOT_DATABASE_URL like the server has them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.store.db import make_engine, session_scope, upgrade
from bot.store.examples import remember
from tests.conftest import INTENTS

TAUGHT = "do you sell gold bars"  # the demo folder hands this off; an analyst taught it as exchange_rate


def taught_database(folder: Path) -> str:
    url = f"sqlite:///{folder / 'learned.db'}"
    database = make_engine(url)
    upgrade(database)
    with session_scope(database) as session:
        remember(session, intent="exchange_rate", text=TAUGHT, source="review")
    database.dispose()
    return url


def bot(*args: str, stdin: str, database_url: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "BOT_DATABASE_URL": database_url, "BOT_CACHE_DIR": str(cache)}
    return subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", *args, "--intents", str(INTENTS)],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.slow
def test_shell_routes_each_line_with_context_and_learned_examples(tmp_path: Path) -> None:
    lines = [
        TAUGHT,  # only the learned example makes this an answer
        "My new card still hasn't arrived",
        "where is it",  # cannot stand alone: read with the previous line
        "/why",
        "/reset",
        "where is it",  # a new conversation: nothing to read it with
        "/exit",
        TAUGHT,  # after /exit: never routed
    ]
    result = bot(
        "shell", stdin="\n".join(lines) + "\n", database_url=taught_database(tmp_path), cache=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "1 learned examples" in result.stderr
    replies = [
        line
        for line in result.stdout.splitlines()
        if line.split("  ")[0] in {"answer", "clarify", "retrieve", "handoff"}
    ]
    assert len(replies) == 4, result.stdout
    assert replies[0].startswith("answer  exchange_rate  confidence ")
    assert replies[1].startswith("answer  card_arrival")
    assert (
        replies[2].startswith("answer  card_arrival")
        and "read together with the previous message" in replies[2]
    )
    assert replies[3].startswith("handoff  no intent")
    assert "bot: " in result.stdout  # what the customer would read
    assert "reason: " in result.stdout and "candidates" in result.stdout  # /why
    assert "new conversation" in result.stdout


@pytest.mark.slow
def test_route_reads_many_messages_from_stdin_as_json_lines(tmp_path: Path) -> None:
    url = taught_database(tmp_path)
    stdin = f"{TAUGHT}\n\nmy new card still hasn't come\n"  # the blank line is skipped
    result = bot("route", "-", "--json", stdin=stdin, database_url=url, cache=tmp_path)
    assert result.returncode == 0, result.stderr
    decisions = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(d["text"], d["route"], d["intent"]) for d in decisions] == [
        (TAUGHT, "answer", "exchange_rate"),
        ("my new card still hasn't come", "answer", "card_arrival"),
    ]
    assert all(d["answer"] and d["reason"] and d["candidates"] for d in decisions)

    # --no-learned routes with the YAML alone: the taught message goes back to a person
    alone = bot("route", "-", "--no-learned", stdin=f"{TAUGHT}\n", database_url=url, cache=tmp_path)
    assert alone.returncode == 0, alone.stderr
    route, intent, *_ = alone.stdout.split()
    assert (route, intent) == ("handoff", "-")
