"""A FAISS inner-product index over unit vectors, with the model id and content hash it was built for."""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np
from threadpoolctl import threadpool_limits


def limit_native_threads(threads: int) -> None:
    """Size the native thread pools: NumPy's OpenBLAS, and FAISS's own OpenMP and OpenBLAS.

    The indexes and matrices here are small: extra BLAS/OpenMP threads only spin-wait and fight the
    encoder and the web server for a small machine's cores. Measured on 2 cores under HTTP load with
    the default 2 threads per pool: 7.6 ms of server CPU per chat request; with 1: 3.5 ms.
    """
    faiss.omp_set_num_threads(threads)
    threadpool_limits(limits=threads)


limit_native_threads(1)


@dataclass(frozen=True)
class SearchResult:
    """Top hits per query: `scores[q, j]` is the cosine of hit `ids[q, j]` (-1 where there is none)."""

    scores: np.ndarray
    ids: np.ndarray


class VectorIndex:
    """Exact cosine search over unit vectors (FAISS `IndexFlatIP`)."""

    def __init__(self, vectors: np.ndarray, *, model_id: str, content_hash: str) -> None:
        if vectors.ndim != 2:
            raise ValueError("vectors must be a 2-D array")
        self.model_id = model_id
        self.content_hash = content_hash
        self._index: faiss.Index = faiss.IndexFlatIP(int(vectors.shape[1]))
        if len(vectors):
            self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    @property
    def size(self) -> int:
        """Number of vectors."""
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self._index.d)

    def vectors(self, ids: np.ndarray | None = None) -> np.ndarray:
        """The stored vectors (all, or those with the given ids), read back from FAISS."""
        every = self._index.reconstruct_n(0, self.size) if self.size else np.zeros((0, self.dim), np.float32)
        return every if ids is None else every[ids]

    def search(self, queries: np.ndarray, k: int) -> SearchResult:
        """The `k` nearest vectors of each query row (fewer if the index is smaller)."""
        k = max(1, min(k, self.size))
        if self.size == 0:
            empty = np.full((len(queries), 1), -1)
            return SearchResult(scores=np.full((len(queries), 1), -np.inf, dtype=np.float32), ids=empty)
        scores, ids = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return SearchResult(scores=scores, ids=ids)
