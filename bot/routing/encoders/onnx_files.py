"""Where the ONNX exports live in `BOT_CACHE_DIR`, and having them made once, in a child process.

The names are part of every install's cache: an upgraded install must find the files an earlier one
exported, so `onnx/<model id>/model.onnx` and `model_int8_rows.onnx` never change.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

from filelock import FileLock

from bot.errors import ModelError

log = logging.getLogger(__name__)
FP32_FILE = "model.onnx"
# per-row int8 has a name of its own, so a cache never serves a per-tensor export (docs/evaluation.md)
INT8_FILE = "model_int8_rows.onnx"
EXPORTER = "bot.routing.encoders.export"  # the child process's module (`python -m`)
_export_lock = threading.Lock()


def onnx_folder(cache_dir: Path, base_model_id: str) -> Path:
    """The folder in `cache_dir` holding the exports of the model `base_model_id` names."""
    return cache_dir / "onnx" / base_model_id.replace("/", "_").replace("@", "-")


def export_onnx(model_path: Path, target: Path, *, quantized: bool, in_process: bool = False) -> Path:
    """`target`'s model.onnx (or model_int8_rows.onnx next to it), exported first if missing; returns it.

    The export needs torch and transformers (several hundred MB once imported, never given back), so it
    runs in a child process: a server's first start then holds the same memory as a warm start.
    `in_process`: a process that has torch loaded already and ends soon (the self-training child) exports
    itself, sparing a second process the seconds of importing torch again.
    """
    file = target / (INT8_FILE if quantized else FP32_FILE)
    target.mkdir(parents=True, exist_ok=True)
    # A lock file, not only a thread lock: replicas starting together on an empty cache would otherwise
    # export at once (each writes a private partial file, but the work would be done twice)
    with _export_lock, FileLock(str(target / ".export.lock")):
        if not file.is_file():
            log.warning("exporting %s to ONNX (once, about 20 s; cached in %s)", model_path, target)
            if in_process:
                from bot.routing.encoders.export import export_here

                with warnings.catch_warnings():  # tracer and quantizer chatter, as in the child
                    warnings.simplefilter("ignore")
                    export_here(model_path, target, quantized=quantized)
                return file
            command = [sys.executable, "-m", EXPORTER, str(model_path), str(target)]
            finished = subprocess.run(
                [*command, *(["--int8"] if quantized else [])],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
                env={**os.environ, "HF_HUB_OFFLINE": "1"},  # the child's own: it reads a local folder only
            )
            if finished.returncode != 0 or not file.is_file():
                tail = "\n".join(finished.stdout.strip().splitlines()[-5:])
                raise ModelError(f"exporting '{model_path}' to ONNX failed:\n{tail}")
    return file
