"""The runtime's one poller: each task at its own interval, failures kept apart and logged once a streak."""

from __future__ import annotations

import logging

import pytest

from bot.runtime.sync import Poller, SyncTask


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_each_task_runs_at_its_own_interval() -> None:
    clock = Clock()
    runs: list[str] = []
    poller = Poller(
        [
            SyncTask("fast", 1.0, lambda: runs.append("fast") or None),
            SyncTask("slow", 3.0, lambda: runs.append("slow") or None),
        ],
        clock=clock,
    )
    for second in range(1, 7):
        clock.now = float(second)
        poller.run_due()
    assert runs.count("fast") == 6 and runs.count("slow") == 2


def test_a_failing_task_warns_once_a_streak_and_never_stops_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    state = {"down": True, "other": 0}

    def database() -> str | None:
        if state["down"]:
            raise ConnectionError("connection refused\nsecond line never shown")
        return "wrote 3 spooled chat turns"

    def other() -> str | None:
        state["other"] += 1
        return None

    poller = Poller(
        [SyncTask("spool", 1.0, database, level=logging.WARNING), SyncTask("x", 1.0, other)], clock=clock
    )
    with caplog.at_level(logging.INFO, logger="bot.runtime.sync"):
        for second in range(1, 4):
            clock.now = float(second)
            poller.run_due()
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings == [
            "sync spool failed (ConnectionError: connection refused); keeping what this process has, retrying"
        ]
        assert state["other"] == 3  # the failing task never held the others up
        state["down"] = False
        clock.now = 4.0
        poller.run_due()
    messages = [r.getMessage() for r in caplog.records]
    assert messages[-2:] == ["sync spool works again", "sync spool: wrote 3 spooled chat turns"]


def test_the_thread_runs_tasks_and_stops() -> None:
    import threading

    ran = threading.Event()
    poller = Poller([SyncTask("tick", 0.01, lambda: ran.set() or None)]).start()
    try:
        assert ran.wait(5), "the poller thread never ran its task"
    finally:
        poller.stop(timeout=5)
    assert not poller._thread.is_alive()
