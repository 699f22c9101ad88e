"""Sentence encoders: the `Encoder` protocol and `make_encoder`, the factory a configuration goes through.

One module per job:

- `torch_backend`: sentence-transformers on torch (`BOT_ENCODER_BACKEND=torch`; training uses it too)
- `onnx_backend`: ONNX Runtime, fp32 or per-row int8 (`onnx`, `onnx-int8`): tokenise, run, pool
- `onnx_files`: where the ONNX exports live in `BOT_CACHE_DIR`, and having a child process make them
- `export`, `int8_graph`: build time only, in that child (`python -m bot.routing.encoders.export`):
  the torch export to ONNX and the int8 graph rewrite
- `embedding_cache`: vectors on disk by (model, text) and the encoder that reads them first
- `repeat_cache`: recent texts' vectors in memory, by token ids (the ONNX backends)
- `batching`: single texts from concurrent threads encoded as one batch
- `model_folder`: the model folder a `BOT_MODEL` names, its fingerprint and its configs

Only `torch_backend`, `export` and `bot.tuning.training` import torch (lazily, inside the functions that
need it). Vectors are L2-normalised float32, so an inner product is a cosine similarity.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from bot.errors import ModelError
from bot.routing.encoders.model_folder import model_fingerprint, resolve_model_path

BACKENDS = ("torch", "onnx", "onnx-int8")


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


class Wrapping:
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


def backend_model_id(base_model_id: str, backend: str) -> str:
    """The id a model has on a backend: the base id plus the backend, so cached vectors of different
    backends never mix ("int8r": per-row int8's own, so no cache serves per-tensor int8's vectors)."""
    return {"torch": base_model_id, "onnx": f"{base_model_id}+onnx"}.get(
        backend, f"{base_model_id}+onnx-int8r"
    )


def configured_model_id(model: str, backend: str) -> str:
    """The id `make_encoder(model, backend=...)` would report, without loading the model."""
    return backend_model_id(model_fingerprint(resolve_model_path(model)), backend)


def make_encoder(
    model: str, *, backend: str, threads: int, cache_dir: Path, repeat_cache: int = 0
) -> Encoder:
    """The encoder a configuration names: sentence-transformers on torch, or ONNX Runtime fp32 / int8."""
    if backend == "torch":
        from bot.routing.encoders.torch_backend import SentenceTransformerEncoder

        return SentenceTransformerEncoder(model, threads=threads)
    if backend in ("onnx", "onnx-int8"):
        from bot.routing.encoders.onnx_backend import OnnxEncoder

        path = resolve_model_path(model)
        return OnnxEncoder(
            path,
            model_fingerprint(path),
            cache_dir,
            quantized=backend == "onnx-int8",
            threads=threads,
            repeat_cache=repeat_cache,
        )
    raise ModelError(f"unknown encoder backend '{backend}'; allowed: {', '.join(BACKENDS)}")
