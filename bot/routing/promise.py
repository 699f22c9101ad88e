"""How sure a promise is: a lower bound on the answer precision a calibration expects (#27 item 4).

A self-calibration's expected precision is a ratio of counts over the folder's own pseudo-queries. A
15-intent folder with two examples each answers some 20 of its 30 pseudo-queries at the chosen point;
when all 20 are right the point estimate says 1.00, although 20 answers cannot tell 1.00 from 0.93. The
bound below says what those counts support:

- the precision among answered in-scope pseudo-queries at its Wilson lower bound, over the number answered;
- the out-of-scope acceptance at its Wilson upper bound, over the number of pseudo-queries;
- the pseudo-query bias factors (`PseudoBias`, measured on BANKING77 train) at their pessimistic end:
  each was measured once, on one domain, and its re-measurements moved by up to about a fifth
  (docs/evaluation.md, "Bias factors" and "Cross-fitting"), so the bound assumes they may be off by
  `BIAS_SPREAD` in the direction that hurts.

Wilson rather than Clopper-Pearson: it needs no beta quantiles (no scipy at load) and at zero errors it is
already as careful (20 of 20 right: 0.88 against Clopper-Pearson's 0.86 at the same 95%). A labelled
calibration (`bot calibrate`) has no bias to widen for: its bound is the Wilson bound over the answered
rows' effective number (`effective_count`, rows reweighted to the planned out-of-scope share count less).

`Outcome` is what one operating point does to the fit's evidence (in-scope pseudo-queries, siblings, the
shipped general off-topic messages) and the precision it promises from them, point and bound.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from bot.routing.pseudo_queries import PseudoBias

Z = 1.645  # one-sided 95%: the promise's lower bound fails about one folder in twenty
# Relative error assumed of each bias factor, in the direction that lowers precision: re-measurements of
# the same factors moved by up to about 20% (stock wrong_in 0.64-0.82 across int8 variants, cross-fit
# accepted_out 1.74-2.33 over its iterations, wrong_in 0.81 against 0.90 with two examples per intent).
BIAS_SPREAD = 0.2


def wilson_low(share: float, count: float, z: float = Z) -> float:
    """Lower end of the Wilson score interval of a proportion `share` observed over `count` trials."""
    if count <= 0:
        return 0.0
    share = min(max(share, 0.0), 1.0)
    spread = z * math.sqrt(share * (1 - share) / count + z * z / (4 * count * count))
    return max(0.0, (share + z * z / (2 * count) - spread) / (1 + z * z / count))


def wilson_high(share: float, count: float, z: float = Z) -> float:
    """Upper end of the Wilson score interval (the lower end of the complement, mirrored)."""
    return 1.0 - wilson_low(1.0 - share, count, z) if count > 0 else 1.0


def pessimistic(bias: PseudoBias, spread: float = BIAS_SPREAD) -> PseudoBias:
    """The bias factors moved by `spread` towards fewer right and more wrong answers."""
    return PseudoBias(
        right_in=bias.right_in * (1 - spread),
        wrong_in=bias.wrong_in * (1 + spread),
        accepted_out=bias.accepted_out * (1 + spread),
    )


def effective_count(weights: np.ndarray) -> float:
    """Kish's effective number of rows of weighted rows: `(sum w)^2 / sum w^2` (their count if equal)."""
    total = float(weights.sum())
    squares = float((weights * weights).sum())
    return total * total / squares if squares > 0 else 0.0


@dataclass(frozen=True)
class Reviewed:
    """What one operating point does to the folder's learned examples (#31 item 4): reviewed customer
    messages, each scored leave-one-out against the live folder (in scope) and with its whole intent
    removed (a real request about a topic the folder lacks). Real messages, so no bias factor corrects
    them; `weight` is the share of the in-scope and sibling evidence they stand for (their count over the
    count of all pseudo-queries, the folder's own examples included)."""

    right_in: float
    wrong_in: float
    accepted_out: float
    clarify_in: float
    clarify_right: float
    clarify_out: float
    count: int
    weight: float


