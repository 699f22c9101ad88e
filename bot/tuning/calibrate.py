"""Fitting a calibration on labelled rows: aggregation, confidence map, threshold, margin, per-intent thresholds.

`fit_policy` and `fit_confidence` are pure numpy over per-message scores, so they are tested on
synthetic data; `calibrate` feeds them the scores of a routing state (`bot calibrate`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.routing.calibration import Calibration, CalibrationSource, base_model_id
from bot.routing.promise import effective_count, wilson_low
from bot.routing.pseudo_queries import fit_confidence
from bot.routing.scoring import intent_scores, left_out_rows, top_two
from bot.routing.self_calibration import EXPECTATION_RATES, THRESHOLDS
from bot.routing.state import Scoring
from bot.tuning.datasets import OUT_OF_SCOPE

__all__ = ["PolicyFit", "calibrate", "fit_confidence", "fit_policy", "prior_weights"]

if TYPE_CHECKING:
    from bot.routing.engine import Engine
    from bot.routing.state import RoutingState
    from bot.tuning.datasets import Example

MARGINS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3)
MIN_INTENT_SUPPORT = 20  # rows an intent needs before it earns a threshold of its own
# An intent's own threshold never drops below this: labelled sets rarely hold the out-of-scope messages
# that would show the cost of answering at a confidence where the map itself expects more wrong than right.
MIN_INTENT_THRESHOLD = 0.5


@dataclass(frozen=True)
class PolicyFit:
    """Thresholds chosen on a labelled set and what they achieved there."""

    threshold: float
    margin: float
    intent_thresholds: dict[str, float]
    precision: float
    coverage: float
    reached: bool  # whether `precision` reaches the target
    # a lower bound (one-sided 95%, Wilson) on `precision` over the answered rows' effective number
    precision_low: float = 0.0
    # expected (precision, coverage) if that share of traffic were out of scope (`bot calibrate` prints it)
    by_oos_rate: dict[float, tuple[float, float]] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class Ranking:
    """The top two raw scores of each labelled row, its top intent, whether that is right, whether in scope."""

    top: np.ndarray
    second: np.ndarray
    top_intent: np.ndarray
    right: np.ndarray
    in_scope: np.ndarray
    scoring: Scoring | None = None

    @classmethod
    def of(cls, scores: np.ndarray, names: np.ndarray, labels: np.ndarray) -> Ranking:
        """From a (rows, intents) score matrix and each row's label ("" or "oos" for out of scope)."""
        best, top, second = top_two(scores)
        top_intent = names[best]
        return cls(top, second, top_intent, top_intent == labels, ~np.isin(labels, ["", OUT_OF_SCOPE]))

    def expected(self, fit: PolicyFit, rates: tuple[float, ...]) -> dict[float, tuple[float, float]]:
        """(precision, coverage) of `fit` at each out-of-scope share (needs out-of-scope rows to say)."""
        if self.scoring is None or self.in_scope.all():
            return {}
        top = self.scoring.confidence(self.top)
        limits = np.array([fit.intent_thresholds.get(str(i), fit.threshold) for i in self.top_intent])
        accept = (top - self.scoring.confidence(self.second) >= fit.margin) & (top >= limits)
        found = {}
        for rate in rates:
            precision, coverage = _outcome(accept, self.right, prior_weights(self.in_scope, rate))
            found[rate] = (round(precision, 4), round(coverage, 4))
        return found


def _outcome(accept: np.ndarray, right: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float]:
    """Precision and coverage of accepting `accept`; rows weigh `weights` (default: one each)."""
    if weights is None:
        accepted = int(accept.sum())
        return (float(right[accept].mean()) if accepted else 0.0), accepted / max(len(accept), 1)
    mass = float(weights[accept].sum())
    total = float(weights.sum())
    precision = float(weights[accept & right].sum()) / mass if mass > 0 else 0.0
    return precision, mass / total if total > 0 else 0.0


def prior_weights(in_scope: np.ndarray, oos_rate: float | None) -> np.ndarray | None:
    """Row weights that make out-of-scope rows `oos_rate` of the traffic, whatever their share here.

    A labelled set with 3% out-of-scope rows promises a precision that 20% out-of-scope traffic does not
    deliver: each wrongly accepted out-of-scope message weighs more there. None (no reweighting) when no
    rate is given or the set lacks one of the two kinds.
    """
    n_in, n_out = int(in_scope.sum()), int((~in_scope).sum())
    if oos_rate is None or n_in == 0 or n_out == 0:
        return None
    return np.where(in_scope, (1.0 - oos_rate) / n_in, oos_rate / n_out)


