"""The ONNX Runtime backends (fp32, per-row int8): tokenise, run the exported graph, mean-pool, normalise.

At run time only onnxruntime, the fast tokenizer and numpy are used; the graph is exported once from the
local sentence-transformers folder (`onnx_files`), and pooling and L2 normalisation are done here, as
the model's own pooling config prescribes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bot.errors import ModelError
from bot.routing.encoders import backend_model_id
from bot.routing.encoders.model_folder import max_length, pooling_mode
from bot.routing.encoders.onnx_files import export_onnx, onnx_folder
from bot.routing.encoders.repeat_cache import RepeatCache

# int8 scales activations per token row, so a text's vector does not depend on what else shares its
# group and both backends run length-sorted groups of this size (docs/evaluation.md, "Per-row int8")
GROUP_SIZE = 16


class OnnxEncoder:
    """Sentence vectors from an ONNX export of a mean-pooling sentence-transformers model."""

    def __init__(
        self,
        model_path: Path,
        base_model_id: str,
        cache_dir: Path,
        *,
        quantized: bool,
        threads: int,
        repeat_cache: int = 0,
    ) -> None:
        if pooling_mode(model_path) != "mean":
            raise ModelError(
                f"the ONNX backends support mean-pooling models only; '{model_path}' pools otherwise"
            )
        import onnxruntime as ort
        from tokenizers import Tokenizer

        tokenizer_file = model_path / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise ModelError(f"'{model_path}' has no tokenizer.json, which the ONNX backends need")
        onnx_file = export_onnx(model_path, onnx_folder(cache_dir, base_model_id), quantized=quantized)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.enable_truncation(max_length(model_path))
        self._tokenizer.no_padding()  # tokenizer.json may pad every text to 128: groups are padded here
        self._pad_id = self._tokenizer.token_to_id("[PAD]") or 0
        self._model_id = backend_model_id(base_model_id, "onnx-int8" if quantized else "onnx")
        self._group_size = GROUP_SIZE
        self._repeats = RepeatCache(repeat_cache)
        self._dim = int(self.encode(["x"]).shape[1])

    @property
    def model_id(self) -> str:
        """The base model's id plus the backend, so cached vectors of different backends never mix."""
        return self._model_id

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return self._dim

    @property
    def repeats(self) -> RepeatCache:
        """The cache of recent texts' vectors (hits and misses for /healthz and benchmarks)."""
        return self._repeats

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, getattr(self, "_dim", 0)), dtype=np.float32)
        encoded = self._tokenizer.encode_batch(list(texts))
        # The cache is keyed by token ids, the model's own normalisation: "Thanks!" and " thanks !" are
        # one entry exactly when the model could not tell them apart, so a hit returns the vector the
        # model computes for that text alone, up to float rounding (int8 scales each token row on its
        # own, so a vector never depends on the texts that shared its group).
        keys = [bytes(np.asarray(e.ids, dtype=np.int32)) for e in encoded] if self._repeats.size else []
        found = self._repeats.get_many(keys) if keys else {}
        todo = [i for i in range(len(encoded)) if i not in found]
        out = np.empty((len(encoded), getattr(self, "_dim", 0) or 0), dtype=np.float32) if found else None
        if todo:
            computed = self._run([encoded[i].ids for i in todo])
            if out is None:
                out = computed
            else:
                out[todo] = computed
            if keys:
                self._repeats.put_many([keys[i] for i in todo], computed)
        assert out is not None
        for i, vector in found.items():
            out[i] = vector
        return out

    def _run(self, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        """Vectors for tokenised texts through the ONNX session, in length-sorted groups."""
        parts: list[np.ndarray] = []
        positions: list[int] = []
        for group in length_groups([len(ids) for ids in token_ids], most=self._group_size):
            width = max(len(token_ids[i]) for i in group)
            ids = np.full((len(group), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(group), width), dtype=np.int64)
            for row, i in enumerate(group):
                ids[row, : len(token_ids[i])] = token_ids[i]
                mask[row, : len(token_ids[i])] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            parts.append(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
            positions.extend(group)
        vectors = np.concatenate(parts).astype(np.float32, copy=False)
        ordered = np.empty_like(vectors)
        ordered[positions] = vectors  # back to the order of the input
        return ordered


def length_groups(lengths: Sequence[int], *, most: int = 16, slack: float = 1.25) -> list[list[int]]:
    """Positions grouped by similar token length, each group to be run as one padded batch.

    Padding a batch to its longest text costs as much as real tokens: a batch of 32 chat messages of
    mixed length takes twice the CPU per message of single messages. Sorted groups whose longest text
    is at most `slack` times (plus two tokens) the shortest keep the waste small (measured: 1.3 ms
    instead of 2.9 ms per message, int8 MiniLM, 2-core CPU).
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    groups: list[list[int]] = []
    for position in order:
        if groups and len(groups[-1]) < most and lengths[position] <= lengths[groups[-1][0]] * slack + 2:
            groups[-1].append(position)
        else:
            groups.append([position])
    return groups
