"""State metrics under `bot serve --workers N`: each worker writes its own, and any worker's scrape reads all.

In prometheus-client's multiprocess mode a scrape reaches one worker, which reads every worker's files in
`PROMETHEUS_MULTIPROC_DIR`; a worker's in-memory state (readiness, queues, the live model, the training)
is only in those files if the worker writes it there. `WorkerGauges` does, every `SAMPLE_SECONDS`, into
gauges in `liveall` mode: each value carries its worker's `pid`, so `max(bot_ready)`-style queries work
as with one process and `bot_ready == 0` names the worker that is not ready. A worker that stops cleanly
removes its gauges; one that died is noticed by the others (its pid is gone) and its gauges removed too.
Counters and histograms need none of this: prometheus-client sums them over every worker's files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import Gauge
from prometheus_client.multiprocess import mark_process_dead

from bot.runtime.metrics import (
    LIVE_HELP,
    MULTIPROC_ENV,
    PROGRESS_HELP,
    QUEUE_HELP,
    READY_HELP,
    TRAINING_HELP,
    TRAINING_STATES,
    SpoolDepth,
    sample_state,
)

if TYPE_CHECKING:
    from bot.runtime.runtime import Runtime

log = logging.getLogger(__name__)

SAMPLE_SECONDS = 2.0
DEAD_CHECK_EVERY = 15  # samples between looks for workers that died (30 s)
_GAUGE_FILE = re.compile(r"gauge_live\w*?_(\d+)\.db")


class WorkerGauges:
    """This worker's state written to its multiprocess gauge files, every SAMPLE_SECONDS (a thread)."""

    def __init__(self, runtime: Runtime, directory: Path) -> None:
        self.runtime = runtime
        self.directory = directory
        self.spool = SpoolDepth()
        self.ready = Gauge("bot_ready", READY_HELP, registry=None, multiprocess_mode="liveall")
        self.queues = Gauge(
            "bot_queue_depth", QUEUE_HELP, ["queue"], registry=None, multiprocess_mode="liveall"
        )
        self.live = Gauge(
            "bot_live_info",
            LIVE_HELP,
            ["model", "model_kind", "intents_version", "version_id"],
            registry=None,
            multiprocess_mode="liveall",
        )
        self.training = Gauge(
            "bot_training_state", TRAINING_HELP, ["state"], registry=None, multiprocess_mode="liveall"
        )
        self.progress = Gauge(
            "bot_training_progress", PROGRESS_HELP, registry=None, multiprocess_mode="liveall"
        )
        self._live_labels: tuple[str, ...] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-sampler", daemon=True)

    def start(self) -> WorkerGauges:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling and remove this worker's gauges (its counters stay in the sums)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            mark_process_dead(os.getpid(), str(self.directory))  # type: ignore[no-untyped-call]  # untyped upstream

    def _run(self) -> None:
        rounds = 0
        while not self._stop.wait(SAMPLE_SECONDS):
            try:
                self.sample()
                rounds += 1
                if rounds % DEAD_CHECK_EVERY == 0:
                    self.forget_dead_workers()
            except Exception as exc:  # metrics must never stop a worker; the next round tries again
                log.warning("sampling metrics failed: %s: %s", exc.__class__.__name__, exc)

    def sample(self) -> None:
        """Write the state now."""
        state = sample_state(self.runtime, self.spool)
        self.ready.set(float(state.ready))
        for name, pending in state.queues.items():
            self.queues.labels(name).set(pending)
        labels = tuple(state.live.values()) if state.live is not None else None
        if labels != self._live_labels:
            # a label set written to a file stays there: the one no longer live reads 0 (bot_live_info == 1
            # selects the live one; with one process the old set simply disappears)
            if self._live_labels is not None:
                self.live.labels(*self._live_labels).set(0)
            if labels is not None:
                self.live.labels(*labels).set(1)
            self._live_labels = labels
        for name in TRAINING_STATES:
            self.training.labels(name).set(float(name == state.training))
        self.progress.set(state.training_progress)

    def forget_dead_workers(self) -> None:
        """Remove the gauges of workers whose process is gone (uvicorn replaced a dead worker, say)."""
        pids = {int(m.group(1)) for f in os.listdir(self.directory) if (m := _GAUGE_FILE.fullmatch(f))}
        for pid in pids - {os.getpid()}:
            if not _alive(pid):
                with contextlib.suppress(OSError):  # another worker may remove them first
                    mark_process_dead(pid, str(self.directory))  # type: ignore[no-untyped-call]  # untyped upstream


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@contextlib.contextmanager
def multiprocess_folder() -> Iterator[None]:
    """`PROMETHEUS_MULTIPROC_DIR` for the workers `bot serve --workers N` starts: an empty temporary folder,
    removed when they have stopped (prometheus-client reads the variable when a worker imports it). A
    folder the operator set is used as it is: emptying it between runs is theirs to do."""
    if os.environ.get(MULTIPROC_ENV):
        yield
        return
    folder = tempfile.mkdtemp(prefix="bot-metrics-")
    os.environ[MULTIPROC_ENV] = folder  # inherited by the workers, which uvicorn spawns afterwards
    try:
        yield
    finally:
        del os.environ[MULTIPROC_ENV]
        shutil.rmtree(folder, ignore_errors=True)
