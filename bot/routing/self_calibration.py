"""Self-calibration: an operating point (confidence map, threshold, margin) from the intents folder alone.

A new business has no labelled messages, and BANKING77's defaults do not transfer: another domain's
cosines sit at another level, so a fixed threshold hands off most customers it could answer. The folder
itself holds two kinds of evidence:

- **in scope**: each example, scored leave-one-out (it does not find itself), should rank its own intent;
- **out of scope**: the same example scored with its whole intent removed is a message the folder does
  not cover, and the nearest kind of such message (a sibling request), so the hardest to refuse.

The confidence map is a logistic fit of "the top intent is right" on the in-scope pseudo-queries; the
threshold and margin are the pair with the most in-scope answers whose precision reaches the target when
`oos_rate` of the traffic is out of scope. A near tie (the runner-up within the margin) is asked as a
clarify question; one whose options hold the right intent counts `CLARIFY_WORTH` of a right answer, and
at most `CLARIFY_CAP` of the traffic may be asked, or what the point the precision target needs asks if
that is more; a bot builder's `clarify_limit` is a ceiling on both (#27 item 3). What the point promises comes with a lower
bound the pseudo-queries' number supports (`bot.routing.promise`, #27 item 4). Fits take well under a second for 150 intents and are cached
by intents version and model (`cached_self_calibration`), so restarts and reloads of an unchanged folder
do not refit. A folder too small to support a fit keeps the settings' defaults (logged; `bot check` warns).

Learned examples (reviewed customer messages made live without a YAML edit) are a third kind of evidence,
and the best one: real messages with a person's label. A folder with some is refitted on its YAML
examples (pseudo-queries, corrected by the bias factors) and its learned ones (scored against the live
folder leave-one-out, and with their intent removed, as they are: no factor), each by its count
(`Learned`, #31 item 4; why: `bot.routing.learned`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from bot.config import Settings
from bot.content.off_topic_set import off_topic_version
from bot.routing.calibration import Calibration, content_id
from bot.routing.learned import Learned, learned_queries, reviewed_shares
from bot.routing.promise import Outcome, Reviewed
from bot.routing.pseudo_queries import (
    COVERED_QUANTILE,
    FROZEN_BIAS,
    Evidence,
    PseudoBias,
    PseudoQueries,
    pseudo_queries,
    with_general,
)
from bot.routing.state import RoutingState

log = logging.getLogger(__name__)

ALGORITHM = "self-10"  # part of the cache key: a changed algorithm refits every folder once
THRESHOLDS = np.round(np.arange(0.05, 0.995, 0.01), 3)  # confidence grid, shared with `bot calibrate`
# Margins in steps of 0.01: with a folder's own few examples the confidence map's slope is only roughly
# known, so a coarse grid (0.05 then 0.1) could jump from "too loose" to "far too strict" and the fit's
# choice would swing with the encoder's rounding (int8 vs fp32 vectors of the same model)
MARGINS = tuple(float(m) for m in np.round(np.arange(0.0, 0.205, 0.01), 2))
MIN_INTENTS = 3  # fewer cannot show what an out-of-scope message looks like
MIN_QUERIES = 6  # examples that can be scored leave-one-out (an intent keeps its name and description)
# Share of in-scope pseudo-queries answered right the fit may give up to refuse more out-of-scope ones
# (`choose_point`): insurance against a point that answers nearly everything with a margin alone, chosen
# on BANKING77 train with `python scripts/experiments/tune_self_calibration.py [--self-train]`
# (docs/evaluation.md, "The in-scope tolerance").
TOLERANCE = 0.01
# A clarify question whose options hold the right intent: the customer gets the right answer one click
# later, so it is worth part of a right answer (and counts as none in the answer precision). Chosen on
# BANKING77 train with `python scripts/experiments/tune_clarify.py` (docs/evaluation.md, "Clarify on near
# ties (#27)").
CLARIFY_WORTH = 0.5
# At most this share of the traffic (pseudo-queries, out of scope at `BOT_OOS_RATE`) is asked which intent
# is meant: a bot that asks back on every other message is tiring however right its options.
CLARIFY_CAP = 0.10


@dataclass(frozen=True)
class SelfFit:
    """A fitted operating point, what it promises, and how it was obtained."""

    calibration: Calibration
    outcome: Outcome  # what the point does to the pseudo-queries (shares of `queries`)
    in_scope_accuracy: float  # expected share of in-scope messages answered with the right intent
    oos_recall: float  # expected share of out-of-scope messages not answered
    queries: int
    seconds: float


EXPECTATION_RATES = (0.0, 0.05, 0.1, 0.2, 0.3)
LEARNED_KEPT = 8  # cached fits kept per YAML folder with learned examples (`_prune_learned`)


def choose_point(
    points: list[tuple[float, float, Outcome, float]],
    target: float,
    tolerance: float,
    *,
    rate: float = 0.0,
    worth: float = CLARIFY_WORTH,
    cap: float = CLARIFY_CAP,
    lift: bool = True,
    limit: float | None = None,
) -> tuple[float, float, Outcome, float] | None:
    """The (threshold, margin, outcome, precision) to use: among the points whose expected precision
    reaches `target`, those within `tolerance` of the most in-scope messages served (answered right, plus
    clarified with the right option at `worth`), and of them the one that accepts the fewest out-of-scope
    pseudo-queries; if none reaches it, the most precise.

    The worth may make the fit ask more, but not beyond `cap` of the traffic (`rate` of it out of scope),
    or beyond what the point chosen with a clarify counted as a miss (`worth` 0) asks already, if that is
    more: on the stock encoder the demo bank's best point without any worth asks 27% of BANKING77 train
    (a margin does the refusing there), and capping it at 10% would answer 11 points fewer of it right (docs/evaluation.md, "Clarify on near ties (#27)"). `lift=False` caps it anyway (that
    experiment's row). `limit`, a bot builder's `BOT_CLARIFY_LIMIT`, is a ceiling on all of it: points
    asking more are never considered, so a limit tightens the choice and never loosens it.

    Many points answer about as many in-scope messages (a threshold can stand in for a margin), and
    with no out-of-scope traffic expected (`BOT_OOS_RATE=0`) the choice between them is arbitrary: on
    one folder a threshold of 0.05 with a margin, accepting most off-topic messages, on another a real
    threshold. Giving up at most `tolerance` of the in-scope answers for the refusals costs little and
    makes the point refuse what it can.
    """
    if limit is not None:
        points = [p for p in points if p[2].clarify_rate(rate) <= limit + 1e-9]
    without = _best(points, target, tolerance, 0.0)  # a clarify counted as a miss (before #27)
    if worth == 0:
        return without
    if lift and without is not None and without[3] >= target:
        cap = max(cap, without[2].clarify_rate(rate))
    return _best([p for p in points if p[2].clarify_rate(rate) <= cap + 1e-9], target, tolerance, worth)


def _best(
    points: list[tuple[float, float, Outcome, float]], target: float, tolerance: float, worth: float
) -> tuple[float, float, Outcome, float] | None:
    """`choose_point` among `points`, with no bound on clarify questions."""
    reached = [p for p in points if p[3] >= target]
    if not reached:
        return max(points, key=lambda p: p[3], default=None)
    most = max(p[2].value(worth) for p in reached)
    near = [p for p in reached if p[2].value(worth) >= most - tolerance]
    return min(
        near,
        key=lambda p: (p[2].accepted_out, p[2].accepted_general or 0.0, -p[2].value(worth), p[2].clarify_in),
    )


def can_fit(n_intents: int, query_owners: np.ndarray) -> bool:
    """Whether a folder of `n_intents` whose pseudo-queries belong to `query_owners` can show what to
    answer and what to refuse (else its operating point stays at the settings' defaults)."""
    return n_intents >= MIN_INTENTS and len(query_owners) >= MIN_QUERIES and len(np.unique(query_owners)) >= 2


def fit_self_calibration(
    state: RoutingState,
    settings: Settings,
    evidence: Evidence = Evidence(FROZEN_BIAS, None),
    tolerance: float = TOLERANCE,
    worth: float = CLARIFY_WORTH,
    learned: Learned | None = None,
) -> SelfFit | None:
    """Fit the folder's operating point; None (keep the defaults) when the folder is too small for it.
    `state` is the YAML folder; `learned`, its learned examples in the live folder, refits the point with
    them. `tolerance` and `worth`: see `choose_point` (the experiments that chose them vary them)."""
    started = time.perf_counter()
    bias = evidence.bias
    queries = evidence.query_rows(state)
    n_intents = len(state.intents.intents)
    if not can_fit(n_intents, state.owners[queries]):
        _log_too_small(n_intents, len(queries), settings)
        return None
    pseudo = pseudo_queries(state, settings, queries, evidence.cross_fit)
    # the shipped off-topic messages against the folder that answers: the live one when it has learned
    # examples (their vectors cover more of them), left out by the YAML fit's cut
    pseudo = with_general(pseudo, learned.state if learned is not None else state, evidence.off_topic)
    reviewed = learned_queries(learned, pseudo.scoring) if learned is not None else None
    rate, target = settings.oos_rate, settings.target_precision
    points = grid_points(
        pseudo, rate, bias, settings.max_clarify_options, settings.oos_siblings, reviewed=reviewed
    )
    best = choose_point(points, target, tolerance, rate=rate, worth=worth, limit=settings.clarify_limit)
    if best is None:
        return None
    threshold, margin, outcome, _ = best
    calibration = Calibration(
        model_id=state.model_id,
        slope=round(pseudo.scoring.slope, 4),
        center=round(pseudo.scoring.center, 4),
        threshold=threshold,
        margin=margin,
        aggregation_weight=pseudo.scoring.aggregation_weight,
        aggregation_depth=pseudo.scoring.aggregation_depth,
        prototype_weight=pseudo.scoring.prototype_weight,
        intents_version=state.version,
        data=_described(len(queries), n_intents, reviewed, evidence),
        source="self",
        oos_rate=rate,
        target_precision=target,
        **expectations(outcome, rate, bias, len(queries), len(pseudo.conf_general)),
    )
    in_scope = min(1.0, outcome.in_scope(bias)[0])
    oos_recall = 1 - min(1.0, outcome.accepted(bias))
    return SelfFit(
        calibration,
        outcome,
        round(in_scope, 4),
        round(oos_recall, 4),
        len(queries),
        time.perf_counter() - started,
    )


def _log_too_small(n_intents: int, queries: int, settings: Settings) -> None:
    log.info(
        "self-calibration skipped: %d intents with %d examples cannot show what to refuse (needs %d intents "
        "and %d examples); using the default threshold %.2f. Add examples, or run `bot calibrate`.",
        n_intents,
        queries,
        MIN_INTENTS,
        MIN_QUERIES,
        settings.threshold,
    )


def _described(queries: int, n_intents: int, reviewed: PseudoQueries | None, evidence: Evidence) -> str:
    """The calibration's `data`: what it was fitted on (shown by `bot check` and the stats page)."""
    learned = f" and {len(reviewed.right)} learned" if reviewed is not None else ""
    return f"{queries} examples{learned} of {n_intents} intents ({ALGORITHM}{evidence.label})"


def grid_points(
    pseudo: PseudoQueries,
    rate: float,
    bias: PseudoBias,
    max_options: int = 3,
    siblings: float = 1.0,
    reviewed: PseudoQueries | None = None,
) -> list[tuple[float, float, Outcome, float]]:
    """Every (threshold, margin) of the grid with its outcome on the pseudo-queries and its expected
    precision when `rate` of the traffic is out of scope. As `bot.routing.policy.decide` does, a query whose
    top intent passes the threshold with the runner-up within the margin is asked; the question offers the
    intents within the margin, at most `max_options`, so it holds the right one when the example's own
    intent trails the top by less than the margin and ranks among the first `max_options`. The off-topic
    traffic is `siblings` like the removed-intent pseudo-queries and the rest like the shipped general
    off-topic messages, where the folder has that evidence. `reviewed`: learned examples scored in the same
    confidence map, blended in by their count (`Reviewed`)."""
    points: list[tuple[float, float, Outcome, float]] = []
    count = len(reviewed.right) if reviewed is not None else 0
    weight = count / (count + len(pseudo.right))
    offered = pseudo.own_rank < max_options
    general = pseudo.has_general
    for margin in MARGINS:
        clear_in, clear_out = pseudo.lead_in >= margin, pseudo.lead_out >= margin
        clear_general = pseudo.lead_general >= margin
        holds_right = offered & (pseudo.own_gap < margin)
        shares_of = reviewed_shares(reviewed, margin, max_options) if reviewed is not None else None
        for threshold in THRESHOLDS:
            passed_in, passed_out = pseudo.conf_in >= threshold, pseudo.conf_out >= threshold
            passed_general = pseudo.conf_general >= threshold
            answered_in = clear_in & passed_in
            asked_in = passed_in & ~clear_in
            outcome = Outcome(
                right_in=float((answered_in & pseudo.right).mean()),
                wrong_in=float((answered_in & ~pseudo.right).mean()),
                accepted_out=float((clear_out & passed_out).mean()),
                clarify_in=float(asked_in.mean()),
                clarify_right=float((asked_in & holds_right).mean()),
                clarify_out=float((passed_out & ~clear_out).mean()),
                accepted_general=float((clear_general & passed_general).mean()) if general else None,
                clarify_general=float((passed_general & ~clear_general).mean()) if general else 0.0,
                siblings=siblings,
                reviewed=Reviewed(*shares_of(threshold), count, weight) if shares_of else None,
            )
            points.append((float(threshold), margin, outcome, outcome.precision(rate, bias)))
    return points


def expectations(
    outcome: Outcome, rate: float, bias: PseudoBias, count: int, general_count: int = 0
) -> dict[str, Any]:
    """What a point promises, as the calibration's `expected_*` fields: at `rate` (with the lower bound on
    precision that `count` pseudo-queries and `general_count` general off-topic messages support, rounded
    down), and at other shares."""
    low = outcome.precision_low(count, rate, bias, general_count)
    return {
        "expected_precision": round(outcome.precision(rate, bias), 4),
        "expected_precision_low": float(np.floor(low * 1e4) / 1e4),
        "expected_clarify": round(outcome.clarify_rate(rate), 4),
        "expected_coverage": round(outcome.coverage(rate, bias), 4),
        "expected_by_oos_rate": {
            f"{share:g}": (round(outcome.precision(share, bias), 4), round(outcome.coverage(share, bias), 4))
            for share in EXPECTATION_RATES
        },
    }


def cache_key(
    state: RoutingState, settings: Settings, evidence: Evidence, learned: Learned | None = None
) -> str:
    """What a self-calibration depends on: the folder's texts (and learned ones), the model, what scored
    its pseudo-queries (a cross-fit, bias factors), the scoring and policy settings."""
    return content_id(
        {
            "algorithm": ALGORITHM,
            "learned": learned.state.version if learned is not None else None,
            "evidence": [
                dataclasses.astuple(evidence.bias),
                evidence.cross_fit.key if evidence.cross_fit is not None else None,
            ],
            "intents": state.version,
            "model": state.model_id,
            "oos_rate": settings.oos_rate,
            # the general off-topic evidence: the shipped set, how covered messages are told apart, the mix
            "off_topic": [
                off_topic_version() if evidence.off_topic is not None else None,
                COVERED_QUANTILE,
                settings.oos_siblings,
            ],
            "tolerance": TOLERANCE,
            "clarify": [CLARIFY_WORTH, CLARIFY_CAP, settings.max_clarify_options, settings.clarify_limit],
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
    state: RoutingState, settings: Settings, evidence: Evidence | None = None, learned: Learned | None = None
) -> CachedFit:
    """The folder's self-calibration from the cache, or fitted now and cached (None: defaults apply).
    `evidence`: what the model offers for this folder, if the caller has read it already; `learned`: the
    folder's learned examples (`state` is then the YAML folder)."""
    evidence = evidence or Evidence.of(settings.model, state.intents)
    folder = Path(settings.cache_dir) / "self_calibration"
    path = folder / f"{cache_key(state, settings, evidence)}.json"
    if learned is not None:  # one file per set of learned examples, under the YAML folder's key
        path = folder / "learned" / f"{path.stem}-{cache_key(state, settings, evidence, learned)}.json"
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
            found = None if text.strip() == "null" else Calibration.model_validate_json(text)
            return CachedFit(found, fitted=False)
        except (OSError, ValidationError, ValueError):
            log.warning("ignoring unreadable self-calibration cache %s; refitting", path)
    fit = fit_self_calibration(state, settings, evidence, learned=learned)
    calibration = fit.calibration if fit is not None else None
    if fit is not None:
        log.info(
            "self-calibrated %s in %.2fs: threshold %.2f, margin %.2f, expected precision %.3f (at least "
            "%.3f) at %.0f%% out-of-scope traffic, in-scope accuracy %.3f, %.1f%% asked to clarify",
            state.version,
            fit.seconds,
            fit.calibration.threshold,
            fit.calibration.margin,
            fit.calibration.expected_precision or 0.0,
            fit.calibration.expected_precision_low or 0.0,
            100 * settings.oos_rate,
            fit.in_scope_accuracy,
            100 * (fit.calibration.expected_clarify or 0.0),
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(calibration.model_dump_json() if calibration else "null", encoding="utf-8")
        temporary.replace(path)  # atomic: a replica reading at the same time sees all or nothing
        if learned is not None:
            _prune_learned(path)
    except OSError as exc:  # a read-only cache only costs a refit next time
        log.warning("cannot cache self-calibration in %s: %s", path.parent, exc)
    return CachedFit(calibration, fitted=True)


def _prune_learned(path: Path) -> None:
    """Keep the newest `LEARNED_KEPT` fits of one YAML folder with learned examples: every review makes a
    new set, and only the latest (or one a replica has not caught up with yet) is ever read again."""
    base = path.stem.split("-", 1)[0]
    fits = sorted(path.parent.glob(f"{base}-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in fits[LEARNED_KEPT:]:
        old.unlink(missing_ok=True)
