"""The oracle operating point: thresholds picked on the evaluation labels themselves.

No router can know these in advance; they show the best any single threshold and margin could do with
a given ranking, so a self-calibrated operating point can be judged against them ("within 5 points of
the oracle"). Pure numpy over what every decision records: top and runner-up confidence, top intent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from bot.routing.policy import Decision
from bot.tuning.datasets import Example

MARGINS = (0.0, 0.01, 0.02, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3)


@dataclass(frozen=True)
class OperatingFigures:
    """What one (threshold, margin) does on a labelled set (definitions as `compute_metrics`)."""

    threshold: float
    margin: float
    precision: float
    coverage: float
    in_scope_accuracy: float
    oos_recall: float | None

    def as_dict(self) -> dict[str, float | None]:
        """Rounded, for JSON and tables."""
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Ranked:
    """Per message: top confidence, lead over the runner-up, whether the top intent is right, in scope."""

    top: np.ndarray
    lead: np.ndarray
    right: np.ndarray
    in_scope: np.ndarray

    @classmethod
    def of(cls, examples: Sequence[Example], decisions: Sequence[Decision]) -> Ranked:
        """From decisions and their labels."""
        top = np.array([d.candidates[0].confidence if d.candidates else 0.0 for d in decisions])
        second = np.array([d.candidates[1].confidence if len(d.candidates) > 1 else 0.0 for d in decisions])
        right = np.array(
            [
                bool(d.candidates) and d.candidates[0].intent == e.label
                for e, d in zip(examples, decisions, strict=True)
            ]
        )
        return cls(top, top - second, right, np.array([e.in_scope for e in examples]))

    def figures(self, threshold: float, margin: float) -> OperatingFigures:
        """The figures of one operating point."""
        accept = (self.top >= threshold) & (self.lead >= margin)
        return self._figures(threshold, margin, accept)

    def _figures(self, threshold: float, margin: float, accept: np.ndarray) -> OperatingFigures:
        accepted = int(accept.sum())
        right = accept & self.right
        in_scope = int(self.in_scope.sum())
        out_scope = len(self.top) - in_scope
        return OperatingFigures(
            threshold=float(threshold),
            margin=float(margin),
            precision=float(right.sum() / accepted) if accepted else 1.0,
            coverage=accepted / max(len(self.top), 1),
            in_scope_accuracy=float((right & self.in_scope).sum() / max(in_scope, 1)),
            oos_recall=float((~accept & ~self.in_scope).sum() / out_scope) if out_scope else None,
        )

    def grid(self) -> list[OperatingFigures]:
        """Every distinct threshold (each observed top confidence) with every margin."""
        thresholds = np.unique(np.round(self.top, 4))
        return [self.figures(float(t), m) for m in MARGINS for t in thresholds]


def best_in_scope_at_precision(ranked: Ranked, precision: float) -> OperatingFigures | None:
    """The most in-scope accuracy any operating point reaches with answer precision >= `precision`."""
    found = [f for f in ranked.grid() if f.precision >= precision and f.coverage > 0]
    return max(found, key=lambda f: (f.in_scope_accuracy, f.precision)) if found else None


def best_oos_recall_at_in_scope(ranked: Ranked, in_scope_accuracy: float) -> OperatingFigures | None:
    """The most out-of-scope recall any operating point reaches with in-scope accuracy >= the given one."""
    found = [
        f for f in ranked.grid() if f.in_scope_accuracy >= in_scope_accuracy and f.oos_recall is not None
    ]
    return max(found, key=lambda f: (f.oos_recall or 0.0, f.in_scope_accuracy)) if found else None
