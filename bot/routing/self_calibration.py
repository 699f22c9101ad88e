"""Self-calibration: an operating point (confidence map, threshold, margin) from the intents folder alone.

A new business has no labelled messages, and BANKING77's defaults do not transfer: another domain's
cosines sit at another level, so a fixed threshold hands off most customers it could answer. The folder
itself holds two kinds of evidence:

- **in scope**: each example, scored leave-one-out (it does not find itself), should rank its own intent;
- **out of scope**: the same example scored with its whole intent removed is a message the folder does
  not cover, and the nearest kind of such message (a sibling request), so the hardest to refuse.

The confidence map is a logistic fit of "the top intent is right" on the in-scope pseudo-queries; the
threshold and margin are the pair with the most in-scope answers whose precision reaches the target when
`oos_rate` of the traffic is out of scope. Fits take well under a second for 150 intents and are cached
by intents version and model (`cached_self_calibration`), so restarts and reloads of an unchanged folder
do not refit. A folder too small to support a fit keeps the settings' defaults (logged; `bot check` warns).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from pydantic import ValidationError

from bot.config import Settings
from bot.content.intents import IntentSet
from bot.routing.calibration import Calibration, content_id
from bot.routing.cross_fit import CrossFit
from bot.routing.index import VectorIndex
from bot.routing.scoring import LeftOut, intent_scores, top_two
from bot.routing.state import RoutingState, Scoring, intent_text_kinds

log = logging.getLogger(__name__)

ALGORITHM = "self-7"  # part of the cache key: a changed algorithm refits every folder once
THRESHOLDS = np.round(np.arange(0.05, 0.995, 0.01), 3)  # confidence grid, shared with `bot calibrate`
# Margins in steps of 0.01: with a folder's own few examples the confidence map's slope is only roughly
# known, so a coarse grid (0.05 then 0.1) could jump from "too loose" to "far too strict" and the fit's
# choice would swing with the encoder's rounding (int8 vs fp32 vectors of the same model)
MARGINS = tuple(float(m) for m in np.round(np.arange(0.0, 0.205, 0.01), 2))
MIN_INTENTS = 3  # fewer cannot show what an out-of-scope message looks like
MIN_QUERIES = 6  # examples that can be scored leave-one-out (an intent keeps its name and description)
QUERY_KINDS = ("example",)  # names and descriptions do not read like customer messages
# Share of in-scope pseudo-queries answered right the fit may give up to refuse more out-of-scope ones
# (`choose_point`). Chosen on BANKING77 train with `python scripts/tune_self_calibration.py
# [--self-train]`, 20 intents unknown, when the default was BOT_OOS_RATE=0 and a trained model was
# corrected by factors: there 0.01 refused 0.485 of the unknown intents' messages instead of 0.431 for 0.9
# points of in-scope accuracy; 0.005 bought nothing, 0.03 little more. On today's default path (cross-
# fitted, BOT_OOS_RATE=0.03) the share already refuses what the tolerance did: 0.01 refuses the same 0.478
# as 0 and costs 0.8 points in scope (0.681 vs 0.689 on the whole folder, precision 0.927 vs 0.923); 0.02
# would refuse 0.530 for 1.5 points. Kept at 0.01, the insurance against a point that answers nearly
# everything with a margin alone (at BOT_OOS_RATE=0 it took HWU64's stock refusals from 0.732 to 0.849).
TOLERANCE = 0.01


@dataclass(frozen=True)
class SelfFit:
    """A fitted operating point, what it promises, and how it was obtained."""

    calibration: Calibration
    in_scope_accuracy: float  # expected share of in-scope messages answered with the right intent
    oos_recall: float  # expected share of out-of-scope messages not answered
    queries: int
    seconds: float


def fit_confidence(top_scores: np.ndarray, right: np.ndarray) -> tuple[float, float]:
    """Slope and center of `sigmoid(slope * (score - center))`: a logistic fit of "top intent is right".

    Used by self-calibration and by `bot calibrate` (`bot.tuning.calibrate`) alike.
    """
    from sklearn.linear_model import LogisticRegression

    if right.all() or not right.any():  # one class only: keep a steep map around the observed scores
        return 20.0, float(np.median(top_scores)) - (0.1 if right.all() else -0.1)
    fit = LogisticRegression(C=100.0).fit(top_scores.reshape(-1, 1), right)
    slope = float(fit.coef_[0, 0])
    if slope <= 0:  # higher score must not mean lower confidence; fall back to a neutral map
        return 20.0, float(np.median(top_scores))
    return slope, float(-fit.intercept_[0] / slope)


@dataclass(frozen=True)
class PseudoBias:
    """How pseudo-queries differ from real messages, measured on BANKING77 train.csv (never on test) with
    `python scripts/measure_pseudo_bias.py --near 0.03 [--self-train]` on the default onnx-int8 backend.

    Measured where a fit picks its operating point: the (threshold, margin) points of the fit's own grid
    whose expected precision (with the factors shipped before) lies within 0.03 of the 0.90 target (out
    of scope: at a 20% share). The former medians over a wide grid (thresholds 0.3-0.8, margins 0-0.1)
    counted loose points no fit picks.

    Leave-one-out examples are harder than real messages (their intent just lost one of its few
    examples): real answers were right 1.18x as often and wrong 0.64x as often at the same threshold and
    margin (82 shipped intents). Intents left out whole are easier to refuse than real out-of-scope
    messages: real ones were accepted 1.49x as often (62 intents kept, the 20 of docs/evaluation.md out
    of scope). Over the former wide grid the same script gives 1.16, 0.65 and 1.36.
    """

    right_in: float = 1.18
    wrong_in: float = 0.64
    accepted_out: float = 1.49


FROZEN_BIAS = PseudoBias()
# A model fine-tuned on the folder's own texts (bot.tuning.self_training) has seen every pseudo-query: its
# leave-one-out examples look easier than real messages, the opposite of the stock encoder. Measured on
# BANKING77 train with the demo intents' self-trained model (`measure_pseudo_bias.py --near 0.03
# --self-train`, int8): real answers right 0.90x and wrong 2.24x as often as pseudo-queries; with the 20
# intents held out (model trained on the 62 kept), real out-of-scope messages accepted 1.83x as often as
# removed-intent pseudo-queries (over the former wide grid: 0.90, 2.33, 1.34).
TRAINED_BIAS = PseudoBias(right_in=0.90, wrong_in=2.24, accepted_out=1.83)
SELF_TRAINING_FILE = "self_training.json"  # in a model folder: trained on a folder's own texts


# A self-trained model with its cross-fit (`bot.routing.cross_fit`): each example is scored by a fold model
# that never saw it, so in scope the pseudo-queries behave almost like real messages (the final model saw
# every example, the fold models half of them): real answers right 1.04x and wrong 0.81x as often. Out of
# scope the fold models still learned the removed intent from its description and other examples, which
# pushes its examples away from the rest: real out-of-scope messages were accepted 2.3x as often.
# Measured on BANKING77 train with `measure_pseudo_bias.py --near 0.03 --self-train` (int8), iterated to a
# fixed point (the region near the target depends on the factors: 1.03/0.86/1.74 from the stock factors,
# then 1.06/0.81/2.16, 1.04/0.81/2.24, 1.04/0.81/2.30, 1.04/0.81/2.33).
CROSS_FIT_BIAS = PseudoBias(right_in=1.04, wrong_in=0.81, accepted_out=2.3)


def bias_for(model: str) -> PseudoBias:
    """The pseudo-query bias of this model without a cross-fit: a self-trained one (it has the marker file)
    or the stock one."""
    return TRAINED_BIAS if (Path(model) / SELF_TRAINING_FILE).is_file() else FROZEN_BIAS


@dataclass(frozen=True)
class Evidence:
    """How a model's pseudo-queries are scored: its cross-fit when it has one, and their bias factors."""

    bias: PseudoBias
    cross_fit: CrossFit | None

    @classmethod
    def of(cls, model: str, intents: IntentSet) -> Evidence:
        """The evidence `model` offers for the folder `intents`."""
        cross_fit = CrossFit.load(model, intents)
        return cls(CROSS_FIT_BIAS if cross_fit is not None else bias_for(model), cross_fit)

    @property
    def label(self) -> str:
        """How the pseudo-queries were scored, for the calibration's `data` (shown by `bot check` and the
        stats page): cross-fitted, or a self-trained model's own scores corrected by factors, which is
        what an edited folder gets until a restart trains on it."""
        if self.cross_fit is not None:
            return ", cross-fitted"
        if self.bias is TRAINED_BIAS:
            return ", self-trained model without a cross-fit for this folder version: restart to retrain"
        return ""

    def query_rows(self, state: RoutingState) -> np.ndarray:
        """`state`'s rows that serve as pseudo-queries: its examples (with a cross-fit: those in a fold)."""
        queries = query_rows(state)
        return queries if self.cross_fit is None else queries[self.cross_fit.folds[queries] >= 0]

    def pseudo_queries(self, state: RoutingState, settings: Settings) -> PseudoQueries:
        """`pseudo_queries` of every pseudo-query row of `state`."""
        return pseudo_queries(state, settings, self.query_rows(state), self.cross_fit)


