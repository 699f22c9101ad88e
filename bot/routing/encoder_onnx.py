"""ONNX Runtime encoder (fp32 or int8): exported once from the local sentence-transformers folder, cached.

The export runs the model's transformer through `torch.onnx.export` and, for int8, ONNX Runtime's
dynamic quantisation; at run time only onnxruntime, the fast tokenizer and numpy are used: mean pooling
and L2 normalisation are done here, as the model's own pooling config prescribes.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bot.errors import ModelError

log = logging.getLogger(__name__)
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_export_lock = threading.Lock()


def _pooling_mode(model_path: Path) -> str:
    """The model's pooling ('mean' is what we implement), from its sentence-transformers config."""
    for config in model_path.glob("*Pooling*/config.json"):
        settings = json.loads(config.read_text())
        if settings.get("pooling_mode_mean_tokens"):
            return "mean"
        return "other"
    return "mean"


def _max_length(model_path: Path) -> int:
    config = model_path / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length", 256))
    return 256


def export_onnx(model_path: Path, target: Path, *, quantized: bool) -> Path:
    """Write `target` (model.onnx, or model_int8.onnx next to it) unless it exists; returns its path."""
    with _export_lock:
        fp32 = target / "model.onnx"
        int8 = target / "model_int8.onnx"
        if not fp32.is_file():
            import torch
            from transformers import AutoModel

            log.warning("exporting %s to ONNX (once; cached in %s)", model_path, target)
            target.mkdir(parents=True, exist_ok=True)
            base = AutoModel.from_pretrained(str(model_path), local_files_only=True).eval()

            class LastHiddenState(torch.nn.Module):
                def __init__(self, model: torch.nn.Module) -> None:
                    super().__init__()
                    self.model = model

                def forward(
                    self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
                ) -> torch.Tensor:
                    out = self.model(
                        input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                    )
                    return out.last_hidden_state

            dummy = torch.ones((2, 8), dtype=torch.long)
            partial = fp32.with_suffix(".onnx.partial")
            torch.onnx.export(
                LastHiddenState(base),
                (dummy, dummy, torch.zeros_like(dummy)),
                str(partial),
                input_names=list(INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")},
                opset_version=17,
                dynamo=False,
            )
            partial.replace(fp32)  # never leave a half-written model where the next start would load it
        if quantized and not int8.is_file():
            from onnxruntime.quantization import QuantType, quantize_dynamic

            partial = int8.with_suffix(".onnx.partial")
            # per-channel scales keep int8 vectors within ~0.98 cosine of fp32 (per-tensor: ~0.92)
            quantize_dynamic(str(fp32), str(partial), weight_type=QuantType.QInt8, per_channel=True)
            partial.replace(int8)
        return int8 if quantized else fp32


class OnnxEncoder:
    """Sentence vectors from an ONNX export of a mean-pooling sentence-transformers model."""

    def __init__(
        self, model_path: Path, base_model_id: str, cache_dir: Path, *, quantized: bool, threads: int
    ) -> None:
        if _pooling_mode(model_path) != "mean":
            raise ModelError(
                f"the ONNX backends support mean-pooling models only; '{model_path}' pools otherwise"
            )
        import onnxruntime as ort
        from tokenizers import Tokenizer

        tokenizer_file = model_path / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise ModelError(f"'{model_path}' has no tokenizer.json, which the ONNX backends need")
        folder = cache_dir / "onnx" / base_model_id.replace("/", "_").replace("@", "-")
        onnx_file = export_onnx(model_path, folder, quantized=quantized)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.enable_truncation(_max_length(model_path))
        self._tokenizer.no_padding()  # tokenizer.json may pad every text to 128: groups are padded here
        self._pad_id = self._tokenizer.token_to_id("[PAD]") or 0
        self._model_id = f"{base_model_id}+onnx{'-int8' if quantized else ''}"
        # Dynamic int8 quantisation scales activations per batch tensor, so a text's vector would
        # depend on what else shares its batch; int8 runs texts one at a time (measured: the same CPU
        # per message in-process, about 10% fewer HTTP requests/s from more GIL hand-offs) so a
        # decision never depends on concurrent traffic and replays exactly. fp32 does not depend on it.
        self._group_size = 1 if quantized else 16
        self._dim = int(self.encode(["x"]).shape[1])

    @property
    def model_id(self) -> str:
        """The base model's id plus the backend, so cached vectors of different backends never mix."""
        return self._model_id

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return self._dim

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, getattr(self, "_dim", 0)), dtype=np.float32)
        encoded = self._tokenizer.encode_batch(list(texts))
        parts: list[np.ndarray] = []
        positions: list[int] = []
        for group in length_groups([len(e.ids) for e in encoded], most=self._group_size):
            width = max(len(encoded[i].ids) for i in group)
            ids = np.full((len(group), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(group), width), dtype=np.int64)
            for row, i in enumerate(group):
                ids[row, : len(encoded[i].ids)] = encoded[i].ids
                mask[row, : len(encoded[i].ids)] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            parts.append(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
            positions.extend(group)
        vectors = np.concatenate(parts).astype(np.float32, copy=False)
        ordered = np.empty_like(vectors)
        ordered[positions] = vectors  # back to the order of `texts`
        return ordered


def length_groups(lengths: Sequence[int], *, most: int = 16, slack: float = 1.25) -> list[list[int]]:
    """Positions grouped by similar token length, each group to be run as one padded batch.

    Padding a batch to its longest text costs as much as real tokens: a batch of 32 chat messages of
    mixed length took twice the CPU per message of single messages. Sorted groups whose longest text
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
