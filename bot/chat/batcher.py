"""Batch work on a dedicated thread for asyncio callers: each request awaits its own result.

The HTTP API uses two of these: one encodes and routes messages, one writes chat turns to the database.
Requests add an item and await; a worker thread takes the first waiting item plus whatever else is
queued (up to `max_batch`) and handles them in one call, so work grows in batches with load and a lone
request never waits for company. Results go back to the event loop with one wake-up per batch.

The queue is bounded: when `max_pending` items are queued or in progress, `submit` waits for room
(back-pressure) instead of dropping anything. `close` stops intake and returns once every accepted item
has been handled, so a shutdown flushes the queue.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

# A batch handler returns one result per item, in order; an exception in place of a result fails that
# item alone, an exception raised fails the whole batch.
Handler = Callable[[list[Item]], Sequence["Result | BaseException"]]


@dataclass
class _Job(Generic[Item, Result]):
    item: Item
    future: asyncio.Future[Result]


@dataclass
class BatcherStats:
    """What /healthz shows about a batcher."""

    pending: int  # accepted and not yet finished: queued plus the batch in progress
    capacity: int
    batches: int
    items: int
    largest_batch: int
    busy_seconds: float
    slowest_batch_ms: float


class ClosedError(RuntimeError):
    """The batcher is shutting down and accepts no new work."""


class AsyncBatcher(Generic[Item, Result]):
    """Runs `handler` on batches of submitted items in one worker thread; see the module docstring."""

    def __init__(
        self,
        name: str,
        handler: Handler[Item, Result],
        *,
        max_batch: int,
        max_pending: int,
        max_wait_ms: float = 0.0,
        threads: int = 1,
    ) -> None:
        if max_batch < 1 or max_pending < 1 or threads < 1:
            raise ValueError("max_batch, max_pending and threads must be at least 1")
        self.name = name
        self._handler = handler
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._max_wait = max_wait_ms / 1000
        self._queue: queue.SimpleQueue[_Job[Item, Result] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{n}" if threads > 1 else name, daemon=True)
            for n in range(threads)
        ]
        self._stats_lock = threading.Lock()
        self._room: asyncio.Semaphore | None = None  # created on the event loop that uses it
        self._loop: asyncio.AbstractEventLoop | None = None  # where results are handed out
        self._closed = False
        self._pending = 0
        self._batches = 0
        self._items = 0
        self._largest = 0
        self._busy = 0.0
        self._slowest = 0.0

    def start(self) -> None:
        """Start the worker threads (call from the event loop that will submit)."""
        self._room = asyncio.Semaphore(self._max_pending)
        self._loop = asyncio.get_running_loop()
        for thread in self._threads:
            thread.start()

    async def submit(self, item: Item) -> Result:
        """Queue `item`, waiting for room if the queue is full, and return its result."""
        if self._room is None:
            raise RuntimeError(f"{self.name} was not started")
        if self._closed:
            raise ClosedError(f"{self.name} is shutting down")
        await self._room.acquire()  # back-pressure: wait for room rather than drop work
        if self._closed:  # closed while this request waited: its job would land behind the stop marks
            self._room.release()
            raise ClosedError(f"{self.name} is shutting down")
        job: _Job[Item, Result] = _Job(item, asyncio.get_running_loop().create_future())
        self._pending += 1
        self._queue.put(job)
        # shield: a client that hangs up must not cancel work that is already queued (its row is written)
        return await asyncio.shield(job.future)

    def stats(self) -> BatcherStats:
        """Queue depth and totals so far."""
        return BatcherStats(
            pending=self._pending,
            capacity=self._max_pending,
            batches=self._batches,
            items=self._items,
            largest_batch=self._largest,
            busy_seconds=round(self._busy, 3),
            slowest_batch_ms=round(self._slowest * 1000, 1),
        )

    async def close(self) -> None:
        """Refuse new work, finish everything accepted, and stop the worker threads."""
        if self._closed:
            return
        self._closed = True
        running = [thread for thread in self._threads if thread.is_alive()]
        for _ in running:  # after every accepted job: FIFO, so they are all handled first
            self._queue.put(None)
        for thread in running:
            await asyncio.get_running_loop().run_in_executor(None, thread.join)
        await asyncio.sleep(0)  # let the last batch's results reach their awaiting requests

    # -- worker thread -----------------------------------------------------------------------------

    def _next_batch(
        self, first: _Job[Item, Result], under_load: bool
    ) -> tuple[list[_Job[Item, Result]], bool]:
        """`first` plus whatever is queued; returns the batch and whether shutdown was requested."""
        batch = [first]
        deadline = time.monotonic() + (self._max_wait if under_load else 0.0)
        while len(batch) < self._max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:  # only under load (the last batch had company) is waiting for more worth it
                    job = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if job is None:
                return batch, True
            batch.append(job)
        return batch, False

    def _work(self) -> None:
        under_load = False
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch, stopping = self._next_batch(first, under_load)
            under_load = len(batch) > 1
            started = time.perf_counter()
            try:
                results: Sequence[Result | BaseException] = self._handler([job.item for job in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"{self.name}: {len(results)} results for {len(batch)} items")
            except BaseException as exc:  # every waiting request learns what went wrong
                log.exception("%s: a batch of %d failed", self.name, len(batch))
                results = [exc] * len(batch)
            took = time.perf_counter() - started
            with self._stats_lock:
                self._busy += took
                self._slowest = max(self._slowest, took)
            self._deliver(batch, results)

    def _deliver(self, batch: list[_Job[Item, Result]], results: Sequence[Result | BaseException]) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._resolve, list(zip(batch, results, strict=True)))
        except RuntimeError:  # the loop is gone (process shutting down): nobody is waiting any more
            log.warning("%s: %d results had no event loop to go to", self.name, len(batch))

    def _resolve(self, outcomes: list[tuple[_Job[Item, Result], Result | BaseException]]) -> None:
        """On the event loop: hand results out and free room in the queue."""
        self._batches += 1
        self._items += len(outcomes)
        self._largest = max(self._largest, len(outcomes))
        for job, result in outcomes:
            self._pending -= 1
            if self._room is not None:
                self._room.release()
            if job.future.done():
                continue
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)