@dataclass(frozen=True)
class Outcome:
    """Shares of the pseudo-queries one (threshold, margin) answers: right and wrong in scope, out of scope."""

    right_in: float
    wrong_in: float
    accepted_out: float

    def precision(self, rate: float, bias: PseudoBias) -> float:
        """Expected answer precision when `rate` of the traffic is out of scope."""
        right = (1 - rate) * bias.right_in * self.right_in
        answered = (
            right + (1 - rate) * bias.wrong_in * self.wrong_in + rate * bias.accepted_out * self.accepted_out
        )
        return right / answered if answered > 0 else 0.0

    def coverage(self, rate: float, bias: PseudoBias) -> float:
        """Expected share of messages answered as an intent."""
        inside = min(1.0, bias.right_in * self.right_in + bias.wrong_in * self.wrong_in)
        return (1 - rate) * inside + rate * min(1.0, bias.accepted_out * self.accepted_out)


EXPECTATION_RATES = (0.0, 0.05, 0.1, 0.2, 0.3)


@dataclass(frozen=True)
class PseudoQueries:
    """The folder's examples as pseudo-queries, in confidence space of the map fitted on them."""

    scoring: Scoring  # the fitted confidence map (and the settings' aggregation)
    conf_in: np.ndarray  # leave-one-out: confidence of the top intent
    lead_in: np.ndarray  # ... and its lead over the runner-up
    right: np.ndarray  # ... whether the top intent is the example's own
    conf_out: np.ndarray  # whole intent left out: confidence of the top (necessarily wrong) intent
    lead_out: np.ndarray


