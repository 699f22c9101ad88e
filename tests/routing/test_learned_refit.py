"""Learned examples refit the operating point (#31 item 4): reviewed messages are real labelled traffic,
so they count in the fit as they are (no bias factor) beside the folder's own pseudo-queries, by their
count; a labelled calibration.yaml is never refitted. Real encoder, real FAISS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.config import Settings
from bot.routing.engine import Engine
from bot.routing.promise import Outcome, Reviewed
from bot.routing.pseudo_queries import PseudoBias
from bot.routing.self_calibration import Learned
from bot.routing.state import intent_texts
from tests.conftest import write
from tests.routing.test_self_calibration import HOME

# Reviewed customer messages, in other words than the YAML examples (a light, a forecast, an alarm)
LEARNED = {
    "lights_on": [
        "could you make it brighter in the living room",
        "I can't see a thing in here, light please",
    ],
    "weather": ["do I need an umbrella on friday", "what's the forecast for the weekend"],
    "alarm_set": ["I need to be up by 5 tomorrow", "remind me to wake at half past six"],
}


def engine_on(folder: Path, cache: Path, encoder: object, **settings: object) -> Engine:
    return Engine(Settings(intents_dir=folder, cache_dir=cache, **settings), encoder=encoder)  # type: ignore[arg-type]


def test_blended_outcome_weighs_reviewed_messages_without_the_bias_factor() -> None:
    bias = PseudoBias(right_in=0.9, wrong_in=1.5, accepted_out=2.0)
    pseudo = Outcome(right_in=0.6, wrong_in=0.05, accepted_out=0.2)
    real = Reviewed(0.8, 0.02, 0.1, 0.0, 0.0, 0.0, count=50, weight=1.0)
    alone = Outcome(0.8, 0.02, 0.1)
    only_real = Outcome(0.6, 0.05, 0.2, reviewed=real)
    # all the weight on reviewed messages: their shares as they are, whatever the pseudo-queries' bias
    assert only_real.precision(0.1, bias) == pytest.approx(alone.precision(0.1, PseudoBias(1.0, 1.0, 1.0)))
    half = Outcome(0.6, 0.05, 0.2, reviewed=Reviewed(0.8, 0.02, 0.1, 0.0, 0.0, 0.0, count=50, weight=0.5))
    right = 0.5 * 0.9 * 0.6 + 0.5 * 0.8
    wrong = 0.5 * 1.5 * 0.05 + 0.5 * 0.02
    accepted = 0.5 * 2.0 * 0.2 + 0.5 * 0.1
    expected = 0.9 * right / (0.9 * right + 0.9 * wrong + 0.1 * accepted)
    assert half.precision(0.1, bias) == pytest.approx(expected)
    assert pseudo.precision(0.1, bias) < half.precision(0.1, bias) < only_real.precision(0.1, bias)
    # the bound holds below the estimate, and more reviewed messages tighten it
    few = Outcome(0.6, 0.05, 0.2, reviewed=Reviewed(0.8, 0.02, 0.1, 0.0, 0.0, 0.0, count=20, weight=0.5))
    assert few.precision_low(30, 0.1, bias) < half.precision_low(30, 0.1, bias) < half.precision(0.1, bias)
    # reviewed messages answering nothing in scope still have their sibling acceptance bounded by their
    # count: 40 of them vouch for less than a million would
    few_none = Outcome(0.6, 0.05, 0.2, reviewed=Reviewed(0.0, 0.0, 0.05, 0.0, 0.0, 0.0, count=40, weight=0.5))
    many_none = Outcome(
        0.6, 0.05, 0.2, reviewed=Reviewed(0.0, 0.0, 0.05, 0.0, 0.0, 0.0, count=10**6, weight=0.5)
    )
    assert few_none.precision_low(30, 0.1, bias) < many_none.precision_low(30, 0.1, bias)
    # and strong reviewed evidence still promises something when the folder's own examples answer nothing
    strong = Outcome(0.0, 0.0, 0.2, reviewed=Reviewed(0.9, 0.01, 0.02, 0.0, 0.0, 0.0, count=400, weight=0.9))
    assert 0.5 < strong.precision_low(30, 0.1, bias) <= strong.precision(0.1, bias)


def test_learning_refits_the_self_calibrated_point_and_keeps_a_labelled_one(
    tmp_path: Path, bundled_encoder
) -> None:
    """One engine throughout: each engine load encodes the shipped off-topic set into a fresh cache."""
    folder, cache = tmp_path / "intents", tmp_path / "cache"
    write(folder / "home.yaml", HOME)
    engine = engine_on(folder, cache, bundled_encoder)
    engine.load()
    yaml_state = engine.state
    before = yaml_state.calibration
    assert before is not None and "learned" not in before.data

    # the learned rows are exactly the texts the YAML folder lacks
    learned_state = engine.with_intents(yaml_state.intents.with_extra_examples(LEARNED), calibration=None)
    learned = Learned.of(learned_state, yaml_state)
    assert learned is not None
    texts, owners = intent_texts(learned_state.intents)
    names = learned_state.intents.names
    found = {(texts[row], names[owners[row]]) for row in learned.rows}
    assert found == {(text, name) for name, added in LEARNED.items() for text in added}
    assert Learned.of(yaml_state, yaml_state) is None

    assert engine.use_extra_examples(lambda: LEARNED)
    after = engine.state.calibration
    assert after is not None and after.source == "self"
    assert engine.live.operating_point == "self-calibration (fitted, with 6 learned examples)"
    assert "6 learned" in after.data and after.intents_version == before.intents_version
    assert engine.state.policy.threshold == after.threshold and engine.state.policy.margin == after.margin
    # a reload with the same learned examples finds the refit in the cache
    assert engine.load(extra_examples=LEARNED).operating_point == (
        "self-calibration (cached, with 6 learned examples)"
    )
    assert engine.state.calibration == after
    assert len(list((cache / "self_calibration" / "learned").glob("*.json"))) == 1
    assert not engine.learn("weather", LEARNED["weather"][0])  # already learned there: nothing to refit
    # unlearning every example goes back to the YAML folder's own point
    for texts_of in LEARNED.values():
        for text in texts_of:
            engine.unlearn(text)
    assert engine.state.calibration == before

    # Reviewed messages the folder answers wrongly are real evidence of mistakes: messages about switching
    # lights off, reviewed as lights_on, score highest on lights_off. The promise must drop (or the point
    # tighten) rather than keep what the tidy YAML examples suggested.
    confused = {
        "lights_on": ["turn off the lamp in the hall", "switch the bedroom light off", "lights off now"]
    }
    assert engine.use_extra_examples(lambda: confused)
    refit = engine.state.calibration
    assert refit is not None
    tidy_at = (before.expected_by_oos_rate or {})["0.1"][0]
    refit_at = (refit.expected_by_oos_rate or {})["0.1"][0]
    assert refit_at < tidy_at or refit.threshold > before.threshold
    assert np.isfinite(refit.expected_precision or np.nan)

    write(
        folder / "calibration.yaml",
        f"model_id: {engine.model_id}\nslope: 10.0\ncenter: 0.5\nthreshold: 0.6\nmargin: 0.05\n",
    )
    assert engine.load().operating_point == "calibration.yaml"
    assert engine.learn("weather", "do I need an umbrella on friday")
    assert engine.live.operating_point == "calibration.yaml"
    calibration = engine.state.calibration
    assert (
        calibration is not None and calibration.source == "labelled" and engine.state.policy.threshold == 0.6
    )


def test_only_the_newest_learned_fits_of_a_folder_stay_cached(tmp_path: Path) -> None:
    """Every review makes a new set of learned examples and so a new cached fit: without pruning the cache
    would grow by a file per review forever."""
    import os

    from bot.routing.self_calibration import LEARNED_KEPT, _prune_learned

    folder = tmp_path / "self_calibration" / "learned"
    folder.mkdir(parents=True)
    mine = [folder / f"aaaaaaaaaaaa-{n:012x}.json" for n in range(LEARNED_KEPT + 3)]
    other = (
        folder / "bbbbbbbbbbbb-000000000001.json"
    )  # another YAML version's fit: not this folder's to prune
    for age, path in enumerate([*reversed(mine), other]):
        path.write_text("null", encoding="utf-8")
        os.utime(path, (1_000_000 - age, 1_000_000 - age))  # mine[-1] newest
    _prune_learned(mine[-1])
    left = sorted(p.name for p in folder.iterdir())
    assert left == sorted([p.name for p in mine[-LEARNED_KEPT:]] + [other.name])