@dataclass(frozen=True)
class Outcome:
    """Shares of the pseudo-queries one (threshold, margin) answers: right and wrong in scope, out of scope."""

    right_in: float
    wrong_in: float
    accepted_out: float
    clarify_in: float = 0.0  # in scope, asked which intent is meant (not answered)
    clarify_right: float = 0.0  # ... with the right intent among the options
    clarify_out: float = 0.0  # out of scope, asked
    # the shipped general off-topic messages the folder does not cover: answered, asked (None: no such
    # evidence, the off-topic traffic is judged by its siblings alone)
    accepted_general: float | None = None
    clarify_general: float = 0.0
    siblings: float = 1.0  # share of the off-topic traffic like the siblings (`BOT_OOS_SIBLINGS`)
    reviewed: Reviewed | None = None  # the learned examples at the same point, blended in by their weight

    def _blend(self, pseudo: float, real: float) -> float:
        """A share over all in-scope (or sibling) evidence: the pseudo-queries' (already corrected) and the
        reviewed messages' by their weight."""
        if self.reviewed is None:
            return pseudo
        return (1 - self.reviewed.weight) * pseudo + self.reviewed.weight * real

    def in_scope(self, bias: PseudoBias) -> tuple[float, float]:
        """Expected shares of in-scope messages answered right and wrong."""
        reviewed = self.reviewed
        right, wrong = bias.right_in * self.right_in, bias.wrong_in * self.wrong_in
        if reviewed is None:
            return right, wrong
        return self._blend(right, reviewed.right_in), self._blend(wrong, reviewed.wrong_in)

    def accepted(self, bias: PseudoBias) -> float:
        """Expected share of off-topic messages answered: siblings (pseudo-queries, corrected by the bias
        factor, and reviewed messages with their intent removed) and general ones (real messages, as they
        are) in the planned proportion."""
        sibling = bias.accepted_out * self.accepted_out
        if self.reviewed is not None:
            sibling = self._blend(sibling, self.reviewed.accepted_out)
        if self.accepted_general is None:
            return sibling
        return self.siblings * sibling + (1 - self.siblings) * self.accepted_general

    def asked_out(self) -> float:
        """Share of off-topic messages asked which intent is meant."""
        sibling = self.clarify_out
        if self.reviewed is not None:
            sibling = self._blend(sibling, self.reviewed.clarify_out)
        if self.accepted_general is None:
            return sibling
        return self.siblings * sibling + (1 - self.siblings) * self.clarify_general

    def value(self, worth: float) -> float:
        """In-scope pseudo-queries served: answered right, plus a clarify with the right option at `worth`."""
        own = self.right_in + worth * self.clarify_right
        if self.reviewed is None:
            return own
        return self._blend(own, self.reviewed.right_in + worth * self.reviewed.clarify_right)

    def clarify_rate(self, rate: float) -> float:
        """Expected share of messages asked which intent is meant when `rate` of the traffic is out of scope."""
        asked_in = self.clarify_in
        if self.reviewed is not None:
            asked_in = self._blend(asked_in, self.reviewed.clarify_in)
        return (1 - rate) * asked_in + rate * self.asked_out()

    def precision_low(self, count: int, rate: float, bias: PseudoBias, general_count: int = 0) -> float:
        """A lower bound on `precision` that `count` pseudo-queries (and `general_count` general off-topic
        messages) support (see `bot.routing.promise`): the in-scope answers' precision at its Wilson lower
        bound over the number answered, out-of-scope acceptance at its upper bound, the bias factors at
        their pessimistic end. Reviewed messages are bounded the same way over their own count, with no
        bias factor to widen."""
        pseudo = _bounded(self.right_in, self.wrong_in, self.accepted_out, count, rate)
        general = self.accepted_general
        if general is not None and rate > 0:
            general = wilson_high(general, general_count)
        reviewed = self.reviewed
        if reviewed is not None:
            right, wrong, accepted = _bounded(
                reviewed.right_in, reviewed.wrong_in, reviewed.accepted_out, reviewed.count, rate
            )
            reviewed = dataclasses.replace(reviewed, right_in=right, wrong_in=wrong, accepted_out=accepted)
        bound = Outcome(*pseudo, accepted_general=general, siblings=self.siblings, reviewed=reviewed)
        if bound.in_scope(bias)[0] <= 0:  # nothing answered in scope: nothing to promise
            return 0.0
        return min(bound.precision(rate, pessimistic(bias)), self.precision(rate, bias))

    def precision(self, rate: float, bias: PseudoBias) -> float:
        """Expected answer precision when `rate` of the traffic is out of scope."""
        right_in, wrong_in = self.in_scope(bias)
        right = (1 - rate) * right_in
        answered = right + (1 - rate) * wrong_in + rate * self.accepted(bias)
        return right / answered if answered > 0 else 0.0

    def coverage(self, rate: float, bias: PseudoBias) -> float:
        """Expected share of messages answered as an intent."""
        right_in, wrong_in = self.in_scope(bias)
        inside = min(1.0, right_in + wrong_in)
        return (1 - rate) * inside + rate * min(1.0, self.accepted(bias))


def _bounded(
    right_in: float, wrong_in: float, accepted_out: float, count: int, rate: float
) -> tuple[float, float, float]:
    """Right and wrong in-scope shares with the precision among them at its Wilson lower bound, and the
    out-of-scope acceptance at its upper bound, over `count` queries."""
    accepted = wilson_high(accepted_out, count) if rate > 0 else accepted_out
    answered = right_in + wrong_in
    if answered <= 0:
        return 0.0, 0.0, accepted
    right = wilson_low(right_in / answered, count * answered)
    return answered * right, answered * (1 - right), accepted