def query_rows(state: RoutingState) -> np.ndarray:
    """Rows of the folder's texts that serve as pseudo-queries (examples, not names or descriptions)."""
    kinds = np.array(intent_text_kinds(state.intents))
    return np.flatnonzero(np.isin(kinds, QUERY_KINDS))


class RawScores(NamedTuple):
    """Raw scores of pseudo-queries, one row per query: leave-one-out (top score, runner-up, whether the
    top intent is the example's own) and with the whole intent left out (top score, runner-up)."""

    score_in: np.ndarray
    second_in: np.ndarray
    right: np.ndarray
    score_out: np.ndarray
    second_out: np.ndarray


def raw_pseudo_scores(state: RoutingState, raw: Scoring, queries: np.ndarray) -> RawScores:
    """`RawScores` of example rows `queries` of `state`, scored against `state`'s own vectors."""
    owners = state.owners[queries]
    vectors = state.intent_index.vectors(queries)
    inside = intent_scores(state, vectors, raw, LeftOut(rows=np.arange(len(queries)), vectors=queries))
    outside = intent_scores(state, vectors, raw)
    outside[np.arange(len(queries)), owners] = -np.inf  # the whole intent left out
    top_in, score_in, second_in = top_two(inside)
    score_in = np.where(np.isfinite(score_in), score_in, -1.0)  # an intent with no vector left: far away
    _, score_out, second_out = top_two(outside)
    score_out = np.where(np.isfinite(score_out), score_out, -1.0)
    return RawScores(score_in, second_in, top_in == owners, score_out, second_out)


def cross_fitted_scores(
    state: RoutingState, raw: Scoring, queries: np.ndarray, cross_fit: CrossFit
) -> RawScores:
    """`RawScores` of `queries` (in their order) where each example is scored by the fold model that never
    saw it, against the folder's texts as that model encodes them (see `bot.routing.cross_fit`)."""
    folds = cross_fit.folds[queries]
    if (folds < 0).any():
        raise ValueError("every cross-fitted pseudo-query must be an example in a fold")
    merged = RawScores(*(np.empty(len(queries), dtype=kind) for kind in (float, float, bool, float, float)))
    for fold in range(cross_fit.vectors.shape[0]):
        mine = np.flatnonzero(folds == fold)
        if len(mine) == 0:
            continue
        index = VectorIndex(cross_fit.vectors[fold], model_id=state.model_id, content_hash=state.version)
        scored = raw_pseudo_scores(dataclasses.replace(state, intent_index=index), raw, queries[mine])
        for into, part in zip(merged, scored, strict=True):
            into[mine] = part
    return merged


