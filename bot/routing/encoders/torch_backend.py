"""The torch backend: a sentence-transformers model on the CPU, loaded from a local folder only."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from bot.errors import ModelError
from bot.routing.encoders.model_folder import BUNDLED, model_fingerprint, resolve_model_path

_BATCH_SIZE = 64


def set_torch_threads(threads: int) -> None:
    """Bound torch's intra-op pool: on a small box torch, FAISS and BLAS pools otherwise fight."""
    import torch

    torch.set_num_threads(threads)


class SentenceTransformerEncoder:
    """A sentence-transformers model on the CPU, loaded from a local folder only.

    `local_files_only` keeps the load off the network, whatever the process's Hugging Face settings;
    the tokenizers' own thread pool is set once at process start (`bot.cli.main`), not here.
    """

    def __init__(self, model: str = BUNDLED, *, threads: int = 1) -> None:
        path = resolve_model_path(model)
        set_torch_threads(threads)
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        # "Loading weights" bars would clutter every start
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
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
