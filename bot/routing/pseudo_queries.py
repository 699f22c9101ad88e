"""The folder's own evidence for self-calibration: its examples as pseudo-queries, and how they differ.

Each example is scored leave-one-out (in scope: it should rank its own intent) and with its whole
intent removed (out of scope: the nearest kind of message the folder does not cover); a self-trained
model's examples are scored by the fold model that never saw them (`bot.routing.cross_fit`). Real
messages behave somewhat differently from these pseudo-queries; `PseudoBias` holds by how much, as
measured on BANKING77 train. `bot.routing.self_calibration` picks the operating point from them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from bot.config import Settings
from bot.content.intents import IntentSet
from bot.content.off_topic_set import off_topic_texts
from bot.routing.cross_fit import CrossFit
from bot.routing.index import VectorIndex
from bot.routing.scoring import LeftOut, intent_scores, top_two
from bot.routing.state import RoutingState, Scoring, intent_text_kinds

if TYPE_CHECKING:
    from bot.routing.encoders import Encoder

QUERY_KINDS = ("example",)  # names and descriptions do not read like customer messages
# A shipped off-topic message (bot.content.off_topic_set) scoring at least this quantile of the in-scope
# pseudo-queries answered right is one the folder covers ("what's the weather" to a weather assistant), not
# off-topic: it is left out of the evidence. Chosen on BANKING77 train with
# `python scripts/experiments/tune_off_topic_evidence.py` (docs/evaluation.md, "General off-topic evidence").
COVERED_QUANTILE = 0.25


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
    `python scripts/experiments/measure_pseudo_bias.py --near 0.03 [--self-train]` on the default onnx-int8 backend.

    Measured where a fit picks its operating point: the (threshold, margin) points of the fit's own grid
    whose expected precision lies within 0.03 of the 0.90 target (out of scope: at a 20% share).

    Leave-one-out examples are harder than real messages (their intent just lost one of its few
    examples): real answers were right 1.18x as often and wrong 0.64x as often at the same threshold and
    margin (82 shipped intents). Intents left out whole are easier to refuse than real out-of-scope
    messages: real ones were accepted 1.49x as often (62 intents kept, the 20 of docs/evaluation.md out
    of scope). Earlier measurements: docs/evaluation.md, "Bias factors".
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
# removed-intent pseudo-queries.
TRAINED_BIAS = PseudoBias(right_in=0.90, wrong_in=2.24, accepted_out=1.83)
SELF_TRAINING_FILE = "self_training.json"  # in a model folder: trained on a folder's own texts


# A self-trained model with its cross-fit (`bot.routing.cross_fit`): each example is scored by a fold model
# that never saw it, so in scope the pseudo-queries behave almost like real messages (the final model saw
# every example, the fold models half of them): real answers right 1.04x and wrong 0.81x as often. Out of
# scope the fold models still learned the removed intent from its description and other examples, which
# pushes its examples away from the rest: real out-of-scope messages were accepted 2.3x as often.
# Measured on BANKING77 train with `measure_pseudo_bias.py --near 0.03 --self-train` (int8), iterated to a
# fixed point, since the region near the target depends on the factors (docs/evaluation.md, "Cold start").
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
    # the shipped general off-topic messages as this model encodes them (None: siblings are the only
    # off-topic evidence)
    off_topic: np.ndarray | None = field(default=None, compare=False)

    @classmethod
    def of(cls, model: str, intents: IntentSet, encoder: Encoder | None = None) -> Evidence:
        """The evidence `model` offers for the folder `intents`; with `encoder` (the model's), the shipped
        off-topic messages too (their vectors come from the embedding cache after the first time)."""
        cross_fit = CrossFit.load(model, intents)
        bias = CROSS_FIT_BIAS if cross_fit is not None else bias_for(model)
        general = encoder.encode(list(off_topic_texts())) if encoder is not None else None
        return cls(bias, cross_fit, general)

    @property
    def label(self) -> str:
        """How the pseudo-queries were scored, for the calibration's `data` (shown by `bot check` and the
        stats page): cross-fitted, or a self-trained model's own scores corrected by factors, which is
        what an edited folder gets until a restart trains on it."""
        if self.cross_fit is not None:
            return ", cross-fitted"
        if self.bias is TRAINED_BIAS:
            return ", self-trained on another folder version: a server retrains it in the background once this version is live"
        return ""

    def query_rows(self, state: RoutingState) -> np.ndarray:
        """`state`'s rows that serve as pseudo-queries: its examples (with a cross-fit: those in a fold)."""
        queries = query_rows(state)
        return queries if self.cross_fit is None else queries[self.cross_fit.folds[queries] >= 0]

    def pseudo_queries(self, state: RoutingState, settings: Settings) -> PseudoQueries:
        """`pseudo_queries` of every pseudo-query row of `state` (and of the shipped off-topic messages)."""
        return pseudo_queries(state, settings, self.query_rows(state), self.cross_fit, self.off_topic)


