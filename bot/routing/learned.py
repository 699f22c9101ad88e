"""Learned examples as evidence for self-calibration (#31 item 4).

A learned example is a reviewed customer message made live without a YAML edit: real traffic with a
person's label, the best evidence a folder can have of what its operating point does. Each is scored
against the live folder leave-one-out (in scope) and with its whole intent removed (a real request about a
topic the folder lacks), in the confidence map fitted on the YAML pseudo-queries, and counted as it is (no
bias factor) beside them (`bot.routing.promise.Reviewed`). They refit the point because learned vectors
make the folder more precise than a point fitted on its YAML examples alone promises, and such a point
leaves messages unanswered that the folder would answer right (docs/evaluation.md, "The learning curve").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bot.routing.pseudo_queries import PseudoQueries, raw_pseudo_scores
from bot.routing.state import RoutingState, Scoring, intent_texts


@dataclass(frozen=True)
class Learned:
    """A folder's learned examples as evidence: `rows` of `state` (the live folder, YAML intents plus the
    learned examples) are the learned texts."""

    state: RoutingState
    rows: np.ndarray

    @classmethod
    def of(cls, state: RoutingState, base: RoutingState) -> Learned | None:
        """The rows of `state` that the YAML folder `base` does not hold (None: no learned example)."""
        yaml_texts = set(zip(*_owned_texts(base), strict=True))
        texts, owners = _owned_texts(state)
        rows = np.array(
            [row for row, pair in enumerate(zip(texts, owners, strict=True)) if pair not in yaml_texts],
            dtype=np.int64,
        )
        return cls(state, rows) if len(rows) else None


def _owned_texts(state: RoutingState) -> tuple[list[str], list[str]]:
    """Each embedded text of `state` with the name of the intent it belongs to."""
    texts, owners = intent_texts(state.intents)
    names = state.intents.names
    return texts, [names[owner] for owner in owners]


def learned_queries(learned: Learned, scoring: Scoring) -> PseudoQueries:
    """The learned examples scored against the live folder, leave-one-out and with their intent removed,
    in the confidence map fitted on the YAML pseudo-queries."""
    return PseudoQueries.scored(raw_pseudo_scores(learned.state, scoring.raw(), learned.rows), scoring)


def reviewed_shares(
    queries: PseudoQueries, margin: float, max_options: int
) -> Callable[[float], tuple[float, float, float, float, float, float]]:
    """For one margin, a function of the threshold giving what that point does to `queries` (real
    messages): answered right and wrong, siblings accepted, asked in scope, asked with the right option,
    siblings asked. The same rules as `grid_points`."""
    clear_in, clear_out = queries.lead_in >= margin, queries.lead_out >= margin
    holds_right = (queries.own_rank < max_options) & (queries.own_gap < margin)

    def at(threshold: float) -> tuple[float, float, float, float, float, float]:
        passed_in, passed_out = queries.conf_in >= threshold, queries.conf_out >= threshold
        answered_in, asked_in = clear_in & passed_in, passed_in & ~clear_in
        return (
            float((answered_in & queries.right).mean()),
            float((answered_in & ~queries.right).mean()),
            float((clear_out & passed_out).mean()),
            float(asked_in.mean()),
            float((asked_in & holds_right).mean()),
            float((passed_out & ~clear_out).mean()),
        )

    return at
