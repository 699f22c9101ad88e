"""ONNX Runtime encoder (fp32 or int8): exported once from the local sentence-transformers folder, cached.

The export runs the model's transformer through `torch.onnx.export` and, for int8, ONNX Runtime's
dynamic quantisation; at run time only onnxruntime, the fast tokenizer and numpy are used: mean pooling
and L2 normalisation are done here, as the model's own pooling config prescribes.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from filelock import FileLock

from bot.errors import ModelError

log = logging.getLogger(__name__)
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_export_lock = threading.Lock()


def _pooling_mode(model_path: Path) -> str:
    """The model's pooling ('mean' is what we implement), from its sentence-transformers config."""
    for config in model_path.glob("*Pooling*/config.json"):
        settings = json.loads(config.read_text())
        # sentence-transformers 3 writes flags (`pooling_mode_mean_tokens: true`); 5 writes one name
        # (`pooling_mode: "mean"`), which is what a model saved by `bot train` here carries
        if settings.get("pooling_mode_mean_tokens") or settings.get("pooling_mode") == "mean":
            return "mean"
        return "other"
    return "mean"


def _max_length(model_path: Path) -> int:
    config = model_path / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length", 256))
    return 256


def export_onnx(model_path: Path, target: Path, *, quantized: bool) -> Path:
    """`target`'s model.onnx (or model_int8.onnx next to it), exported first if missing; returns its path.

    The export needs torch and transformers (several hundred MB once imported, never given back), so it
    runs in a child process: a server's first start then holds the same memory as a warm start.
    """
    file = target / ("model_int8.onnx" if quantized else "model.onnx")
    target.mkdir(parents=True, exist_ok=True)
    # A lock file, not only a thread lock: replicas starting together on an empty cache would otherwise
    # export at once, and the quantizer's own scratch files (model-inferred.onnx) are not per process
    with _export_lock, FileLock(str(target / ".export.lock")):
        if not file.is_file():
            log.warning("exporting %s to ONNX (once, about 20 s; cached in %s)", model_path, target)
            command = [sys.executable, "-m", __name__, str(model_path), str(target)]
            finished = subprocess.run(
                [*command, *(["--int8"] if quantized else [])],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
            )
            if finished.returncode != 0 or not file.is_file():
                tail = "\n".join(finished.stdout.strip().splitlines()[-5:])
                raise ModelError(f"exporting '{model_path}' to ONNX failed:\n{tail}")
    return file


def _export_here(model_path: Path, target: Path, *, quantized: bool) -> None:
    """The export itself (in the child process `export_onnx` starts)."""
    fp32 = target / "model.onnx"
    int8 = target / "model_int8.onnx"
    # a private partial file per process: two replicas starting at once must not write into one file
    suffix = f".onnx.partial-{os.getpid()}"
    if not fp32.is_file():
        import torch
        from transformers import AutoModel

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
        partial = fp32.with_suffix(suffix)
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

        partial = int8.with_suffix(suffix)
        # per-channel scales keep int8 vectors within ~0.98 cosine of fp32 (per-tensor: ~0.92)
        quantize_dynamic(str(fp32), str(partial), weight_type=QuantType.QInt8, per_channel=True)
        partial.replace(int8)


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
        # one entry exactly when the model could not tell them apart, so a hit returns the very vector
        # the model would have computed (int8 runs texts one at a time, so vectors never depend on company).
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


class RepeatCache:
    """A bounded least-recently-used map of token ids -> vector, shared by the routing threads.

    Real traffic repeats ("hi", "thanks", "talk to a human", the top questions); a repeat then costs a
    dictionary lookup instead of an encoder run. `size` 0 turns it off.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get_many(self, keys: Sequence[bytes]) -> dict[int, np.ndarray]:
        """Cached vectors by position in `keys`; each hit becomes the most recently used."""
        found: dict[int, np.ndarray] = {}
        with self._lock:
            for position, key in enumerate(keys):
                vector = self._entries.get(key)
                if vector is not None:
                    self._entries.move_to_end(key)
                    found[position] = vector
            self.hits += len(found)
            self.misses += len(keys) - len(found)
        return found

    def put_many(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Remember vectors (read-only copies), dropping the least recently used beyond `size`."""
        with self._lock:
            for key, vector in zip(keys, vectors, strict=True):
                stored = vector.copy()
                stored.flags.writeable = False  # callers share it: nobody may change a cached vector
                self._entries[key] = stored
                self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


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


if (
    __name__ == "__main__"
):  # the child process of `export_onnx`: python -m bot.routing.encoder_onnx MODEL DIR [--int8]
    import warnings

    warnings.filterwarnings("ignore")  # tracer and quantizer chatter: the parent reports failures itself
    _export_here(Path(sys.argv[1]), Path(sys.argv[2]), quantized="--int8" in sys.argv[3:])
