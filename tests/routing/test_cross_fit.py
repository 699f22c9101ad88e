"""Cross-fit of a self-trained model: every example scored by a fold model that never saw it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from bot.config import Settings
from bot.content.intents import load_intents
from bot.routing.cross_fit import CROSS_FIT_FILE, FOLDS, CrossFit, example_folds, texts_key
from bot.routing.encoders import torch_backend as encoder
from bot.routing.pseudo_queries import (
    FROZEN_BIAS,
    SELF_TRAINING_FILE,
    TRAINED_BIAS,
    Evidence,
    cross_fitted_scores,
    raw_pseudo_scores,
)
from bot.routing.self_calibration import fit_self_calibration
from bot.routing.state import Scoring, intent_text_kinds, intent_texts
from bot.tuning import self_training
from bot.tuning.training import TrainingConfig
from tests.conftest import write
from tests.routing.test_self_calibration import HOME, engine_on


def test_each_intent_splits_its_examples_across_the_folds(tmp_path: Path) -> None:
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


# HOME and two intents that overlap its own: leave-one-out gets some examples wrong, so a misaligned
# `right` array or a map fitted on the wrong rows shows
OVERLAPPING = (
    HOME
    + """\
  - name: lights_dim
    description: The user wants a light in the house dimmed.
    examples: ["dim the kitchen light", "turn the lamp down a bit", "lights lower in the bedroom"]
  - name: music_stop
    description: The user wants the music stopped.
    examples: ["stop the jazz", "turn off my playlist", "no more beatles please"]
