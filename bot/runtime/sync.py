"""One poller for everything a serving process keeps in step with the database.

Replicas share only the database, so each process looks at it on a timer: spooled chat turns are
written back once it answers again, examples other processes learned are picked up, and an intents
version another replica activated is loaded. Each of those is a `SyncTask`; one thread runs them all,
each at its own interval, so they fail, retry and log the same way, and stop together.

A task's `run` returns a line to log when it changed something, else None. A failure (the database
down, a bad row) keeps what the process has and is retried at the next interval: its first failure is a
warning, repeats are debug lines until it works again, which is logged once more.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

TICK_SECONDS = 0.25  # how often the thread looks whether a task is due; well under every interval


@dataclass(frozen=True)
class SyncTask:
    """Something to check every `seconds`: `run` returns a line to log (at `level`) when it changed
    something."""

    name: str
    seconds: float
    run: Callable[[], str | None]
    level: int = logging.INFO


@dataclass
class _Schedule:
    task: SyncTask
    due: float
    failing: bool = False


class Poller:
    """Runs `SyncTask`s on one daemon thread until `stop`."""

    def __init__(self, tasks: Sequence[SyncTask], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.tasks = list(tasks)
        self._clock = clock
        now = clock()
        self._schedule = [_Schedule(task, now + task.seconds) for task in tasks]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runtime-sync", daemon=True)

    def start(self) -> Poller:
        if self._schedule:
            self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the task running now (if any) returns."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run_due(self) -> None:
        """Run every task whose interval has passed (the thread's step; tests call it directly)."""
        for entry in self._schedule:
            if self._stopping.is_set():
                return
            if self._clock() < entry.due:
                continue
            self._run(entry)
            entry.due = self._clock() + entry.task.seconds

    def _loop(self) -> None:
        while not self._stopping.wait(TICK_SECONDS):
            self.run_due()

    def _run(self, entry: _Schedule) -> None:
        name = entry.task.name
        try:
            done = entry.task.run()
        except Exception as exc:
            reason = f"{exc.__class__.__name__}: {(str(exc).splitlines() or [''])[0]}"
            level = logging.DEBUG if entry.failing else logging.WARNING
            log.log(level, "sync %s failed (%s); keeping what this process has, retrying", name, reason)
            entry.failing = True
            return
        if entry.failing:
            log.warning("sync %s works again", name)
            entry.failing = False
        if done:
            log.log(entry.task.level, "sync %s: %s", name, done)