def pseudo_queries(
    state: RoutingState, settings: Settings, queries: np.ndarray, cross_fit: CrossFit | None = None
) -> PseudoQueries:
    """Score every example leave-one-out (in scope) and with its whole intent removed (out of scope),
    fit the confidence map on the in-scope ones, and express both in it. With `cross_fit`, each example is
    scored by the model trained without it, and `queries` must all be examples it assigned to a fold."""
    raw = Scoring(
        1.0, 0.0, settings.aggregation_weight, settings.aggregation_depth, settings.prototype_weight
    )
    scored = (
        cross_fitted_scores(state, raw, queries, cross_fit)
        if cross_fit is not None
        else raw_pseudo_scores(state, raw, queries)
    )
    score_in, second_in, right, score_out, second_out = scored
    slope, center = fit_confidence(score_in, right)
    scoring = Scoring(slope, center, raw.aggregation_weight, raw.aggregation_depth, raw.prototype_weight)
    conf_in, conf_out = scoring.confidence(score_in), scoring.confidence(score_out)
    return PseudoQueries(
        scoring=scoring,
        conf_in=conf_in,
        lead_in=conf_in - scoring.confidence(second_in),
        right=right,
        conf_out=conf_out,
        lead_out=conf_out - scoring.confidence(second_out),
    )


def choose_point(
    points: list[tuple[float, float, Outcome, float]], target: float, tolerance: float
) -> tuple[float, float, Outcome, float] | None:
    """The (threshold, margin, outcome, precision) to use: among the points whose expected precision
    reaches `target`, those within `tolerance` of the most in-scope answers right, and of them the one
    that accepts the fewest out-of-scope pseudo-queries; if none reaches it, the most precise.

    Many points answer about as many in-scope messages (a threshold can stand in for a margin), and
    with no out-of-scope traffic expected (`BOT_OOS_RATE=0`) the choice between them was arbitrary: on
    one folder a threshold of 0.05 with a margin, accepting most off-topic messages, on another a real
    threshold. Giving up at most `tolerance` of the in-scope answers for the refusals costs little and
    makes the point refuse what it can.
    """
    reached = [p for p in points if p[3] >= target]
    if not reached:
        return max(points, key=lambda p: p[3], default=None)
    most = max(p[2].right_in for p in reached)
    near = [p for p in reached if p[2].right_in >= most - tolerance]
    return min(near, key=lambda p: (p[2].accepted_out, -p[2].right_in))


def can_fit(n_intents: int, query_owners: np.ndarray) -> bool:
    """Whether a folder of `n_intents` whose pseudo-queries belong to `query_owners` can show what to
    answer and what to refuse (else its operating point stays at the settings' defaults)."""
    return n_intents >= MIN_INTENTS and len(query_owners) >= MIN_QUERIES and len(np.unique(query_owners)) >= 2