def fit_policy(
    top_confidence: np.ndarray,
    second_confidence: np.ndarray,
    top_intent: np.ndarray,
    right: np.ndarray,
    target_precision: float,
    weights: np.ndarray | None = None,
) -> PolicyFit:
    """Threshold, margin and per-intent thresholds with the highest coverage whose precision reaches the target.

    A message is accepted when its top confidence passes the (intent's) threshold and leads the runner-up
    by the margin, as in `bot.routing.policy.decide`; `right` says whether its top intent is its label.
    `weights` (see `prior_weights`) let out-of-scope rows count as they will in traffic.
    """
    lead = top_confidence - second_confidence
    best: tuple[float, float, float, float] | None = None  # coverage, precision, threshold, margin
    fallback = (-1.0, 0.0, float(THRESHOLDS[-1]), 0.0)  # if nothing reaches the target: most precise
    for margin in MARGINS:
        clear = lead >= margin
        for threshold in THRESHOLDS:
            precision, coverage = _outcome(clear & (top_confidence >= threshold), right, weights)
            if coverage == 0:
                continue
            if precision >= target_precision and (best is None or coverage > best[0]):
                best = (coverage, precision, float(threshold), margin)
            if precision > fallback[1] or (precision == fallback[1] and coverage > fallback[0]):
                fallback = (coverage, precision, float(threshold), margin)
    chosen = best or fallback
    threshold, margin = chosen[2], chosen[3]
    clear = lead >= margin
    per_intent = _intent_thresholds(top_confidence, top_intent, right, clear, threshold, target_precision)
    limits = np.array([per_intent.get(str(i), threshold) for i in top_intent])
    precision, coverage = _outcome(clear & (top_confidence >= limits), right, weights)
    if per_intent and (precision < target_precision or coverage < chosen[0]):
        per_intent = {}  # together they miss what the global threshold alone achieves: keep it simple
        precision, coverage = chosen[1], chosen[0]
        limits = np.full(len(top_confidence), threshold)
    accepted = clear & (top_confidence >= limits)
    # reweighted rows count less than their number: an out-of-scope row standing for many messages
    count = effective_count(weights[accepted]) if weights is not None else float(accepted.sum())
    return PolicyFit(
        threshold=threshold,
        margin=margin,
        intent_thresholds=per_intent,
        precision=precision,
        coverage=max(coverage, 0.0),
        reached=precision >= target_precision,
        precision_low=wilson_low(precision, count),
    )


def _intent_thresholds(
    confidence: np.ndarray,
    intent: np.ndarray,
    right: np.ndarray,
    clear: np.ndarray,
    default: float,
    target: float,
) -> dict[str, float]:
    """For intents with enough rows, the lowest threshold at which their own answers reach the target."""
    fitted: dict[str, float] = {}
    for name in np.unique(intent):
        mine = clear & (intent == name)
        if mine.sum() < MIN_INTENT_SUPPORT:
            continue
        for threshold in (t for t in THRESHOLDS if t >= min(MIN_INTENT_THRESHOLD, default)):
            accept = mine & (confidence >= threshold)
            if accept.sum() == 0:
                break
            if right[accept].mean() >= target:
                if abs(threshold - default) > 0.005:
                    fitted[str(name)] = float(threshold)
                break
    return fitted


# Aggregations tried by `calibrate`: (aggregation_weight, aggregation_depth, prototype_weight).
AGGREGATIONS = tuple((w, d, p) for p in (0.0, 0.2, 0.3, 0.4, 0.5) for w, d in ((0.0, 1), (0.3, 3)))