"""
)


def test_each_example_is_scored_by_its_own_fold_model_in_query_order(tmp_path: Path, bundled_encoder) -> None:
    """With every fold's vectors the model's own, cross-fitted scores are the plain leave-one-out scores,
    row for row; change one fold's vectors and exactly that fold's examples score differently."""
    folder = write(tmp_path / "intents" / "home.yaml", OVERLAPPING).parent
    engine = engine_on(folder, tmp_path / "cache", bundled_encoder)
    engine.load()
    state, settings = engine.state, engine.settings
    own = state.intent_index.vectors()
    folds = example_folds(state.intents)
    key = texts_key(state.intents)
    same = Evidence(FROZEN_BIAS, CrossFit(vectors=np.stack([own] * FOLDS), folds=folds, key=key))
    plain = Evidence(FROZEN_BIAS, None)
    queries = plain.query_rows(state)
    np.testing.assert_array_equal(same.query_rows(state), queries)
    got, expected = same.pseudo_queries(state, settings), plain.pseudo_queries(state, settings)
    assert 0 < expected.right.sum() < len(expected.right)  # both right and wrong pseudo-queries
    for name in ("conf_in", "lead_in", "right", "conf_out", "lead_out"):
        np.testing.assert_allclose(getattr(got, name), getattr(expected, name), atol=1e-6)
    assert got.scoring == expected.scoring

    other = own + np.random.default_rng(0).normal(scale=0.3, size=own.shape).astype(np.float32)
    other /= np.linalg.norm(other, axis=1, keepdims=True)
    moved = CrossFit(vectors=np.stack([own, other]), folds=folds, key=key)
    raw = Scoring(
        1.0, 0.0, settings.aggregation_weight, settings.aggregation_depth, settings.prototype_weight
    )
    crossed, baseline = (
        cross_fitted_scores(state, raw, queries, moved),
        raw_pseudo_scores(state, raw, queries),
    )
    in_fold_0 = folds[queries] == 0
    np.testing.assert_allclose(crossed.score_in[in_fold_0], baseline.score_in[in_fold_0], atol=1e-6)
    np.testing.assert_allclose(crossed.score_out[in_fold_0], baseline.score_out[in_fold_0], atol=1e-6)
    assert not np.allclose(crossed.score_in[~in_fold_0], baseline.score_in[~in_fold_0], atol=1e-3)

    fit = fit_self_calibration(state, settings, same)
    assert fit is not None and "cross-fitted" in (fit.calibration.data or "")


def test_each_fold_model_trains_without_its_fold_examples(tmp_path: Path, monkeypatch) -> None:
    """`self_training.cross_fit` hands fold k's model every text but fold k's examples, and encodes all."""
    intents = load_intents(write(tmp_path / "intents" / "home.yaml", HOME).parent)
    texts, owners = intent_texts(intents)
    folds = example_folds(intents)
    trained: list[list[list[str]]] = []

    class Model:
        def encode(self, batch: list[str], **_: object) -> np.ndarray:
            assert batch == texts  # every text is encoded, in the folder's order
            return np.eye(len(batch), 4, dtype=np.float32)

    class Encoder:
        def __init__(self, *_: object, **__: object) -> None:
            self.model = Model()

    def train(network: object, groups: list[list[str]], *_: object, **__: object) -> int:
        trained.append(groups)
        return 1

    monkeypatch.setattr(encoder, "SentenceTransformerEncoder", Encoder)
    monkeypatch.setattr(self_training, "train_network", train)
    settings = Settings(intents_dir=tmp_path / "intents")
    found = self_training.cross_fit(settings, intents, TrainingConfig(progress=False))
    assert found is not None and found.vectors.shape == (FOLDS, len(texts), 4)
    assert len(trained) == FOLDS
    for fold, groups in enumerate(trained):
        kept = {text for group in groups for text in group}
        for text, owner, text_fold in zip(texts, owners, folds, strict=True):
            assert (text in kept) == (text_fold != fold), (fold, text)
            if text in kept:
                assert text in groups[owner]  # under its own intent

    two = write(tmp_path / "small" / "two.yaml", HOME.split("  - name: weather")[0])  # lights on and off
    assert self_training.cross_fit(settings, load_intents(two.parent), TrainingConfig()) is None  # too small


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

    whole = (model / CROSS_FIT_FILE).read_bytes()
    for damaged in (b"not an archive", whole[: len(whole) // 2], b""):  # hand-edited, truncated, empty
        (model / CROSS_FIT_FILE).write_bytes(damaged)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert CrossFit.load(str(model), intents) is None
        assert "unreadable cross-fit" in caplog.text
    folds = example_folds(intents)
    folds[folds >= 0] = FOLDS  # a fold with no model
    CrossFit(vectors=vectors, folds=folds, key=texts_key(intents)).save(model)
    assert CrossFit.load(str(model), intents) is None


def test_learned_examples_keep_the_cross_fit_and_an_edited_folder_falls_back(
    tmp_path: Path, bundled_encoder
) -> None:
    """A self-trained model's cross-fit covers the YAML texts it was trained on: learned examples (from
    reviews) do not switch it off, a folder edited after training does (the trained-model factors apply)."""
    folder = write(tmp_path / "intents" / "home.yaml", OVERLAPPING).parent
    stock = engine_on(folder, tmp_path / "cache", bundled_encoder)
    stock.load()
    state = stock.state
    model = tmp_path / "model"  # stands in for a self-trained model folder: marker and cross-fit
    model.mkdir()
    (model / SELF_TRAINING_FILE).write_text("{}", encoding="utf-8")
    vectors = np.stack([state.intent_index.vectors()] * FOLDS)
    CrossFit(vectors=vectors, folds=example_folds(state.intents), key=texts_key(state.intents)).save(model)

    engine = engine_on(folder, tmp_path / "cache", bundled_encoder, model=str(model))
    engine.load(extra_examples={"weather": ["do I need an umbrella today"]})
    weather = engine.state.intents.get("weather")
    assert weather is not None and "do I need an umbrella today" in weather.spec.examples  # routed with it
    calibration = engine.state.calibration
    assert calibration is not None and "cross-fitted" in (calibration.data or "")
    assert calibration.intents_version == state.version  # fitted on the YAML texts the cross-fit covers

    write(folder / "home.yaml", OVERLAPPING.replace("play some jazz", "play some blues"))
    engine.load()  # a live reload of an edited folder: the model was trained on the previous version
    assert Evidence.of(str(model), engine.state.intents).bias is TRAINED_BIAS
    calibration = engine.state.calibration
    assert calibration is not None and "cross-fitted" not in (calibration.data or "")
    # `bot check` and the stats page say so
    assert "retrains it in the background" in (calibration.data or "")
