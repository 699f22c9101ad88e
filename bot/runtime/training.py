"""Self-training in the background: one child process at a time, at low priority, and never half used.

A serving process routes a new folder version at once with the best model it already has (the stock
encoder with its own self-calibration) and asks `BackgroundTrainer` for the folder's trained model. The
trainer runs `python -m bot.tuning.self_training` in a child process: torch never enters the server, the
child lowers its own CPU priority and uses `BOT_TRAINING_THREADS` threads, and it reports its progress as
JSON lines on stdout. A newer request (an edit, a rollback) cancels an older training. The child writes
the model under a temporary name and renames it into place when the model and its cross-fit are
complete, so a crash or a kill at any moment leaves either nothing or a whole model: `on_ready` is called
only with a complete one, and the next start finds it in the cache.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from bot.config import Settings

log = logging.getLogger(__name__)

TrainingState = Literal["idle", "running", "ready", "failed", "cancelled"]
CHILD_PRIORITY = 10  # nice value of the training child: serving threads always run first
CANCEL_GRACE_SECONDS = 5.0  # SIGTERM, then SIGKILL
MIN_PROGRESS_FOR_ETA = 0.03  # below this the child's own estimate stands


@dataclass(frozen=True)
class TrainingStatus:
    """What the background training is doing, as `/readyz` and the pages show it."""

    state: TrainingState = "idle"
    intents_version: str | None = None
    model: str | None = None  # where the model goes (is, once ready)
    phase: str = ""
    progress: float = 0.0  # 0..1 of the whole job (the model and its cross-fit)
    started_at: float | None = None  # time.time()
    seconds: float = 0.0  # running for, or took
    eta_seconds: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class TrainingRequest:
    """A folder version to train: its settings (intents_dir, cache, threads) and where the model goes."""

    settings: Settings
    target: Path
    intents_version: str
    estimate_seconds: float | None = None  # before the child reports, from the folder's size


def child_command(request: TrainingRequest) -> list[str]:
    settings = request.settings
    return [
        sys.executable,
        "-m",
        "bot.tuning.self_training",
        str(settings.intents_dir),
        settings.model,
        str(settings.cache_dir),
        str(settings.training_threads),
        "--progress-json",
        "--nice",
        str(CHILD_PRIORITY),
        "--parent",
        str(os.getpid()),
        "--into",
        str(request.target),
        *(["--export", settings.encoder_backend] if settings.encoder_backend != "torch" else []),
    ]


class TrainingJob:
    """One child process training one folder version; `on_exit(job)` runs on its watcher thread."""

    def __init__(self, request: TrainingRequest, on_exit: Callable[[TrainingJob], None]) -> None:
        self.request = request
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._cancelled = False
        self._stderr: deque[str] = deque(maxlen=20)  # the child's last lines, for a failure's message
        self._status = TrainingStatus(
            state="running",
            intents_version=request.intents_version,
            model=str(request.target),
            phase="starting",
            started_at=time.time(),
            eta_seconds=request.estimate_seconds,
        )
        self._process: subprocess.Popen[str] | None = None
        self._watcher = threading.Thread(target=self._watch, name="training-watcher", daemon=True)

    def start(self) -> TrainingJob:
        log.info(
            "training the folder's model in the background (intents %s) into %s",
            self.request.intents_version,
            self.request.target,
        )
        self._process = subprocess.Popen(
            child_command(self.request),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._read_stderr, name="training-stderr", daemon=True).start()
        self._watcher.start()
        return self

    def status(self) -> TrainingStatus:
        with self._lock:
            status = self._status
        if status.state == "running" and status.started_at is not None:
            elapsed = time.time() - status.started_at
            eta = status.eta_seconds
            if status.progress >= MIN_PROGRESS_FOR_ETA:
                eta = elapsed * (1 - status.progress) / status.progress
            elif eta is not None:
                eta = max(0.0, eta - elapsed)
            status = replace(status, seconds=elapsed, eta_seconds=eta)
        return status

    def cancel(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL); what it wrote stays under its temporary name."""
        with self._lock:
            self._cancelled = True
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(CANCEL_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the job ended (its `on_exit` ran) within `timeout`."""
        self._watcher.join(timeout)
        return not self._watcher.is_alive()

    def _read_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        for line in self._process.stderr:
            line = line.rstrip()
            if line:
                self._stderr.append(line)
                log.debug("training child: %s", line)

    def _watch(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self._progress(line)
        code = self._process.wait()
        with self._lock:
            started = self._status.started_at or time.time()
            took = time.time() - started
            if self._cancelled:
                self._status = replace(self._status, state="cancelled", seconds=took, eta_seconds=None)
            elif code == 0 and (self.request.target / "self_training.json").is_file():
                self._status = replace(
                    self._status, state="ready", progress=1.0, phase="done", seconds=took, eta_seconds=None
                )
            else:
                last = " | ".join(list(self._stderr)[-3:]) or "no output"
                self._status = replace(
                    self._status,
                    state="failed",
                    seconds=took,
                    eta_seconds=None,
                    error=f"exit {code}: {last}"[:1000],
                )
        state = self._status.state
        (log.warning if state == "failed" else log.info)(
            "background training of intents %s %s after %.0f s%s",
            self.request.intents_version,
            state,
            took,
            f" ({self._status.error})" if self._status.error else "",
        )
        self._on_exit(self)

    def _progress(self, line: str) -> None:
        """One JSON line of the child: {"phase", "progress", "eta_seconds"?}; anything else is logged."""
        try:
            event = json.loads(line)
            phase, progress = str(event["phase"]), float(event["progress"])
        except (ValueError, KeyError, TypeError):
            log.debug("training child said: %s", line.rstrip())
            return
        with self._lock:
            eta = event.get("eta_seconds", self._status.eta_seconds)
            self._status = replace(
                self._status,
                phase=phase,
                progress=min(1.0, max(0.0, progress)),
                eta_seconds=float(eta) if isinstance(eta, int | float) else self._status.eta_seconds,
            )


class BackgroundTrainer:
    """At most one training at a time; a request for another folder version cancels the running one.
    `on_end(request, status)` is told how the running training ended (ready or failed), on its thread."""

    def __init__(self, on_end: Callable[[TrainingRequest, TrainingStatus], None]) -> None:
        self._on_end = on_end
        self._lock = threading.Lock()
        self._job: TrainingJob | None = None
        self._last: TrainingStatus = TrainingStatus()
        self._closed = False

    def request(self, request: TrainingRequest) -> None:
        """Train `request` unless that very training is running; any other training is cancelled."""
        with self._lock:
            if self._closed:
                return
            running = self._job
            if running is not None and running.request.target == request.target:
                return
            self._job = None
        if running is not None:
            log.info(
                "cancelling the training of intents %s: intents %s replace it",
                running.request.intents_version,
                request.intents_version,
            )
            running.cancel()
            running.wait(30)
        job = TrainingJob(request, self._exited)
        with self._lock:
            if self._closed or self._job is not None:
                return
            self._job = job
        job.start()

    def training(self, target: Path) -> bool:
        """Whether the running training writes `target`."""
        with self._lock:
            job = self._job
        return job is not None and job.request.target == target

    def cancel(self) -> None:
        """Stop the running training, if any (a folder that needs none is live now)."""
        with self._lock:
            running, self._job = self._job, None
        if running is not None:
            running.cancel()
            running.wait(30)
            self._last = running.status()

    def status(self) -> TrainingStatus:
        with self._lock:
            job = self._job
        return job.status() if job is not None else self._last

    def close(self) -> None:
        """At shutdown: cancel and wait; a later request does nothing."""
        with self._lock:
            self._closed = True
        self.cancel()

    def _exited(self, job: TrainingJob) -> None:
        status = job.status()
        with self._lock:
            current = self._job is job
            if current:
                self._job = None
                self._last = status
        if current:
            try:
                self._on_end(job.request, status)
            except Exception:  # a ready model stays in the cache: the next start or reload uses it
                log.exception("after the training of intents %s: %s", status.intents_version, status.state)
