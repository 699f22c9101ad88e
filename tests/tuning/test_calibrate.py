"""Calibration: fits on synthetic data whose answer is known, the YAML round trip, `bot calibrate` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.routing.calibration import Calibration, calibration_id, load_calibration, save_calibration
from bot.tuning.calibrate import fit_confidence, fit_policy
from tests.conftest import write
from tests.tuning.test_evaluate import bot


def test_fit_policy_finds_the_known_threshold() -> None:
    """P(right) = confidence, uniform: answers above t are right (1 + t) / 2 of the time, so t = 0.8 for 0.9."""
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0, 1, 20_000)
    right = rng.uniform(0, 1, confidence.size) < confidence
    fit = fit_policy(confidence, confidence - 1.0, np.array(["a"] * confidence.size), right, 0.9)
    assert fit.reached and fit.precision >= 0.9
    assert fit.threshold == pytest.approx(0.8, abs=0.02) and fit.margin == 0.0
    assert fit.coverage == pytest.approx(0.2, abs=0.02)


def test_fit_policy_bounds_its_precision_by_the_rows_it_answered() -> None:
    """#27 item 4: the promise comes with a lower bound, wider when fewer rows were answered."""
    rng = np.random.default_rng(2)
    confidence = rng.uniform(0, 1, 20_000)
    right = rng.uniform(0, 1, confidence.size) < confidence
    fits = [
        fit_policy(confidence[:rows], confidence[:rows] - 1.0, np.array(["a"] * rows), right[:rows], 0.9)
        for rows in (300, 20_000)
    ]
    assert all(0.0 < fit.precision_low < fit.precision for fit in fits)
    small, big = fits
    assert small.precision - small.precision_low > big.precision - big.precision_low + 0.02


def test_fit_policy_gives_each_intent_its_own_threshold_where_data_allow() -> None:
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0, 1, 4000)
    intent = np.array(["easy", "hard"] * 2000)
    right = np.where(intent == "easy", confidence >= 0.6, confidence >= 0.9)
    fit = fit_policy(confidence, np.zeros_like(confidence), intent, right, 0.95)
    # the lowest t with (1 - 0.6) / (1 - t) >= 0.95 is 0.579; for "hard", (1 - 0.9) / (1 - t) gives 0.895
    assert fit.intent_thresholds["easy"] == pytest.approx(0.58, abs=0.015)
    assert fit.intent_thresholds.get("hard", fit.threshold) == pytest.approx(0.9, abs=0.015)
    limit = np.where(intent == "easy", 0.58, 0.9)
    assert fit.precision >= 0.95 and fit.coverage == pytest.approx(np.mean(confidence >= limit), abs=0.02)


def test_fit_policy_uses_the_margin_when_close_runner_ups_are_wrong() -> None:
    rng = np.random.default_rng(2)
    confidence = rng.uniform(0.6, 1.0, 5000)
    lead = rng.uniform(0, 0.5, 5000)
    right = lead >= 0.1  # a message whose runner-up is close is always wrong
    fit = fit_policy(confidence, confidence - lead, np.array(["a"] * 5000), right, 0.99)
    assert fit.margin == 0.1 and fit.precision == 1.0 and fit.coverage == pytest.approx(0.8, abs=0.02)


def test_fit_policy_reports_an_unreachable_target() -> None:
    confidence = np.linspace(0, 1, 100)
    fit = fit_policy(confidence, confidence - 1, np.array(["a"] * 100), np.zeros(100, dtype=bool), 0.9)
    assert not fit.reached and fit.precision == 0.0


def test_fit_confidence_recovers_a_logistic_map() -> None:
    rng = np.random.default_rng(3)
    scores = rng.uniform(0.2, 0.8, 20_000)
    right = rng.uniform(0, 1, scores.size) < 1 / (1 + np.exp(-15 * (scores - 0.5)))
    slope, center = fit_confidence(scores, right)
    assert slope == pytest.approx(15, rel=0.15) and center == pytest.approx(0.5, abs=0.02)


def test_calibration_yaml_round_trip_and_model_match(tmp_path: Path) -> None:
    calibration = Calibration(
        model_id="m@1", slope=12.0, center=0.5, threshold=0.6, margin=0.05,
        intent_thresholds={"a": 0.7}, intents_version="abc", data="train.csv:val",
        target_precision=0.95, expected_precision=0.951, expected_coverage=0.7,
    )  # fmt: skip
    save_calibration(tmp_path, calibration)
    assert load_calibration(tmp_path, "m@1") == calibration
    assert load_calibration(tmp_path, "other@2") is None


SMALL = """\
intents:
  - name: card_arrival
    description: The customer ordered a card and wants to know when it arrives or where it is.
    answer: Cards arrive in 3-5 working days.
  - name: exchange_rate
    description: The customer asks which exchange rate we use for foreign currency.
    answer: We use the interbank rate.
  - name: lost_card
    description: The customer lost their card or it was stolen.
    answer: We froze it.
"""
ROWS = [
    ("my card has not arrived yet", "card_arrival"),
    ("when will the card I ordered get here", "card_arrival"),
    ("where is my new card", "card_arrival"),
    ("what exchange rate do you apply", "exchange_rate"),
    ("how do you convert euros to pounds", "exchange_rate"),
    ("which rate for foreign currency", "exchange_rate"),
    ("I lost my card", "lost_card"),
    ("someone stole my card", "lost_card"),
    ("my wallet with the card is gone", "lost_card"),
    ("what is the capital of peru", "oos"),
    ("recommend a pizza topping", "oos"),
]