@dataclass(frozen=True)
class PseudoQueries:
    """The folder's examples as pseudo-queries, in confidence space of the map fitted on them."""

    scoring: Scoring  # the fitted confidence map (and the settings' aggregation)
    conf_in: np.ndarray  # leave-one-out: confidence of the top intent
    lead_in: np.ndarray  # ... and its lead over the runner-up
    right: np.ndarray  # ... whether the top intent is the example's own
    conf_out: np.ndarray  # whole intent left out: confidence of the top (necessarily wrong) intent
    lead_out: np.ndarray
    # leave-one-out again: how far (in confidence) the example's own intent trails the top one (0 when it
    # is the top one), and how many intents rank above it; a clarify question offers the intents within
    # the margin of the top one, so these say whether the question would hold the right option
    own_gap: np.ndarray
    own_rank: np.ndarray
    # the shipped off-topic messages the folder does not cover, scored against the whole folder: real
    # off-topic messages, no bias to correct (empty without that evidence)
    conf_general: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lead_general: np.ndarray = field(default_factory=lambda: np.zeros(0))
    general_covered: int = 0  # shipped messages left out as covered by the folder
    # the raw score from which a message counts as covered by the folder (`covered_cut`; None: no answer
    # was right, so nothing tells what the folder covers)
    cut: float | None = None

    @property
    def has_general(self) -> bool:
        """Whether general off-topic evidence is at hand."""
        return len(self.conf_general) > 0

    @classmethod
    def scored(cls, scores: RawScores, scoring: Scoring) -> PseudoQueries:
        """Raw pseudo-query scores expressed in the confidence map `scoring` (no general evidence yet)."""
        score_in, second_in, right, score_out, second_out, own_in, rank_in = scores
        conf_in, conf_out = scoring.confidence(score_in), scoring.confidence(score_out)
        return cls(
            scoring=scoring,
            conf_in=conf_in,
            lead_in=conf_in - scoring.confidence(second_in),
            right=right,
            conf_out=conf_out,
            lead_out=conf_out - scoring.confidence(second_out),
            own_gap=np.where(right, 0.0, conf_in - scoring.confidence(own_in)),
            own_rank=rank_in,
        )


def query_rows(state: RoutingState) -> np.ndarray:
    """Rows of the folder's texts that serve as pseudo-queries (examples, not names or descriptions)."""
    kinds = np.array(intent_text_kinds(state.intents))
    return np.flatnonzero(np.isin(kinds, QUERY_KINDS))


class RawScores(NamedTuple):
    """Raw scores of pseudo-queries, one row per query: leave-one-out (top score, runner-up, whether the
    top intent is the example's own) and with the whole intent left out (top score, runner-up), then the
    own intent's leave-one-out score and rank."""

    score_in: np.ndarray
    second_in: np.ndarray
    right: np.ndarray
    score_out: np.ndarray
    second_out: np.ndarray
    own_in: np.ndarray  # leave-one-out score of the example's own intent
    rank_in: np.ndarray  # intents scoring above it (0: it is the top intent)


