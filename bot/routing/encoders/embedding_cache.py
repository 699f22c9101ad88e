"""Vectors on disk keyed by (model id, text), and the encoder that looks there before embedding."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from bot.routing.encoders import Encoder, Wrapping


class EmbeddingCache:
    """Vectors on disk keyed by (model id, text), so restarts and reloads embed only new texts."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS embeddings ("
            " model TEXT NOT NULL, key BLOB NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, key))"
        )

    @staticmethod
    def _key(text: str) -> bytes:
        return hashlib.sha256(text.encode("utf-8")).digest()

    def get_many(self, model_id: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors for those texts that have one."""
        found: dict[str, np.ndarray] = {}
        by_key = {self._key(t): t for t in texts}
        keys = list(by_key)
        with self._lock:
            for chunk in _chunks(keys, 500):
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, vector FROM embeddings WHERE model = ? AND key IN ({marks})",
                    (model_id, *chunk),
                ).fetchall()
                for key, blob in rows:
                    found[by_key[key]] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, model_id: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors for texts (one transaction)."""
        rows = [
            (model_id, self._key(t), v.astype(np.float32).tobytes())
            for t, v in zip(texts, vectors, strict=True)
        ]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except sqlite3.Error:
                self._db.execute(
                    "ROLLBACK"
                )  # leave the connection usable; the texts are embedded again later
                raise

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()


def _chunks(items: list[bytes], size: int) -> Iterator[list[bytes]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class CachedEncoder(Wrapping):
    """An encoder that looks texts up in an `EmbeddingCache` first and stores what it had to embed."""

    def __init__(self, encoder: Encoder, cache: EmbeddingCache | None) -> None:
        self.inner = encoder
        self.cache = cache
        self.last_misses = 0  # how many texts the last call had to embed (reload reports it)

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Vectors for `texts`, embedding only those not cached, with a progress bar on stderr if asked."""
        unique = list(dict.fromkeys(texts))
        known = self.cache.get_many(self.model_id, unique) if self.cache is not None else {}
        missing = [t for t in unique if t not in known]
        self.last_misses = len(missing)
        if missing:
            vectors = self.inner.encode(missing, progress=progress)
            if self.cache is not None:
                self.cache.put_many(self.model_id, missing, vectors)
            known.update(zip(missing, vectors, strict=True))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([known[t] for t in texts]).astype(np.float32, copy=False)
