"""Encoder backends (ONNX fp32/int8 against sentence-transformers) and dynamic micro-batching."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from bot.errors import ModelError
from bot.routing.encoders import make_encoder
from bot.routing.encoders.batching import BatchingEncoder
from tests.conftest import FakeEncoder

TEXTS = [
    "my new card still hasn't come",
    "how do I top up by bank transfer?",
    "what exchange rate do you use",
    "hi",
]


@pytest.mark.parametrize(
    ("backend", "suffix", "floor"), [("onnx", "onnx", 0.9999), ("onnx-int8", "onnx-int8r", 0.99)]
)
def test_onnx_backends_match_sentence_transformers(
    backend: str, suffix: str, floor: float, bundled_encoder, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cache = tmp_path_factory.getbasetemp() / "onnx-cache"  # shared by both cases: fp32 is exported once
    encoder = make_encoder("bundled", backend=backend, threads=1, cache_dir=cache)
    # int8r: per-row int8, whose vectors must never share an embedding cache with the former per-tensor's
    assert encoder.model_id == f"{bundled_encoder.model_id}+{suffix}"
    vectors = encoder.encode(TEXTS)
    reference = bundled_encoder.encode(TEXTS)
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float((vectors * reference).sum(axis=1).min()) >= floor
    assert len(list(cache.rglob("*.onnx"))) >= 1 and not list(cache.rglob("*.partial"))


def test_unknown_backend_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown encoder backend 'tpu'; allowed: torch, onnx, onnx-int8"):
        make_encoder("bundled", backend="tpu", threads=1, cache_dir=tmp_path)


class SlowEncoder(FakeEncoder):
    """A fake that takes 20 ms a call and records batch sizes."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.calls.append(len(texts))
        time.sleep(0.02)
        return super().encode(texts)


