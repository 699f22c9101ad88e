"""Which logged decisions are on the live confidence scale, so the off-topic share estimate
(`bot.insights.off_topic_traffic`) can read their confidences against the live folder's reference."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bot.routing.calibration import same_model
from bot.routing.state import RoutingState

# A calibration other than the live one counts as the live confidence scale when this share of its
# decisions' logged confidences are the live map's of their raw scores (a stray row with another rounding
# or map must not drop a whole calibration; a different map agrees on far fewer, see on_live_scale).
AGREEING = 0.95


def on_live_scale(
    confidences: np.ndarray,
    calibration_ids: Sequence[str],
    models: Sequence[str | None],
    top_scores: Sequence[float | None],
    state: RoutingState,
) -> np.ndarray:
    """Which decisions' confidences the live reference can be read against: those routed by the live model
    (on any backend) whose calibration is the live one, or logged confidences the live map gives their raw
    scores (a whole calibration in or out, by `AGREEING`). Per decision: `confidences` logged, `models` and
    `top_scores` (its top candidate's raw score; None: unknown) empty when not known at all.

    Why not the calibration id alone: a learned example refits the operating point (threshold, margin,
    expected figures: a new id after every review or resolve) but keeps the confidence map fitted on the
    YAML examples, so the id would keep only the traffic since the last review. Why not re-map every
    decision's raw score through the live map: one logged before a YAML edit was scored against another
    folder, whose raw scores the live reference does not describe, and before a model change against other
    vectors. Why per calibration, not per decision: the maps of two calibrations agree on saturated
    confidences, so a per-decision test would keep an old map's decisions near 0 and 1 only, biasing the
    share. Without raw scores (an export's candidates unreadable) only the live calibration's count."""
    n = len(confidences)
    ids = np.asarray(calibration_ids, dtype=object)
    live = ids == state.calibration_id
    if len(top_scores) == n and n:
        known = np.array([s is not None for s in top_scores], dtype=bool)
        scores = np.array([s if s is not None else np.nan for s in top_scores], dtype=np.float64)
        mapped = np.asarray(state.scoring.confidence(scores), dtype=np.float64)
        # both logged figures are rounded to 4 decimals: the score's rounding moves the mapped confidence
        # by up to slope * c * (1 - c) * 0.00005
        slack = 5e-5 + state.scoring.slope * mapped * (1 - mapped) * 5e-5 + 1e-6
        agrees = known & (np.abs(mapped - confidences) <= slack)
        _, group = np.unique(ids, return_inverse=True)
        checked = np.bincount(group, weights=known.astype(np.float64))
        agreed = np.bincount(group, weights=agrees.astype(np.float64))
        same_map = (checked > 0) & (agreed >= AGREEING * np.maximum(checked, 1))
        live = live | same_map[group]
    if len(models) == n:
        live &= np.array([same_model(m or "", state.model_id) for m in models], dtype=bool)
    return np.asarray(live, dtype=bool)