@pytest.mark.slow
def test_calibrate_writes_a_calibration_the_engine_loads(tmp_path: Path, bundled_encoder) -> None:
    from bot.config import Settings
    from bot.routing.engine import Engine

    folder = tmp_path / "intents"
    write(folder / "bank.yaml", SMALL)
    data = write(tmp_path / "val.csv", "text,label\n" + "".join(f"{t},{c}\n" for t, c in ROWS))
    result = bot(
        "calibrate", "--data", str(data), "--intents", str(folder), "--target-precision", "0.9", "--json",
        cache=tmp_path / "cache",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["target_reached"] and summary["expected_precision"] >= 0.9
    engine = Engine(Settings(intents_dir=folder, cache_dir=tmp_path / "cache"), encoder=bundled_encoder)
    engine.load()
    calibration = engine.state.calibration
    assert calibration is not None and calibration.model_id == engine.model_id
    assert calibration.expected_precision is not None and calibration.expected_precision_low is not None
    assert calibration.expected_precision_low < calibration.expected_precision  # written with its bound
    assert calibration.intents_version == engine.intents.version
    assert engine.state.policy.threshold == calibration.threshold
    decisions = [engine.route(text) for text, _ in ROWS]
    assert {d.calibration_id for d in decisions} == {calibration_id(calibration)}
    assert len(calibration_id(calibration)) == 12
    right = [d.intent == label for d, (_, label) in zip(decisions, ROWS, strict=True) if d.route == "answer"]
    assert right and sum(right) / len(right) >= 0.9  # what it promised on the same rows

    refused = bot(
        "calibrate", "--data", str(write(tmp_path / "test.csv", "text,label\na,b\n")), cache=tmp_path
    )
    assert refused.returncode == 2 and "refusing to calibrate on a test set" in refused.stderr


def test_intent_thresholds_do_not_drop_below_even_odds() -> None:
    confidence = np.linspace(0.05, 1.0, 400)
    fit = fit_policy(confidence, np.zeros(400), np.array(["a"] * 400), confidence >= 0.0, 0.95)
    assert (
        fit.threshold == pytest.approx(0.05) and fit.intent_thresholds == {}
    )  # the default already takes all
    mixed = np.where(np.arange(400) % 2 == 0, "a", "b")
    right = (mixed == "a") | (confidence >= 0.97)  # "a" is always right, "b" only near the top
    fit = fit_policy(confidence, np.zeros(400), mixed, right, 0.95)
    assert all(t >= 0.5 for t in fit.intent_thresholds.values())


def test_an_out_of_scope_prior_keeps_the_promise_when_traffic_has_more_of_them() -> None:
    """3% out-of-scope rows in the labelled set, 20% in traffic: the prior makes the fit plan for 20%."""
    from bot.tuning.calibrate import prior_weights

    rng = np.random.default_rng(1)
    inside = rng.uniform(0.3, 1.0, 9_700)  # confidence of in-scope rows; right with that chance
    right_in = rng.uniform(0, 1, inside.size) < inside
    outside = rng.uniform(0.0, 0.9, 300)  # out-of-scope rows: never right
    confidence = np.concatenate([inside, outside])
    right = np.concatenate([right_in, np.zeros(outside.size, dtype=bool)])
    in_scope = np.concatenate([np.ones(inside.size, bool), np.zeros(outside.size, bool)])
    weights = prior_weights(in_scope, 0.2)
    assert weights is not None and np.isclose(weights[~in_scope].sum(), 0.2)
    assert prior_weights(in_scope, None) is None and prior_weights(np.ones(3, bool), 0.2) is None
    plain = fit_policy(confidence, confidence - 1.0, np.array(["a"] * confidence.size), right, 0.9)
    planned = fit_policy(confidence, confidence - 1.0, np.array(["a"] * confidence.size), right, 0.9, weights)
    assert planned.threshold > plain.threshold  # more off-topic traffic: a stricter threshold
    # what the planned fit promises is what 20% out-of-scope traffic gets
    traffic_in, traffic_out = inside[:4000], rng.uniform(0.0, 0.9, 1000)
    accepted_right = ((traffic_in >= planned.threshold) & (rng.uniform(0, 1, 4000) < traffic_in)).sum()
    accepted = (traffic_in >= planned.threshold).sum() + (traffic_out >= planned.threshold).sum()
    assert accepted_right / accepted == pytest.approx(planned.precision, abs=0.03)


def test_a_calibration_applies_to_its_model_on_every_backend() -> None:
    from bot.routing.calibration import same_model

    assert same_model("m@1", "m@1") and same_model("m@1", "m@1+onnx-int8")
    # fitted on the default int8 backend, it still applies when a user switches to torch
    assert same_model("m@1+onnx-int8", "m@1") and same_model("m@1+onnx", "m@1+onnx-int8")
    assert not same_model("m@1", "m@2") and not same_model("m@1+onnx-int8", "m@2")
