"""A self-trained model packed for other replicas: what the ONNX backends load, without the torch weights.

The archive holds the model folder's configs, tokenizer, cross-fit, marker and recorded fingerprint
(under `model/`) and the backend's ONNX graph (under `onnx/`): tens of MB instead of the hundred the
fp32 weights would add. Unpacking writes the graph first, then the folder under a temporary name renamed
into place, so a reader never sees a model without its graph; members are read through tarfile's `data`
filter and only known names are written.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path

from bot.routing.encoders.model_folder import FINGERPRINT_FILE
from bot.routing.encoders.onnx_files import FP32_FILE, INT8_FILE, onnx_folder

WEIGHTS = frozenset({"model.safetensors", "pytorch_model.bin"})  # torch's; the ONNX graph replaces them
MAX_ARCHIVE_BYTES = 512 * 1024 * 1024  # far above a MiniLM-sized model; bounds what a bad row can cost


def graph_file(backend: str) -> str:
    return INT8_FILE if backend == "onnx-int8" else FP32_FILE


def pack(model: Path, cache_dir: Path, backend: str) -> tuple[bytes, str]:
    """The archive of `model` (a complete self-trained folder with its ONNX export) and its fingerprint."""
    fingerprint = (model / FINGERPRINT_FILE).read_text(encoding="utf-8").strip()
    graph = onnx_folder(cache_dir, fingerprint) / graph_file(backend)
    if not graph.is_file():
        raise FileNotFoundError(f"{graph} (the model's {backend} export) is missing")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as archive:  # the graph barely shrinks
        for file in sorted(p for p in model.rglob("*") if p.is_file() and p.name not in WEIGHTS):
            archive.add(file, arcname=f"model/{file.relative_to(model).as_posix()}")
        archive.add(graph, arcname=f"onnx/{graph.name}")
    return buffer.getvalue(), fingerprint


def unpack(archive: bytes, target: Path, cache_dir: Path, backend: str) -> Path:
    """Write the archived model to `target` (a folder under the cache's models/) and its graph to the
    cache's ONNX folder for its fingerprint; returns `target`."""
    if len(archive) > MAX_ARCHIVE_BYTES:
        raise ValueError(f"a stored model of {len(archive)} bytes is over the {MAX_ARCHIVE_BYTES} limit")
    work = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and _allowed(m.name, backend)]
            tar.extractall(work, members=members, filter="data")
        fingerprint = (work / "model" / FINGERPRINT_FILE).read_text(encoding="utf-8").strip()
        graph_dir = onnx_folder(cache_dir, fingerprint)
        graph_dir.mkdir(parents=True, exist_ok=True)
        graph = graph_dir / graph_file(backend)
        if not graph.is_file():
            staged = graph_dir / f".{graph.name}.{os.getpid()}"
            shutil.move(str(work / "onnx" / graph.name), staged)
            os.replace(staged, graph)
        if not target.exists():
            (work / "model").rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _allowed(name: str, backend: str) -> bool:
    parts = Path(name).parts
    if len(parts) < 2 or ".." in parts or Path(name).is_absolute():
        return False
    if parts[0] == "onnx":
        return len(parts) == 2 and parts[1] == graph_file(backend)
    return parts[0] == "model" and parts[-1] not in WEIGHTS