def test_concurrent_requests_share_batches_and_get_their_own_vectors() -> None:
    inner = SlowEncoder()
    batcher = BatchingEncoder(inner, max_batch=8, max_wait_ms=5)
    texts = [f"message number {n}" for n in range(40)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        vectors = list(pool.map(lambda t: batcher.encode([t]), texts))
    expected = FakeEncoder().encode(texts)
    for got, want in zip(vectors, expected, strict=True):
        np.testing.assert_array_equal(got[0], want)
    assert sum(inner.calls) == 40 and max(inner.calls) <= 8
    assert len(inner.calls) < 40  # requests really were batched


def test_a_lone_request_is_not_held_back() -> None:
    inner = SlowEncoder()
    batcher = BatchingEncoder(inner, max_batch=32, max_wait_ms=500)
    started = time.perf_counter()
    batcher.encode(["alone"])
    assert time.perf_counter() - started < 0.4  # far below the 500 ms window: it did not wait to fill up
    assert inner.calls == [1]


def test_errors_reach_every_waiting_request() -> None:
    class Broken(FakeEncoder):
        def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
            raise RuntimeError("model exploded")

    batcher = BatchingEncoder(Broken(), max_batch=4, max_wait_ms=1)
    errors: list[str] = []

    def call() -> None:
        try:
            batcher.encode(["x"])
        except RuntimeError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert errors == ["model exploded"] * 6


def test_length_groups_keep_similar_lengths_together_and_cover_every_text() -> None:
    from bot.routing.encoders.onnx_backend import length_groups

    lengths = [12, 40, 11, 90, 13, 41, 12, 10]
    groups = length_groups(lengths, most=3)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert all(len(g) <= 3 for g in groups)
    for group in groups:  # padding waste stays bounded: longest at most 1.25 x shortest + 2 tokens
        spread = [lengths[i] for i in group]
        assert max(spread) <= min(spread) * 1.25 + 2
    assert [90] in [[lengths[i] for i in g] for g in groups]  # the long outlier pads nobody


def test_the_first_onnx_export_leaves_no_torch_in_the_serving_process(tmp_path: Path) -> None:
    """The export needs torch (hundreds of MB, never given back); a first start must end as lean as a warm
    one, so it runs in a child process."""
    import subprocess
    import sys

    probe = (
        "import sys; from pathlib import Path; from bot.routing.encoders import make_encoder; "
        f"e = make_encoder('bundled', backend='onnx-int8', threads=1, cache_dir=Path({str(tmp_path)!r})); "
        "e.encode(['hi']); print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    finished = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.strip().splitlines()[-1] == "[]"
    assert list(tmp_path.rglob("model_int8_rows.onnx")) and not list(tmp_path.rglob("*.partial*"))


def test_an_int8_vector_does_not_depend_on_what_else_is_in_its_batch(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """int8 scales activations per token row, so texts run in padded length-sorted groups yet each
    vector is the one computed alone (per-tensor dynamic int8 moved components by up to 0.04)."""
    encoder = make_encoder(
        "bundled", backend="onnx-int8", threads=1, cache_dir=tmp_path_factory.getbasetemp() / "onnx-cache"
    )
    texts = [
        *TEXTS,
        "I want to cancel a transfer I made yesterday",
        "why was my card payment declined at the shop?",
        "my PIN is blocked, what now",
        "CARD DECLINED!!! again??",
        "Can I get a refund for an item I bought with my card last week?",
        "is there a fee for topping up by card",
        "where can I use this card",
        "thanks",
    ]
    together = encoder.encode(texts)
    alone = np.concatenate([encoder.encode([text]) for text in texts])
    assert float(np.abs(together - alone).max()) < 1e-4


def test_repeated_texts_reuse_the_exact_vector_and_the_cache_stays_bounded(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    cache = tmp_path_factory.getbasetemp() / "onnx-cache"
    plain = make_encoder("bundled", backend="onnx-int8", threads=1, cache_dir=cache)
    cached = make_encoder("bundled", backend="onnx-int8", threads=1, cache_dir=cache, repeat_cache=2)
    repeats = cached.repeats  # type: ignore[attr-defined]
    first = cached.encode(["Thanks!", "talk to a human"])
    hits_before = repeats.hits
    # the same tokens (the model is uncased and splits punctuation): one entry, the very same vector
    again = cached.encode(["  thanks !", "my card is lost", "Talk to a HUMAN"])
    assert repeats.hits - hits_before == 2
    np.testing.assert_array_equal(again[0], first[0])
    np.testing.assert_array_equal(again[2], first[1])
    # a hit was computed in another group than this batch's: equal up to float rounding
    np.testing.assert_allclose(
        again, plain.encode(["  thanks !", "my card is lost", "Talk to a HUMAN"]), rtol=0, atol=1e-4
    )
    assert len(repeats._entries) == 2  # least recently used dropped beyond the bound
    with pytest.raises(ValueError):  # nobody can change a vector other requests will get
        again_cached = cached.encode(["my card is lost"])
        repeats.get_many([next(iter(repeats._entries))])[0][0] = 1.0
    assert again_cached.shape == (1, 384)


def test_healthz_shows_the_repeat_cache_of_the_onnx_backends(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from bot.api.admin import repeat_cache_out
    from bot.config import Settings
    from bot.routing.engine import Engine

    encoder = make_encoder(
        "bundled", backend="onnx-int8", threads=1, cache_dir=tmp_path_factory.getbasetemp() / "onnx-cache",
        repeat_cache=8,
    )  # fmt: skip
    engine = Engine(Settings(cache_dir=tmp_path, batch_max_size=1), encoder=encoder)
    before = repeat_cache_out(engine)
    assert before is not None and before.size == 8
    engine.direct_encoder.encode(["thanks a lot"])
    engine.direct_encoder.encode(["Thanks a lot"])
    after = repeat_cache_out(engine)
    assert after is not None and after.hits == before.hits + 1 and after.entries >= 1
    assert repeat_cache_out(Engine(Settings(cache_dir=tmp_path), encoder=FakeEncoder())) is None