def raw_pseudo_scores(state: RoutingState, raw: Scoring, queries: np.ndarray) -> RawScores:
    """`RawScores` of example rows `queries` of `state`, scored against `state`'s own vectors."""
    owners = state.owners[queries]
    vectors = state.intent_index.vectors(queries)
    inside = intent_scores(state, vectors, raw, LeftOut(rows=np.arange(len(queries)), vectors=queries))
    outside = intent_scores(state, vectors, raw)
    outside[np.arange(len(queries)), owners] = -np.inf  # the whole intent left out
    top_in, score_in, second_in = top_two(inside)
    own = inside[np.arange(len(queries)), owners]
    rank = (inside > own[:, None]).sum(axis=1)
    score_in = np.where(np.isfinite(score_in), score_in, -1.0)  # an intent with no vector left: far away
    _, score_out, second_out = top_two(outside)
    score_out = np.where(np.isfinite(score_out), score_out, -1.0)
    own = np.where(np.isfinite(own), own, -1.0)
    return RawScores(score_in, second_in, top_in == owners, score_out, second_out, own, rank)


def cross_fitted_scores(
    state: RoutingState, raw: Scoring, queries: np.ndarray, cross_fit: CrossFit
) -> RawScores:
    """`RawScores` of `queries` (in their order) where each example is scored by the fold model that never
    saw it, against the folder's texts as that model encodes them (see `bot.routing.cross_fit`)."""
    folds = cross_fit.folds[queries]
    if (folds < 0).any():
        raise ValueError("every cross-fitted pseudo-query must be an example in a fold")
    kinds = (float, float, bool, float, float, float, np.int64)
    merged = RawScores(*(np.empty(len(queries), dtype=kind) for kind in kinds))
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
    state: RoutingState,
    settings: Settings,
    queries: np.ndarray,
    cross_fit: CrossFit | None = None,
    off_topic: np.ndarray | None = None,
) -> PseudoQueries:
    """Score every example leave-one-out (in scope) and with its whole intent removed (out of scope),
    fit the confidence map on the in-scope ones, and express both in it. With `cross_fit`, each example is
    scored by the model trained without it, and `queries` must all be examples it assigned to a fold.
    With `off_topic` (vectors of the shipped off-topic messages), those the folder does not cover too."""
    raw = Scoring.from_settings(settings).raw()
    scored = (
        cross_fitted_scores(state, raw, queries, cross_fit)
        if cross_fit is not None
        else raw_pseudo_scores(state, raw, queries)
    )
    slope, center = fit_confidence(scored.score_in, scored.right)
    pseudo = PseudoQueries.scored(scored, dataclasses.replace(raw, slope=slope, center=center))
    pseudo = dataclasses.replace(pseudo, cut=covered_cut(scored.score_in[scored.right]))
    return with_general(pseudo, state, off_topic)


def with_general(pseudo: PseudoQueries, state: RoutingState, off_topic: np.ndarray | None) -> PseudoQueries:
    """`pseudo` with the shipped off-topic messages (vectors `off_topic`) scored against `state`'s folder,
    those scoring at least `pseudo.cut` left out as covered, so nothing the folder answers counts as
    off-topic (unchanged without such messages or a cut)."""
    cut = pseudo.cut
    if off_topic is None or len(off_topic) == 0 or cut is None:
        return pseudo
    scoring = pseudo.scoring
    _, top, second = top_two(intent_scores(state, off_topic, scoring.raw()))
    top = np.where(np.isfinite(top), top, -1.0)
    kept = ~covered(top, cut)
    conf = scoring.confidence(top[kept])
    return dataclasses.replace(
        pseudo,
        conf_general=conf,
        lead_general=conf - scoring.confidence(second[kept]),
        general_covered=int((~kept).sum()),
    )


def covered_cut(right_scores: np.ndarray) -> float | None:
    """The raw score from which a message counts as covered by the folder: `COVERED_QUANTILE` of its
    in-scope pseudo-queries answered right (`right_scores`; None when there are none)."""
    return float(np.quantile(right_scores, COVERED_QUANTILE)) if len(right_scores) else None


def covered(top_scores: np.ndarray, cut: float | None) -> np.ndarray:
    """Which messages (by their top intent's raw score) the folder covers: those scoring at least its
    `covered_cut` (none without a cut)."""
    top = np.where(np.isfinite(top_scores), top_scores, -1.0)
    return np.asarray(top >= cut) if cut is not None else np.zeros(len(top), dtype=bool)
