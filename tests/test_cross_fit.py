"""Cross-fit of a self-trained model: every example scored by a fold model that never saw it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from bot.content.intents import load_intents
from bot.routing.cross_fit import CROSS_FIT_FILE, FOLDS, CrossFit, example_folds, texts_key
from bot.routing.self_calibration import FROZEN_BIAS, Evidence, fit_self_calibration
from bot.routing.state import intent_text_kinds, intent_texts
from tests.conftest import write
from tests.test_self_calibration import HOME, engine_on


def test_every_example_is_left_out_of_exactly_one_fold_and_intents_split_evenly(tmp_path: Path) -> None:
    intents = load_intents(write(tmp_path / "intents" / "home.yaml", HOME).parent)
    folds = example_folds(intents)
    kinds = np.array(intent_text_kinds(intents))
    _, owners = intent_texts(intents)
    assert (folds[kinds != "example"] == -1).all()  # names and descriptions: every model learns them
    assert set(folds[kinds == "example"]) == set(range(FOLDS))
    for owner in set(owners):  # each intent's three examples: one fold gets two, the other one
        mine = folds[(np.array(owners) == owner) & (kinds == "example")]
        assert sorted(np.bincount(mine, minlength=FOLDS)) == [1, 2]
    assert abs(int((folds == 0).sum()) - int((folds == 1).sum())) <= 1  # the rotation keeps folds even


def test_cross_fit_scoring_matches_plain_scoring_when_the_fold_models_are_the_model(
    tmp_path: Path, bundled_encoder
) -> None:
    """With every fold's vectors the model's own, scoring each example by "its" fold model must give the
    plain leave-one-out scores: the fold plumbing adds nothing of its own."""
    folder = write(tmp_path / "intents" / "home.yaml", HOME).parent
    engine = engine_on(folder, tmp_path / "cache", bundled_encoder)
    engine.load()
    state, settings = engine.state, engine.settings
    own = state.intent_index.vectors()
    folds = example_folds(state.intents)
    cross_fit = CrossFit(vectors=np.stack([own] * FOLDS), folds=folds, key=texts_key(state.intents))
    crossed = Evidence(FROZEN_BIAS, cross_fit)
    plain = Evidence(FROZEN_BIAS, None)
    rows = crossed.query_rows(state)
    order = np.concatenate([rows[folds[rows] == fold] for fold in range(FOLDS)])  # fold by fold
    position = {row: k for k, row in enumerate(plain.query_rows(state))}
    by_fold = np.array([position[row] for row in order])
    got, expected = crossed.pseudo_queries(state, settings), plain.pseudo_queries(state, settings)
    for name in ("conf_in", "lead_in", "right", "conf_out", "lead_out"):
        np.testing.assert_allclose(getattr(got, name), getattr(expected, name)[by_fold], atol=1e-6)
    assert got.scoring == expected.scoring

    fit = fit_self_calibration(state, settings, crossed)
    assert fit is not None and "cross-fitted" in (fit.calibration.data or "")


def test_a_cross_fit_is_used_only_for_the_folder_it_was_computed_for(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = write(tmp_path / "intents" / "home.yaml", HOME).parent
    intents = load_intents(folder)
    texts, _ = intent_texts(intents)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(FOLDS, len(texts), 8)).astype(np.float32)
    model = tmp_path / "model"
    model.mkdir()
    CrossFit(vectors=vectors, folds=example_folds(intents), key=texts_key(intents)).save(model)
    found = CrossFit.load(str(model), intents)
    assert found is not None and found.vectors.shape == vectors.shape
    np.testing.assert_allclose(found.vectors, vectors, atol=1e-2)  # stored as float16

    write(folder / "home.yaml", HOME.replace("play some jazz", "play some blues"))
    assert CrossFit.load(str(model), load_intents(folder)) is None  # another version of the folder
    assert CrossFit.load("bundled", intents) is None  # the stock model has none

    (model / CROSS_FIT_FILE).write_bytes(b"not an archive")
    with caplog.at_level(logging.WARNING):
        assert CrossFit.load(str(model), intents) is None
    assert "unreadable cross-fit" in caplog.text
