"""How much of the traffic is off-topic, from the routed messages' confidences alone (issue #31 item 3).

The operating point assumes `BOT_OOS_RATE` (or a folder's `off_topic_share` key) of the messages are ones
no intent covers. Nobody labels live traffic, but the router logs the confidence of its top intent for
every message, and the folder's self-calibration already knows what confidences in-scope and off-topic
messages get: its pseudo-queries (each example scored leave-one-out; off-topic, the shipped general
off-topic messages the folder does not cover, else each example with its whole intent removed).
So the confidences are read as a mixture

    p(c) = (1 - share) * f_in(c) + share * f_out(c)

with f_in and f_out the densities of those two reference sets (Gaussian kernels over logit(c)), and only
`share` is fitted, by maximum likelihood (EM over the one weight): far steadier than a free two-component
mixture, whose components wander to wherever the data has bumps. Without a reference (a folder too small
to self-calibrate) it falls back to a free two-component Gaussian mixture over logit(c), the lower
component read as off-topic. Below `MIN_MESSAGES` it says there is not enough traffic yet instead of a
number. The interval is a bootstrap over the messages (by top intent when known) and over both reference
sets: the fit's bias comes from where the folder's few examples miss its real customers (catch-all
intents whose own messages score like off-topic ones), which only a wider interval can admit.

Off-topic requests near the folder's own topics score like in-scope ones and are not seen: the estimate
reads the share of messages unlike anything the folder covers (docs/evaluation.md, "Estimating the
off-topic share").

Built-in small talk and greetings count as in scope: they hit intents of the folder (the built-ins are
intents like any other, and self-calibration scores their examples as in-scope pseudo-queries), so the
operating point does not have to refuse them. They are not the business's own topics, so the traffic
readers report their share beside the estimate (`off_topic_traffic`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import binomtest, gaussian_kde
from sklearn.mixture import GaussianMixture

MIN_MESSAGES = 200  # fewer and the interval spans most of the plausible shares: "not enough traffic yet"
MAX_MESSAGES = 20_000  # the most recent ones; more only slow the bootstrap, the interval is narrow by then
BOOTSTRAP = 200  # resamples for the interval (the reference fit: vectorised EM over binned counts)
BINS = 256  # logit-confidence bins the reference fit reads: its cost and memory do not grow with traffic
MIXTURE_BOOTSTRAP = 30  # resamples for the free mixture (one warm-started sklearn fit each)
LEVEL = 0.90  # the interval's coverage
# How far outside the interval the configured share must lie before the advice says it is off: a share
# within two points of the traffic's changes the operating point by less than the estimate's own error.
OFF_BY = 0.02
# Off-topic requests near the folder's own topics (a bank's customer asking about a service it does not
# list) score like in-scope ones, so the estimate does not see them and reads too low a share where they
# are many (docs/evaluation.md, "Estimating the off-topic share (#31 item 3)"). Lowering the share
# when it is really right makes the promise fail, so the advice asks for a lower share only when the
# configured one is over this many times the interval's upper end.
SIBLING_ROOM = 2.0
SUGGEST_RANGE = (0.01, 0.9)  # what `--set-share` and the page's button offer: never 0, never nearly all
_EPS = 1e-4  # confidences are clipped to [_EPS, 1 - _EPS] before the logit
_FLOOR = 1e-12  # density floor: a confidence far from both references must not divide by zero
Method = Literal["reference", "mixture"]


@dataclass(frozen=True)
class Reference:
    """Confidences of in-scope and off-topic pseudo-queries on the live confidence scale."""

    conf_in: np.ndarray
    conf_out: np.ndarray
    kind: str = "sibling"  # what the off-topic side is: "general" off-topic messages or "sibling" intents

    @property
    def usable(self) -> bool:
        """Whether both sets are big enough and spread enough for a kernel density (the KDE needs variance)."""
        return all(len(c) >= 5 and float(np.std(_logit(c))) > 1e-6 for c in (self.conf_in, self.conf_out))


@dataclass(frozen=True)
class ShareEstimate:
    """The estimated off-topic share of `messages` messages, with its bootstrap interval."""

    messages: int
    enough: bool  # False: fewer than MIN_MESSAGES, and share/low/high are None
    method: Method | None
    share: float | None = None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class ReviewedShare:
    """Reviewed messages judged off-topic (no existing intent meant), with a Wilson interval."""

    reviewed: int
    off_topic: int
    share: float | None
    low: float | None
    high: float | None


def _logit(conf: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.asarray(conf, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(clipped / (1 - clipped))


def fit_weight(
    f_in: np.ndarray,
    f_out: np.ndarray,
    weights: np.ndarray | None = None,
    iterations: int = 500,
    tol: float = 1e-7,
) -> np.ndarray:
    """Maximum-likelihood mixture weight of `f_out` by EM, for each row of `weights` (shape (B, n) or (n,);
    None: each point once) over points with densities `f_in` and `f_out` (shape (n,)).

    With the component densities fixed, EM's update is the weighted mean responsibility of the off-topic
    part; the log-likelihood is concave in the weight, so it converges to the one maximum from any start.
    Weights let the points be bins of messages and a bootstrap resample their counts: (B, bins), never
    (B, messages)."""
    f_in, f_out = np.asarray(f_in, dtype=np.float64), np.asarray(f_out, dtype=np.float64)
    counts = np.atleast_2d(np.ones_like(f_in) if weights is None else np.asarray(weights, dtype=np.float64))
    totals = counts.sum(axis=1, keepdims=True)
    share = np.full((counts.shape[0], 1), 0.5)
    for _ in range(iterations):
        mixed = (1 - share) * f_in + share * f_out
        updated = (counts * (share * f_out / mixed)).sum(axis=1, keepdims=True) / totals
        done = np.max(np.abs(updated - share)) < tol
        share = updated
        if done:
            break
    return share[:, 0]


def _edges(conf: np.ndarray) -> np.ndarray:
    """`BINS` equal-width bins over the messages' logit confidences. A bin is a small fraction of the
    kernels' bandwidth wide, so reading every message at its bin's centre moves the estimate by far less
    than its interval."""
    return np.histogram_bin_edges(_logit(conf), bins=BINS)


def _group_counts(conf: np.ndarray, edges: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Messages per (group, bin): shape (groups, BINS)."""
    index = np.clip(np.searchsorted(edges, _logit(conf), side="right") - 1, 0, BINS - 1)
    _, codes = np.unique(groups, return_inverse=True)
    counts = np.zeros((int(codes.max()) + 1, BINS))
    np.add.at(counts, (codes, index), 1.0)
    return counts


