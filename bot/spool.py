"""A local append-only spool for chat turns made while the database is unreachable.

One JSONL file per spool folder, shared by every process of the host (uvicorn workers): appends and
drains hold an exclusive `flock` on it, so no line is lost between a writer and a drainer and the order
of turns is kept. A drain applies lines in chunks and rewrites the file with whatever is left, so a
failure part-way keeps the rest for the next round. Exactly-once is the applier's job: it records each
record's `spool_id` in the same transaction as the rows (a crash between commit and rewrite then only
causes a harmless second look).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

Record = dict[str, Any]
_CHUNK = 200  # records applied between rewrites: bounds the work redone after a crash


class Spool:
    """The folder's spool file."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.path = folder / "spool.jsonl"
        self.path.touch(exist_ok=True)

    @contextmanager
    def _locked(self, mode: str, lock: int) -> Iterator[IO[str]]:
        with self.path.open(mode, encoding="utf-8") as handle:
            fcntl.flock(handle, lock)
            try:
                yield handle
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def append(self, record: Record) -> None:
        """Write one record durably (flushed and fsynced) before the request is answered."""
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._locked("a", fcntl.LOCK_EX) as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def pending(self) -> int:
        """Records waiting to be written."""
        with self._locked("r", fcntl.LOCK_SH) as handle:
            return sum(1 for line in handle if line.strip())

    def drain(self, apply: Callable[[Record], None]) -> int:
        """Apply waiting records in order; on a failure keep the rest and re-raise. Returns how many applied."""
        applied = 0
        while True:
            with self._locked("r+", fcntl.LOCK_EX) as handle:
                lines = [line for line in handle.read().splitlines() if line.strip()]
                if not lines:
                    return applied
                done = 0
                try:
                    for line in lines[:_CHUNK]:
                        apply(json.loads(line))
                        done += 1
                finally:  # keep exactly the lines not applied yet
                    handle.seek(0)
                    handle.truncate()
                    handle.write("".join(f"{line}\n" for line in lines[done:]))
                    handle.flush()
                    os.fsync(handle.fileno())
                applied += done
