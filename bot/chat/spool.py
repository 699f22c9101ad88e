"""A local append-only spool for chat turns made while the database is unreachable.

One JSONL file per spool folder, shared by every process of the host (uvicorn workers): appends and
drains hold an exclusive `flock` on it, so no line is lost between a writer and a drainer and the order
of turns is kept. A drain applies lines in chunks and rewrites the file with whatever is left, so a
failure part-way keeps the rest for the next round. Exactly-once is the applier's job: it records each
record's `spool_id` in the same transaction as the rows (a crash between commit and rewrite then only
causes a harmless second look).

Only an error the caller calls retryable (the database is still down) stops a drain. Any other failure
belongs to one record (a line torn by a crash during an append, a row the database refuses): that line
moves to `rejected.jsonl` beside the spool, with the error, so one bad record never blocks the turns
behind it and is still there for a person to look at.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)
Record = dict[str, Any]
_CHUNK = 200  # records applied between rewrites: bounds the work redone after a crash


class Spool:
    """The folder's spool file."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.path = folder / "spool.jsonl"
        self.rejected_path = folder / "rejected.jsonl"
        self.path.touch(exist_ok=True)

    @contextmanager
    def _locked(self, mode: str, lock: int) -> Iterator[IO[Any]]:
        with self.path.open(mode, encoding=None if "b" in mode else "utf-8") as handle:
            fcntl.flock(handle, lock)
            try:
                yield handle
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def append(self, record: Record) -> None:
        """Write one record durably (flushed and fsynced) before the request is answered."""
        with self._locked("ab+", fcntl.LOCK_EX) as handle:
            _append_lines(handle, [json.dumps(record, ensure_ascii=False, separators=(",", ":"))])

    def pending(self) -> int:
        """Records waiting to be written."""
        with self._locked("r", fcntl.LOCK_SH) as handle:
            return sum(1 for line in handle if line.strip())

    def drain(
        self,
        apply: Callable[[Record], None],
        retryable: tuple[type[Exception], ...] | None = None,
    ) -> int:
        """Apply waiting records in order; returns how many applied.

        A `retryable` error (any error when None) keeps that record and the rest and is re-raised; any
        other error sets that one record aside in `rejected.jsonl` and the drain goes on.
        """
        applied = 0
        while True:
            with self._locked("r+", fcntl.LOCK_EX) as handle:
                lines = [line for line in handle.read().splitlines() if line.strip()]
                if not lines:
                    return applied
                done = 0  # lines dealt with: applied or set aside
                try:
                    for line in lines[:_CHUNK]:
                        applied += self._apply_line(line, apply, retryable)
                        done += 1
                finally:  # keep exactly the lines not dealt with yet
                    handle.seek(0)
                    handle.truncate()
                    handle.write("".join(f"{line}\n" for line in lines[done:]))
                    handle.flush()
                    os.fsync(handle.fileno())

    def rejected(self) -> int:
        """Records set aside because they could not be applied."""
        if not self.rejected_path.is_file():
            return 0
        with self.rejected_path.open(encoding="utf-8") as handle:
            return sum(1 for line in handle if line.strip())

    def requeue_rejected(self) -> tuple[int, int]:
        """Put set-aside records back at the end of the spool, for the next drain to try again (say, after
        a migration fixed what the database refused). Torn lines can never apply and stay set aside.
        Returns (requeued, still set aside)."""
        if not self.rejected_path.is_file():
            return 0, 0
        with self._locked("ab+", fcntl.LOCK_EX) as spool:  # appends and drains wait meanwhile
            entries = [line for line in self.rejected_path.read_text("utf-8").splitlines() if line.strip()]
            requeue: list[str] = []
            keep: list[str] = []
            for entry in entries:
                line = _record_line(entry)
                if line is None:
                    keep.append(entry)
                else:
                    requeue.append(line)
            if requeue:
                _append_lines(spool, requeue)
            temporary = self.rejected_path.with_suffix(".jsonl.tmp")
            temporary.write_text("".join(f"{entry}\n" for entry in keep), encoding="utf-8")
            os.replace(temporary, self.rejected_path)  # the set-aside file is never half written
        return len(requeue), len(keep)

    def _apply_line(
        self, line: str, apply: Callable[[Record], None], retryable: tuple[type[Exception], ...] | None
    ) -> bool:
        """True if applied, False if set aside."""
        try:
            apply(json.loads(line))
        except Exception as exc:
            if retryable is None or isinstance(exc, retryable):
                raise
            self._reject(line, exc)
            return False
        return True

    def _reject(self, line: str, error: Exception) -> None:
        """Move one record out of the way, durably, with the reason (the spool's lock is held)."""
        entry = {
            "rejected_at": time.time(),
            "error": f"{error.__class__.__name__}: {error}"[:1000],
            "line": line,
        }
        with self.rejected_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        log.error("spooled record set aside in %s: %s", self.rejected_path, entry["error"])


def _record_line(entry: str) -> str | None:
    """The spool line inside one `rejected.jsonl` entry, if it is a whole JSON record."""
    try:
        line = json.loads(entry)["line"]
        json.loads(line)
    except (ValueError, KeyError, TypeError):
        return None
    return line if isinstance(line, str) else None


def _append_lines(handle: IO[bytes], lines: list[str]) -> None:
    """Append whole lines durably (flushed and fsynced) to a spool file opened "ab+" under its lock."""
    text = "".join(f"{line}\n" for line in lines)
    if handle.seek(0, os.SEEK_END) > 0:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) != b"\n":  # a crash tore the last append: keep these records off that line
            text = "\n" + text
    handle.write(text.encode("utf-8"))
    handle.flush()
    os.fsync(handle.fileno())
