"""Which of a draft's questions become its examples (`bot bootstrap`, #32).

The examples are what the router matches messages against, and also what a new folder's self-calibration
judges it by (each example, scored leave-one-out, stands for a customer's message). Examples that are all
the draft's most central questions look easier than the traffic the draft will get: they sit close
together, so leave-one-out finds its draft at a similarity real messages seldom reach, and the fitted
operating point promises a precision it does not deliver. So a draft's examples are spread over its
members the way its traffic is: the most central one, then the members at evenly spaced quantiles of the
similarity to the centre (repeats counted), skipping a near-copy of one already taken.
"""

from __future__ import annotations

import numpy as np

NEAR_COPY = 0.95  # cosine above which a question adds nothing to an example already taken
PICKERS = ("central", "spread", "edge", "random", "boundary")
EDGE = 0.95  # the `edge` picker's farthest quantile: members closer than 95% of the draft's messages


def pick_examples(
    order: np.ndarray,
    weights: np.ndarray,
    vectors: np.ndarray,
    wanted: int,
    picker: str,
    lead: np.ndarray | None,
) -> list[int]:
    """Positions in `order` (members, most central first, with their `weights`) of the draft's examples:
    `wanted` of them, or all members when fewer are distinct enough. `lead` (how much nearer each member
    is to its draft than to the next one) is read by the `boundary` picker only."""
    if picker == "boundary":
        if lead is None:
            raise ValueError("the boundary picker needs each member's lead over the nearest other draft")
        return _boundary(order, vectors, wanted, lead)
    if picker == "central":
        targets = [0.0] * wanted
    elif picker == "spread":
        # quantile k/wanted of the draft's messages by closeness: 0 is the centre, and the last target
        # stays inside the draft, (wanted-1)/wanted of its messages being closer
        targets = [k / wanted for k in range(wanted)]
    elif picker == "edge":
        targets = [EDGE * k / max(wanted - 1, 1) for k in range(wanted)]
    elif picker == "random":
        rng = np.random.default_rng(len(order))
        targets = [0.0, *sorted(rng.random(wanted - 1))]
    else:
        raise ValueError(f"example picker {picker!r}: use one of {', '.join(PICKERS)}")
    cumulative = (np.cumsum(weights) - weights) / max(float(weights.sum()), 1e-9)  # share closer than each
    taken: list[int] = []
    for target in targets:
        start = int(np.searchsorted(cumulative, target, side="left"))
        position = _first_new(order, vectors, taken, start)
        if position is None:
            position = _first_new(order, vectors, taken, 0)  # past the end: anything not taken yet
        if position is None:
            break
        taken.append(position)
    return taken


def _first_new(order: np.ndarray, vectors: np.ndarray, taken: list[int], start: int) -> int | None:
    """The first position from `start` on, not taken and not a near-copy of a taken one."""
    chosen = vectors[order[taken]] if taken else np.empty((0, vectors.shape[1]), dtype=vectors.dtype)
    for position in range(start, len(order)):
        if position in taken:
            continue
        if not len(chosen) or float((chosen @ vectors[order[position]]).max()) <= NEAR_COPY:
            return position
    return None


def _boundary(order: np.ndarray, vectors: np.ndarray, wanted: int, lead: np.ndarray) -> list[int]:
    """The most central member, then half spread, half the members nearest another draft (smallest `lead`)."""
    taken = [0]
    by_lead = [int(p) for p in np.argsort(lead, kind="stable")]
    spread = (wanted - 1) // 2
    for k in range(1, spread + 1):
        start = int(len(order) * k / (spread + 1))
        position = _first_new(order, vectors, taken, start)
        if position is not None:
            taken.append(position)
    for position in by_lead:
        if len(taken) >= wanted:
            break
        if position not in taken and _first_new(order, vectors, taken, position) == position:
            taken.append(position)
    return taken