def _kernels(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Each reference point's Gaussian kernel at each bin centre, shape (bins, points), with the bandwidth
    `gaussian_kde` picks (Scott's rule); a weighted sum of the columns is the density of a resample."""
    width = float(np.sqrt(gaussian_kde(points).covariance[0, 0]))
    z = (centres[:, None] - points[None, :]) / width
    return np.asarray(np.exp(-0.5 * z**2) / (width * np.sqrt(2 * np.pi)), dtype=np.float64)


def _densities(kernels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Densities (rows of `weights`: how often each point is drawn) at the bin centres: (B, bins)."""
    return np.asarray(np.maximum(weights @ kernels.T / weights.sum(axis=1, keepdims=True), _FLOOR))


def _interval(samples: np.ndarray) -> tuple[float, float]:
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def _resampled(counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`BOOTSTRAP` resamples of the traffic as bin counts, (B, bins). Without groups (one row) messages
    are drawn with replacement: a multinomial on the bins' shares. With groups (a row per top intent),
    whole groups are drawn: messages sharing a top intent are not independent evidence (an intent whose
    own customers write unlike its examples fills the low-confidence bins all at once), so the interval
    must vary with which intents the window happened to hold."""
    if counts.shape[0] == 1:
        total = counts[0]
        return rng.multinomial(int(total.sum()), total / total.sum(), size=BOOTSTRAP).astype(np.float64)
    drawn = rng.multinomial(counts.shape[0], np.full(counts.shape[0], 1 / counts.shape[0]), size=BOOTSTRAP)
    return np.asarray(drawn @ counts, dtype=np.float64)


def _with_reference(
    conf: np.ndarray, reference: Reference, groups: np.ndarray | None, rng: np.random.Generator
) -> ShareEstimate:
    """Only the weight fitted; the interval resamples the traffic and both reference sets alike (a folder's
    in-scope reference is a few examples per intent: a sample too, whose tail is as uncertain as the
    traffic's)."""
    edges = _edges(conf)
    centres = (edges[:-1] + edges[1:]) / 2
    counts = _group_counts(conf, edges, np.zeros(len(conf)) if groups is None else groups)
    k_in, k_out = (_kernels(_logit(c), centres) for c in (reference.conf_in, reference.conf_out))
    once = counts.sum(axis=0, keepdims=True)
    share = float(
        fit_weight(
            _densities(k_in, np.ones((1, k_in.shape[1]))),
            _densities(k_out, np.ones((1, k_out.shape[1]))),
            once,
        )[0]
    )
    f_in = _densities(k_in, _draw(k_in.shape[1], rng))
    f_out = _densities(k_out, _draw(k_out.shape[1], rng))
    low, high = _interval(fit_weight(f_in, f_out, _resampled(counts, rng)))
    return ShareEstimate(len(conf), True, "reference", _round(share), _round(low), _round(high))


def _draw(points: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of `points` reference points is drawn in each of `BOOTSTRAP` resamples."""
    return rng.multinomial(points, np.full(points, 1 / points), size=BOOTSTRAP).astype(np.float64)


def _free_fit(x: np.ndarray, start: GaussianMixture | None = None) -> GaussianMixture:
    """Two Gaussian components fitted to logit confidences; a bootstrap refit starts from the full fit's
    components, so it converges in a few steps instead of searching again."""
    if start is None:
        return GaussianMixture(n_components=2, random_state=0).fit(x.reshape(-1, 1))
    return GaussianMixture(
        n_components=2,
        weights_init=start.weights_,
        means_init=start.means_,
        precisions_init=start.precisions_,
        max_iter=20,
    ).fit(x.reshape(-1, 1))


def _lower_weight(mixture: GaussianMixture) -> float:
    """The weight of the component with the lower mean: the off-topic one."""
    return float(mixture.weights_[int(np.argmin(mixture.means_[:, 0]))])


def _free_mixture(conf: np.ndarray, rng: np.random.Generator) -> ShareEstimate:
    x = _logit(conf)
    fitted = _free_fit(x)
    share = _lower_weight(fitted)
    boots = [
        _lower_weight(_free_fit(x[rng.integers(0, len(x), size=len(x))], fitted))
        for _ in range(MIXTURE_BOOTSTRAP)
    ]
    low, high = _interval(np.asarray(boots))
    return ShareEstimate(len(conf), True, "mixture", _round(share), _round(low), _round(high))


def _round(value: float) -> float:
    return round(min(max(value, 0.0), 1.0), 4)


def _group_ids(groups: np.ndarray | list[str | None]) -> np.ndarray:
    """Each message's bootstrap group: its top intent, or (None: unknown) a group of its own. Lumped into
    one group, every message with an unreadable candidate list would be drawn all or nothing and widen
    the interval as if they were one intent's customers."""
    return np.array(
        [f"\0{i}" if g is None else str(g) for i, g in enumerate(groups)],  # NUL: no intent name holds it
        dtype=object,
    )


def estimate_share(
    confidences: np.ndarray,
    reference: Reference | None,
    *,
    groups: np.ndarray | list[str | None] | None = None,
    seed: int = 0,
) -> ShareEstimate:
    """The off-topic share of messages with these top-intent confidences (the most recent last; only the
    last `MAX_MESSAGES` are used): against `reference` when it is usable, else a free mixture. `groups`:
    each message's top intent (None: unknown), for the interval (see `_resampled`)."""
    conf = np.asarray(confidences, dtype=np.float64)
    keep = np.isfinite(conf)
    tops = None if groups is None else _group_ids(groups)[keep][-MAX_MESSAGES:]
    conf = conf[keep][-MAX_MESSAGES:]
    usable = reference is not None and reference.usable
    if len(conf) < MIN_MESSAGES:
        return ShareEstimate(len(conf), False, "reference" if usable else "mixture")
    rng = np.random.default_rng(seed)
    if usable:
        assert reference is not None
        return _with_reference(conf, reference, tops, rng)
    if float(np.std(_logit(conf))) < 1e-6:  # every message at one confidence: no mixture to find
        return ShareEstimate(len(conf), False, "mixture")
    return _free_mixture(conf, rng)


def reviewed_share(off_topic: int, reviewed: int) -> ReviewedShare:
    """The share of reviewed messages judged off-topic, with a 90% Wilson interval (None without reviews).
    Reviews are the messages analysts chose to look at, so this is a check on the estimate, not a sample."""
    if reviewed <= 0:
        return ReviewedShare(0, 0, None, None, None)
    found = binomtest(off_topic, reviewed).proportion_ci(confidence_level=LEVEL, method="wilson")
    return ReviewedShare(
        reviewed, off_topic, _round(off_topic / reviewed), _round(found.low), _round(found.high)
    )


def is_off(estimate: ShareEstimate, configured: float) -> bool:
    """Whether the configured share lies below the estimate's interval by more than `OFF_BY`, or above it
    by more than `OFF_BY` and `SIBLING_ROOM` times its upper end (see there)."""
    if not estimate.enough or estimate.low is None or estimate.high is None:
        return False
    too_low = configured < estimate.low - OFF_BY
    return too_low or configured > max(estimate.high + OFF_BY, SIBLING_ROOM * estimate.high)


def suggested(estimate: ShareEstimate) -> float | None:
    """The share to set: the estimate to the point, within `SUGGEST_RANGE`; None without an estimate."""
    if estimate.share is None:
        return None
    return round(min(max(estimate.share, SUGGEST_RANGE[0]), SUGGEST_RANGE[1]), 2)


def advice(estimate: ShareEstimate, configured: float) -> str:
    """One sentence on the estimate against the configured share, for the page and `bot check --data`."""
    if not estimate.enough:
        return (
            f"not enough traffic yet to estimate the off-topic share: {estimate.messages:,} messages, at least "
            f"{MIN_MESSAGES:,} needed; the operating point assumes {configured:.0%}"
        )
    assert estimate.share is not None and estimate.low is not None and estimate.high is not None
    looks = (
        f"traffic looks about {estimate.share:.0%} off-topic ({estimate.low:.0%}-{estimate.high:.0%}); "
        f"the operating point assumes {configured:.0%}"
    )
    if is_off(estimate, configured):
        return f"{looks}: refit at {suggested(estimate):.2f} so its promise holds for this traffic"
    if configured > estimate.high + OFF_BY:  # above the interval, within SIBLING_ROOM: not called off
        return (
            f"{looks}, above what the traffic shows; off-topic requests close to your topics are not visible "
            "to this estimate, so keep it unless reviews show fewer"
        )
    return f"{looks}, which fits"