def calibrate(
    engine: Engine,
    examples: Sequence[Example],
    target_precision: float,
    *,
    data: str,
    state: RoutingState | None = None,
    oos_rate: float | None = None,
    source: CalibrationSource = "labelled",
    progress: bool = False,
) -> tuple[Calibration, PolicyFit]:
    """Choose aggregation, confidence map and thresholds on labelled rows for the engine's live intents
    (or for `state`, one built by `Engine.with_intents`).

    With `oos_rate`, precision is judged as if `oos_rate` of the traffic were out of scope: the set's own
    out-of-scope rows are reweighted to that share, or, when it has none, each in-scope row scored
    without its own intent stands in for an out-of-scope message (the nearest kind: a sibling request
    the folder does not cover).
    """
    state = state or engine.state
    names = np.array(state.intents.names)
    labels = np.array([e.label for e in examples])
    queries = engine.encoder.encode([e.text for e in examples], progress=progress)
    # a row that is also one of its intent's examples is scored as if it were not: it must not find itself
    left_out = left_out_rows(state, [e.text for e in examples], list(labels))
    in_scope = np.array([e.in_scope for e in examples])
    known = set(names)
    stand_ins = np.array(
        [row for row, label in enumerate(labels) if label in known]
        if oos_rate is not None and in_scope.all()
        else [],
        dtype=np.int64,
    )
    chosen: tuple[tuple[bool, float, float], Calibration, PolicyFit, Ranking] | None = None
    for weight, depth, prototype in AGGREGATIONS:
        raw = Scoring(1.0, 0.0, weight, depth, prototype)
        ranking = _ranking(intent_scores(state, queries, raw, left_out), names, labels, in_scope, stand_ins)
        scoring, fit = _fit_on(ranking, raw, len(examples), target_precision, oos_rate)
        # reach the target first, then cover the most; accuracy breaks ties
        key = (fit.reached, fit.coverage if fit.reached else fit.precision, float(ranking.right.mean()))
        if chosen is None or key > chosen[0]:
            calibration = Calibration(
                model_id=base_model_id(engine.model_id),  # backend-neutral: see same_model
                intents_version=state.version,
                data=data,
                source=source,
                oos_rate=oos_rate,
                target_precision=target_precision,
                **_fitted_fields(scoring, fit),
            )
            chosen = (key, calibration, fit, dataclasses.replace(ranking, scoring=scoring))
    assert chosen is not None  # AGGREGATIONS is not empty
    _, calibration, fit, ranking = chosen
    expected = ranking.expected(fit, EXPECTATION_RATES)
    table = {f"{rate:g}": figures for rate, figures in expected.items()}  # kept in calibration.yaml too
    return calibration.model_copy(update={"expected_by_oos_rate": table}), dataclasses.replace(
        fit, by_oos_rate=expected
    )


def _fit_on(
    ranking: Ranking, raw: Scoring, real_rows: int, target_precision: float, oos_rate: float | None
) -> tuple[Scoring, PolicyFit]:
    """The confidence map fitted on the first `real_rows` rows (it tracks "the top intent is right" on
    real rows only, not on stand-ins), then the thresholds that reach the target in it."""
    top, second, right = ranking.top, ranking.second, ranking.right
    real = slice(0, real_rows)
    slope, center = fit_confidence(np.where(np.isfinite(top[real]), top[real], -1.0), right[real])
    scoring = Scoring(slope, center, raw.aggregation_weight, raw.aggregation_depth, raw.prototype_weight)
    fit = fit_policy(
        scoring.confidence(top),
        scoring.confidence(second),
        ranking.top_intent,
        right,
        target_precision,
        prior_weights(ranking.in_scope, oos_rate),
    )
    return scoring, fit


def _fitted_fields(scoring: Scoring, fit: PolicyFit) -> dict[str, Any]:
    """A calibration's fields that the fit chose: confidence map, aggregation, thresholds, expectations."""
    return {
        "slope": round(scoring.slope, 4),
        "center": round(scoring.center, 4),
        "threshold": fit.threshold,
        "margin": fit.margin,
        "aggregation_weight": scoring.aggregation_weight,
        "aggregation_depth": scoring.aggregation_depth,
        "prototype_weight": scoring.prototype_weight,
        "intent_thresholds": fit.intent_thresholds,
        "expected_precision": round(fit.precision, 4),
        "expected_precision_low": float(np.floor(min(fit.precision_low, fit.precision) * 1e4) / 1e4),
        "expected_coverage": round(fit.coverage, 4),
    }


def _ranking(
    scores: np.ndarray, names: np.ndarray, labels: np.ndarray, in_scope: np.ndarray, stand_ins: np.ndarray
) -> Ranking:
    """The rows ranked by `scores`, followed by the `stand_ins` rows again with their own intent removed:
    out of scope by construction."""
    if len(stand_ins):
        positions = {name: position for position, name in enumerate(names)}
        without = scores[stand_ins].copy()
        without[np.arange(len(stand_ins)), [positions[label] for label in labels[stand_ins]]] = -np.inf
        scores = np.concatenate([scores, without])
    ranking = Ranking.of(scores, names, np.concatenate([labels, np.full(len(stand_ins), "")]))
    return dataclasses.replace(
        ranking, in_scope=np.concatenate([in_scope, np.zeros(len(stand_ins), dtype=bool)])
    )
