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
from typing import Any

import numpy as np
from pydantic import ValidationError

from bot.config import Settings
from bot.routing.calibration import Calibration, content_id
from bot.routing.pseudo_queries import FROZEN_BIAS, Evidence, PseudoBias, PseudoQueries, pseudo_queries
from bot.routing.state import RoutingState

log = logging.getLogger(__name__)

ALGORITHM = "self-7"  # part of the cache key: a changed algorithm refits every folder once
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


@dataclass(frozen=True)
class SelfFit:
    """A fitted operating point, what it promises, and how it was obtained."""

    calibration: Calibration
    in_scope_accuracy: float  # expected share of in-scope messages answered with the right intent
    oos_recall: float  # expected share of out-of-scope messages not answered
    queries: int
    seconds: float


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


def choose_point(
    points: list[tuple[float, float, Outcome, float]], target: float, tolerance: float
) -> tuple[float, float, Outcome, float] | None:
    """The (threshold, margin, outcome, precision) to use: among the points whose expected precision
    reaches `target`, those within `tolerance` of the most in-scope answers right, and of them the one
    that accepts the fewest out-of-scope pseudo-queries; if none reaches it, the most precise.

    Many points answer about as many in-scope messages (a threshold can stand in for a margin), and
    with no out-of-scope traffic expected (`BOT_OOS_RATE=0`) the choice between them is arbitrary: on
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
    bias = evidence.bias
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
    pseudo = pseudo_queries(state, settings, queries, evidence.cross_fit)
    rate, target = settings.oos_rate, settings.target_precision
    best = choose_point(grid_points(pseudo, rate, bias), target, tolerance)
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
        data=f"{len(queries)} examples of {n_intents} intents ({ALGORITHM}{evidence.label})",
        source="self",
        oos_rate=rate,
        target_precision=target,
        **expectations(outcome, rate, bias),
    )
    in_scope = min(1.0, bias.right_in * outcome.right_in)
    oos_recall = 1 - min(1.0, bias.accepted_out * outcome.accepted_out)
    return SelfFit(
        calibration, round(in_scope, 4), round(oos_recall, 4), len(queries), time.perf_counter() - started
    )


def grid_points(
    pseudo: PseudoQueries, rate: float, bias: PseudoBias
) -> list[tuple[float, float, Outcome, float]]:
    """Every (threshold, margin) of the grid with its outcome on the pseudo-queries and its expected
    precision when `rate` of the traffic is out of scope."""
    points: list[tuple[float, float, Outcome, float]] = []
    for margin in MARGINS:
        clear_in, clear_out = pseudo.lead_in >= margin, pseudo.lead_out >= margin
        for threshold in THRESHOLDS:
            answered_in = clear_in & (pseudo.conf_in >= threshold)
            outcome = Outcome(
                right_in=float((answered_in & pseudo.right).mean()),
                wrong_in=float((answered_in & ~pseudo.right).mean()),
                accepted_out=float((clear_out & (pseudo.conf_out >= threshold)).mean()),
            )
            points.append((float(threshold), margin, outcome, outcome.precision(rate, bias)))
    return points


def expectations(outcome: Outcome, rate: float, bias: PseudoBias) -> dict[str, Any]:
    """What a point promises, as the calibration's `expected_*` fields: at `rate`, and at other shares."""
    return {
        "expected_precision": round(outcome.precision(rate, bias), 4),
        "expected_coverage": round(outcome.coverage(rate, bias), 4),
        "expected_by_oos_rate": {
            f"{share:g}": (round(outcome.precision(share, bias), 4), round(outcome.coverage(share, bias), 4))
            for share in EXPECTATION_RATES
        },
    }


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