def fit_self_calibration(
    state: RoutingState,
    settings: Settings,
    evidence: Evidence = Evidence(FROZEN_BIAS, None),
    tolerance: float = TOLERANCE,
) -> SelfFit | None:
    """Fit the folder's operating point; None (keep the defaults) when the folder is too small for it."""
    started = time.perf_counter()
    bias, cross_fit = evidence.bias, evidence.cross_fit
    queries = evidence.query_rows(state)
    n_intents = len(state.intents.intents)
    if not can_fit(n_intents, state.owners[queries]):
        log.info(
            "self-calibration skipped: %d intents with %d examples cannot show what to refuse (needs %d intents "
            "and %d examples); using the default threshold %.2f. Add examples, or run `bot calibrate`.",
            n_intents,
            len(queries),
            MIN_INTENTS,
            MIN_QUERIES,
            settings.threshold,
        )
        return None
    pseudo = pseudo_queries(state, settings, queries, cross_fit)
    scoring, right = pseudo.scoring, pseudo.right
    conf_in, conf_out, lead_in, lead_out = pseudo.conf_in, pseudo.conf_out, pseudo.lead_in, pseudo.lead_out
    slope, center, raw = scoring.slope, scoring.center, scoring
    rate, target = settings.oos_rate, settings.target_precision
    points: list[tuple[float, float, Outcome, float]] = []  # threshold, margin, outcome, precision
    for margin in MARGINS:
        clear_in, clear_out = lead_in >= margin, lead_out >= margin
        for threshold in THRESHOLDS:
            answered_in = clear_in & (conf_in >= threshold)
            outcome = Outcome(
                right_in=float((answered_in & right).mean()),
                wrong_in=float((answered_in & ~right).mean()),
                accepted_out=float((clear_out & (conf_out >= threshold)).mean()),
            )
            points.append((float(threshold), margin, outcome, outcome.precision(rate, bias)))
    best = choose_point(points, target, tolerance)
    if best is None:
        return None
    threshold, margin, outcome, _ = best
    calibration = Calibration(
        model_id=state.model_id,
        slope=round(slope, 4),
        center=round(center, 4),
        threshold=threshold,
        margin=margin,
        aggregation_weight=raw.aggregation_weight,
        aggregation_depth=raw.aggregation_depth,
        prototype_weight=raw.prototype_weight,
        intents_version=state.version,
        data=f"{len(queries)} examples of {n_intents} intents ({ALGORITHM}{evidence.label})",
        source="self",
        oos_rate=rate,
        target_precision=target,
        expected_precision=round(outcome.precision(rate, bias), 4),
        expected_coverage=round(outcome.coverage(rate, bias), 4),
        expected_by_oos_rate={
            f"{share:g}": (round(outcome.precision(share, bias), 4), round(outcome.coverage(share, bias), 4))
            for share in EXPECTATION_RATES
        },
    )
    in_scope = min(1.0, bias.right_in * outcome.right_in)
    oos_recall = 1 - min(1.0, bias.accepted_out * outcome.accepted_out)
    return SelfFit(
        calibration, round(in_scope, 4), round(oos_recall, 4), len(queries), time.perf_counter() - started
    )


def cache_key(state: RoutingState, settings: Settings, evidence: Evidence) -> str:
    """What a self-calibration depends on: the folder's texts, the model, what scored its pseudo-queries
    (a cross-fit, bias factors), the scoring and policy settings."""
    return content_id(
        {
            "algorithm": ALGORITHM,
            "evidence": [
                dataclasses.astuple(evidence.bias),
                evidence.cross_fit.key if evidence.cross_fit is not None else None,
            ],
            "intents": state.version,
            "model": state.model_id,
            "oos_rate": settings.oos_rate,
            "tolerance": TOLERANCE,
            "target": settings.target_precision,
            "aggregation": [
                settings.aggregation_weight,
                settings.aggregation_depth,
                settings.prototype_weight,
            ],
        }
    )


@dataclass(frozen=True)
class CachedFit:
    """A self-calibration and whether this load fitted it or found it in the cache."""

    calibration: Calibration | None
    fitted: bool


def cached_self_calibration(
    state: RoutingState, settings: Settings, evidence: Evidence | None = None
) -> CachedFit:
    """The folder's self-calibration from the cache, or fitted now and cached (None: defaults apply).
    `evidence`: what the model offers for this folder, if the caller has read it already."""
    evidence = evidence or Evidence.of(settings.model, state.intents)
    path = Path(settings.cache_dir) / "self_calibration" / f"{cache_key(state, settings, evidence)}.json"
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
            found = None if text.strip() == "null" else Calibration.model_validate_json(text)
            return CachedFit(found, fitted=False)
        except (OSError, ValidationError, ValueError):
            log.warning("ignoring unreadable self-calibration cache %s; refitting", path)
    fit = fit_self_calibration(state, settings, evidence)
    calibration = fit.calibration if fit is not None else None
    if fit is not None:
        log.info(
            "self-calibrated %s in %.2fs: threshold %.2f, margin %.2f, expected precision %.3f at %.0f%% "
            "out-of-scope traffic, in-scope accuracy %.3f",
            state.version,
            fit.seconds,
            fit.calibration.threshold,
            fit.calibration.margin,
            fit.calibration.expected_precision or 0.0,
            100 * settings.oos_rate,
            fit.in_scope_accuracy,
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(calibration.model_dump_json() if calibration else "null", encoding="utf-8")
        temporary.replace(path)  # atomic: a replica reading at the same time sees all or nothing
    except OSError as exc:  # a read-only cache only costs a refit next time
        log.warning("cannot cache self-calibration in %s: %s", path.parent, exc)
    return CachedFit(calibration, fitted=True)
