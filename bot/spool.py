"""A local append-only spool for chat writes made while the database is unreachable.

Each line is one JSON record with a unique `spool_id`. Draining renames the file first (atomic, so two
processes never drain the same lines), applies records in order, and keeps whatever failed for the next
round. Exactly-once is the applier's job: it records each `spool_id` in the same transaction as the rows.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

Record = dict[str, Any]


class Spool:
    """Append-only JSONL files under `folder`, one per process."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.path = folder / f"spool-{os.getpid()}.jsonl"
        self._lock = threading.Lock()

    def append(self, record: Record) -> None:
        """Write one record durably (flushed and fsynced) before the request is answered."""
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def pending(self) -> int:
        """Records waiting in this folder (all processes' files)."""
        total = 0
        for file in self.folder.glob("spool-*"):
            try:
                with file.open("rb") as handle:
                    total += sum(1 for _ in handle)
            except FileNotFoundError:  # drained by another process meanwhile
                continue
        return total

    def drain(self, apply: Callable[[Record], None]) -> int:
        """Apply every waiting record in order; stop at the first failure, keeping the rest. Returns applied."""
        applied = 0
        with self._lock:
            for file in sorted(self.folder.glob("spool-*.jsonl")):
                claimed = file.with_name(f"{file.stem}.draining-{os.getpid()}")
                try:
                    file.rename(claimed)
                except FileNotFoundError:
                    continue
                applied += self._apply_file(claimed, apply)
            for leftover in sorted(self.folder.glob(f"spool-*.draining-{os.getpid()}")):
                applied += self._apply_file(leftover, apply)
        return applied

    def _apply_file(self, file: Path, apply: Callable[[Record], None]) -> int:
        lines = [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
        for done, line in enumerate(lines):
            try:
                apply(json.loads(line))
            except Exception:
                # keep the unapplied tail where the next drain finds it, then let the caller see the error
                rest = "".join(f"{tail}\n" for tail in lines[done:])
                file.write_text(rest, encoding="utf-8")
                raise
        file.unlink()
        return len(lines)
