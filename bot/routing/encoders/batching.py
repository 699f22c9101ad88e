"""Dynamic micro-batching: single texts from concurrent threads encoded as one batch."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future

import numpy as np

from bot.routing.encoders import Encoder, Wrapping


class BatchingEncoder(Wrapping):
    """Dynamic micro-batching: single-text requests from concurrent threads are encoded as one batch.

    A worker thread takes the first waiting text, adds whatever else is already queued, and waits up to
    `max_wait_ms` for more only while other requests are in flight, so a lone request is never delayed
    and throughput grows with load. Calls with several texts go straight to the wrapped encoder.
    """

    def __init__(self, inner: Encoder, *, max_batch: int = 32, max_wait_ms: float = 2.0) -> None:
        self.inner = inner
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self._queue: queue.SimpleQueue[tuple[str, Future[np.ndarray]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._in_flight = 0
        threading.Thread(target=self._work, name="encoder-batcher", daemon=True).start()

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Vectors for `texts`; one text waits for its place in the next batch."""
        if len(texts) != 1:
            return self.inner.encode(texts, progress=progress)
        future: Future[np.ndarray] = Future()
        with self._lock:
            self._in_flight += 1
        try:
            self._queue.put((texts[0], future))
            return future.result()[None, :]
        finally:
            with self._lock:
                self._in_flight -= 1

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            try:
                vectors = self.inner.encode([text for text, _ in batch])
            except BaseException as exc:  # every waiting request learns what went wrong
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), vector in zip(batch, vectors, strict=True):
                future.set_result(vector)

    def _next_batch(self) -> list[tuple[str, Future[np.ndarray]]]:
        """The first waiting text, what is queued already, and more only while others are in flight."""
        batch = [self._queue.get()]
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._in_flight <= len(batch):
                break
            try:
                batch.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                break
        return batch
