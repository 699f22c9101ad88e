"""Shadow runs: a candidate intents version decides every live message too, off the request path.

The chat pipeline hands each stored turn (its decision id, text and conversation context) to `submit`,
which never waits: the queue is bounded and a full queue drops the shadow's copy (counted), because a
customer's reply must not wait for an experiment. One thread, at the lowest CPU priority, routes the
queued messages in batches with the same engine code as live (`Engine.route_batch` on the candidate
state, follow-up context included) and stores what it decided in `shadow_decision`, a table no customer
or agent endpoint reads. It works only while live routing and writing have nothing queued: its own
Python work would otherwise take GIL and CPU time from live requests (measured: -15% requests/s on a
saturated 2-core server). Under sustained saturation the shadow falls behind and drops (counted)
rather than slow customers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine as Database

from bot.routing.context import RouteContext
from bot.routing.engine import Engine
from bot.routing.state import RoutingState
from bot.store.db import session_scope
from bot.store.models import ShadowDecision, utcnow

log = logging.getLogger(__name__)

MAX_PENDING = 10_000
MAX_BATCH = 16  # small, so the shadow looks again at live traffic every few milliseconds
LOWEST_PRIORITY = 19  # nice value of the shadow thread: live routing threads always run first
IDLE_POLL = 0.002  # seconds between looks at whether live traffic has left the cores to the shadow
IDLE_POLLS = 3  # looks in a row with nothing live queued before the shadow takes a batch


@dataclass(frozen=True)
class _Job:
    decision_id: int
    text: str
    context: RouteContext


@dataclass
class ShadowStatus:
    """What a shadow run has done so far."""

    candidate: str
    version_id: int | None
    intents_version: str
    started_at: datetime
    decided: int = 0
    dropped: int = 0  # not shadowed: the queue was full
    failed: int = 0  # routed or stored with an error (logged)
    pending: int = 0
    running: bool = True
    errors: list[str] = field(default_factory=list)


class ShadowRun:
    """One candidate state shadowing live traffic on its own thread; `stop` finishes what is queued."""

    def __init__(
        self,
        engine: Engine,
        database: Database,
        state: RoutingState,
        *,
        candidate: str,
        version_id: int | None = None,
        max_pending: int = MAX_PENDING,
        max_batch: int = MAX_BATCH,
        live_busy: Callable[[], bool] | None = None,
    ) -> None:
        self.engine = engine
        self.database = database
        self.state = state
        self.max_batch = max_batch
        self.status = ShadowStatus(
            candidate=candidate, version_id=version_id, intents_version=state.version, started_at=utcnow()
        )
        self._queue: queue.Queue[_Job | None] = queue.Queue(max_pending)
        self._live_busy = live_busy  # True while live requests are queued for routing or writing
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="shadow-router", daemon=True)

    def start(self) -> ShadowRun:
        self._thread.start()
        return self

    def submit(self, decision_id: int, text: str, context: RouteContext) -> None:
        """Queue a live message for the shadow; never blocks (a full queue drops it, counted)."""
        try:
            self._queue.put_nowait(_Job(decision_id, text, context))
        except queue.Full:
            self.status.dropped += 1

    def stop(self, timeout: float = 30.0) -> None:
        """Route and store what is queued, then end the thread."""
        if not self._thread.is_alive():
            return
        self._stopping = True  # finish now, busy or not
        self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)
        self.status.running = False

    def snapshot(self) -> ShadowStatus:
        """The status with the queue's current depth."""
        self.status.pending = self._queue.qsize()
        return self.status

    def _work(self) -> None:
        with contextlib.suppress(OSError, AttributeError):  # Linux: a thread id names the thread alone
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            self._wait_for_idle_live()
            self._run(batch)
            if stop:
                return

    def _wait_for_idle_live(self) -> None:
        """Let live requests go first: wait while any is queued (what accumulates meanwhile makes the
        next batch larger, or is dropped when the queue is full)."""
        if self._live_busy is None:
            return
        idle = 0
        while not self._stopping and idle < IDLE_POLLS:  # a lull between two live batches is not idle
            idle = 0 if self._live_busy() else idle + 1
            time.sleep(IDLE_POLL)

    def _run(self, batch: list[_Job]) -> None:
        try:
            decisions = self.engine.route_batch(
                [j.text for j in batch], [j.context for j in batch], state=self.state
            )
            with session_scope(self.database) as session:
                session.add_all(
                    ShadowDecision(
                        decision_id=job.decision_id,
                        candidate=self.status.candidate[:300],
                        intents_version=decision.intents_version,
                        route=decision.route,
                        intent=decision.intent,
                        confidence=decision.confidence,
                        source=decision.source,
                        context_used=decision.context_used,
                    )
                    for job, decision in zip(batch, decisions, strict=True)
                )
            self.status.decided += len(batch)
        except Exception as exc:  # the database down or a bad message: live traffic is unaffected
            self.status.failed += len(batch)
            message = f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            self.status.errors = [*self.status.errors[-4:], message]
            log.warning("shadow run of %s lost %d decisions: %s", self.status.candidate, len(batch), message)
