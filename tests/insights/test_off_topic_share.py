"""The off-topic share estimate (#31 item 3) on synthetic traffic with a known share."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from bot.insights.off_topic_share import (
    MAX_MESSAGES,
    MIN_MESSAGES,
    Reference,
    advice,
    estimate_share,
    fit_weight,
    is_off,
    reviewed_share,
    suggested,
)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def traffic(share: float, n: int, seed: int, *, spread: float = 1.0) -> np.ndarray:
    """`n` confidences, `share` of them off-topic: logit N(2, spread) in scope, N(-1, spread) off-topic."""
    rng = np.random.default_rng(seed)
    off = round(share * n)
    mixed = np.concatenate([sigmoid(rng.normal(2, spread, n - off)), sigmoid(rng.normal(-1, spread, off))])
    rng.shuffle(mixed)
    return mixed


REFERENCE = Reference(traffic(0.0, 300, 1), traffic(1.0, 300, 2))


@pytest.mark.parametrize("share", [0.1, 0.3])
def test_a_known_share_is_recovered_within_5_points(share: float) -> None:
    found = estimate_share(traffic(share, 2000, 7), REFERENCE)
    assert found.enough and found.method == "reference"
    assert found.share is not None and found.low is not None and found.high is not None
    assert abs(found.share - share) < 0.05
    assert found.low <= found.share <= found.high
    assert found.low - 0.02 <= share <= found.high + 0.02


@pytest.mark.parametrize("share", [0.1, 0.3])
def test_without_a_reference_a_free_mixture_finds_well_separated_traffic(share: float) -> None:
    found = estimate_share(traffic(share, 2000, 3, spread=0.6), None)
    assert found.method == "mixture" and found.share is not None
    assert abs(found.share - share) < 0.05


def test_too_few_messages_say_not_enough_traffic_yet() -> None:
    found = estimate_share(traffic(0.2, MIN_MESSAGES - 1, 4), REFERENCE)
    assert not found.enough and found.share is None
    assert advice(found, 0.03) == (
        f"not enough traffic yet to estimate the off-topic share: {MIN_MESSAGES - 1} messages, at least "
        f"{MIN_MESSAGES} needed; the operating point assumes 3%"
    )


def test_the_advice_says_when_the_configured_share_is_off() -> None:
    found = estimate_share(traffic(0.3, 2000, 5), REFERENCE)
    assert is_off(found, 0.03) and not is_off(found, 0.3)
    assert advice(found, 0.03).startswith(f"traffic looks about {found.share:.0%} off-topic (")
    assert advice(found, 0.03).endswith(
        f"the operating point assumes 3%: refit at {suggested(found):.2f} so its promise holds for this traffic"
    )
    assert advice(found, 0.3).endswith("the operating point assumes 30%, which fits")


def test_reviewed_share_has_a_wilson_interval() -> None:
    found = reviewed_share(15, 100)
    assert found.share == 0.15 and found.low is not None and found.high is not None
    assert 0.09 < found.low < 0.15 < found.high < 0.23
    assert reviewed_share(0, 0).share is None


def test_a_full_window_is_estimated_in_bounded_memory() -> None:
    """GET /v1/stats estimates on every call: the bootstrap reads binned counts, not a (resamples x
    messages) matrix (which peaked at 192 MB for a full window)."""
    confidences = traffic(0.2, MAX_MESSAGES, 8)
    tracemalloc.start()
    try:
        found = estimate_share(confidences, REFERENCE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found.share is not None and abs(found.share - 0.2) < 0.02
    assert peak < 20_000_000, f"peak {peak / 1e6:.0f} MB"


def test_weights_count_points_as_repeated() -> None:
    """A point of weight k fits like k copies of it: what lets bins stand for their messages."""
    f_in, f_out = np.array([0.9, 0.5, 0.1]), np.array([0.1, 0.4, 0.8])
    repeated = fit_weight(np.repeat(f_in, [3, 1, 2]), np.repeat(f_out, [3, 1, 2]))
    weighted = fit_weight(f_in, f_out, np.array([[3, 1, 2], [1, 1, 1]]))
    assert weighted[0] == pytest.approx(repeated[0], abs=1e-6)
    assert weighted[1] == pytest.approx(fit_weight(f_in, f_out)[0], abs=1e-6)
