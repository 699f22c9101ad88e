"""Which questions a draft keeps as examples (bot/insights/bootstrap_examples.py), and how near each question
is to another draft (`runner_up`): synthetic vectors, no encoder."""

from __future__ import annotations

import numpy as np
import pytest

from bot.insights import bootstrap
from bot.insights.bootstrap import runner_up
from bot.insights.bootstrap_examples import pick_examples


def ring(n: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` unit vectors drifting away from the first, most central first."""
    angles = np.linspace(0.0, 3.0, n)  # 40 of them: a near-copy (> 0.95) is within 4 steps
    vectors = np.stack([np.cos(angles), np.sin(angles), np.zeros(n)], axis=1).astype(np.float32)
    order = np.arange(n)
    return order, vectors


def test_central_takes_the_closest_questions_skipping_near_copies() -> None:
    order, vectors = ring(40)
    taken = pick_examples(order, np.ones(40), vectors, 3, "central", np.zeros(40))
    assert taken == [0, 5, 10]  # the central end of the draft, one near-copy apart


def test_spread_takes_the_centre_then_quantiles_of_the_messages() -> None:
    order, vectors = ring(40)
    weights = np.ones(40)
    assert pick_examples(order, weights, vectors, 4, "spread", np.zeros(40)) == [0, 10, 20, 30]
    assert pick_examples(order, weights, vectors, 3, "spread", np.zeros(40)) == [0, 14, 27]
    # repeats count: asked 37 times of 76 messages, the first third is that question (the next distinct
    # one is taken instead), and two thirds are reached at question 15
    weights[0] = 37
    assert pick_examples(order, weights, vectors, 3, "spread", np.zeros(40)) == [0, 5, 15]


def test_boundary_adds_the_questions_nearest_another_draft() -> None:
    order, vectors = ring(40)
    lead = np.linspace(1.0, 0.1, 40)
    lead[7] = -0.2  # question 7 is nearer another draft than its own centre
    taken = pick_examples(order, np.ones(40), vectors, 3, "boundary", lead)
    assert taken[0] == 0 and 7 in taken and 20 in taken  # the centre, the middle, the border


def test_fewer_distinct_questions_than_wanted_gives_them_all() -> None:
    vectors = np.tile(np.array([[1.0, 0.0, 0.0]], dtype=np.float32), (5, 1))
    assert pick_examples(np.arange(5), np.ones(5), vectors, 3, "spread", np.zeros(5)) == [0]


def test_an_unknown_picker_is_named() -> None:
    order, vectors = ring(5)
    with pytest.raises(ValueError, match="example picker 'middle': use one of central, spread"):
        pick_examples(order, np.ones(5), vectors, 3, "middle", np.zeros(5))


def test_runner_up_is_the_nearest_other_centroid(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(30, 6)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    centroids = vectors[:4]
    owner = np.where(np.arange(30) % 5 == 0, -1, np.arange(30) % 4)
    scores = vectors @ centroids.T
    expected = np.where(
        owner >= 0, np.where(np.eye(4, dtype=bool)[owner.clip(0)], -np.inf, scores).max(1), scores.max(1)
    )
    assert np.allclose(runner_up(vectors, centroids, owner), expected)
    monkeypatch.setattr(bootstrap, "CHUNK", 7)
    assert np.allclose(runner_up(vectors, centroids, owner), expected)
    assert (runner_up(vectors, centroids[:1], owner.clip(max=0)) == -1).all()  # one draft: no other
