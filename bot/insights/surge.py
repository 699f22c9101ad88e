"""The surge test of sentiment by topic (#32 item 3): is a topic's negative share today above its own past?

Pure numbers in, verdicts out (the database side is `bot.insights.sentiment`, the alert
`bot.runtime.sentiment`). Each topic is compared with itself, not with the others: a topic where customers
are often displeased (refunds, charges) has a higher steady share than a calm one (opening hours), and
only a jump over its own level is news.

The test: the window's negatives against the beta-binomial predictive of the topic's trailing days.
A plain binomial test would treat the baseline share as exact; a topic with a thin history (a few dozen
messages) is then trusted as much as one with thousands, and a topic whose share moves from day to day
alarms on its ordinary high days. Both are kept in the prior of the day's share (`day_share_prior`), with
`prior_messages` pseudo-messages at the share of all topics together, so a topic new or quiet in the
baseline is judged by the traffic's general level. On top:
minimum counts (a quiet topic cannot alarm on 2 messages) and a minimum rise in points (a very busy
topic cannot alarm on a significant but meaningless 1-point rise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import betabinom

MIN_DAYS = 5  # past days with messages needed to measure how much a topic's share moves from day to day


@dataclass(frozen=True)
class SurgeRules:
    """When a topic's window counts as a surge; the defaults' false-alarm rate and detection delay are in
    docs/evaluation.md ("Sentiment by topic (#32 item 3)", `scripts/bench/bench_sentiment_surge.py`)."""

    min_messages: int = 20  # scored messages of the topic in the window
    min_negative: int = 5  # negative ones among them
    min_rise: float = 0.10  # the window's share at least this many points above the baseline's
    # the window's negatives this unlikely under the baseline: the test runs every few minutes for every
    # topic, and at 1e-5 a steady stream whose topics' shares wander from day to day raised 0.5 alerts per
    # 1,000 topic-days (1e-4: 2.25), a month apart for a 77-intent folder (bench_sentiment_surge.py)
    p_value: float = 1e-5
    prior_messages: float = 20.0  # weight of the all-topics share in a topic's baseline


@dataclass(frozen=True)
class Counts:
    """Scored messages and the negative ones among them."""

    messages: int
    negative: int

    @property
    def share(self) -> float:
        return self.negative / self.messages if self.messages else 0.0


@dataclass(frozen=True)
class Verdict:
    """One topic's window judged against its baseline."""

    intent: str
    window: Counts
    baseline: Counts
    baseline_share: float  # the baseline's share with the prior, what the window is compared with
    p_value: float  # P(at least the window's negatives | the baseline); 1.0 when the counts are too few
    surge: bool


def judge(
    intent: str, window: Counts, days: Sequence[Counts], overall: float, rules: SurgeRules = SurgeRules()
) -> Verdict:
    """Whether `window` is a surge over the topic's baseline `days` (one `Counts` a day); `overall` is
    the baseline share of all topics."""
    alpha, beta = day_share_prior(days, overall, rules.prior_messages)
    expected = alpha / (alpha + beta)
    enough = window.messages >= rules.min_messages and window.negative >= rules.min_negative
    p_value = 1.0
    if enough:
        p_value = float(betabinom.sf(window.negative - 1, window.messages, alpha, beta))
    surge = enough and window.share >= expected + rules.min_rise and p_value < rules.p_value
    baseline = Counts(sum(d.messages for d in days), sum(d.negative for d in days))
    return Verdict(intent, window, baseline, round(expected, 4), p_value, surge)


def day_share_prior(days: Sequence[Counts], overall: float, prior_messages: float) -> tuple[float, float]:
    """Beta(alpha, beta) for a new day's negative share of a topic, from its past days.

    Its mean is the days' pooled share, pulled towards `overall` by `prior_messages` pseudo-messages. Its
    spread is the wider of two: what the pooled counts leave uncertain (a thin history), and how much the
    share moved from day to day beyond what the counts explain (the intra-day correlation rho of a
    beta-binomial, estimated by moments over the days). Without the second, a topic whose share wanders
    (a busy Monday of complaints, a quiet Sunday) reads every high day as a surge.
    """
    prior = max(min(overall, 0.99), 0.01)  # a stream with no negative at all must not make every one news
    messages = sum(d.messages for d in days)
    mean = (sum(d.negative for d in days) + prior_messages * prior) / (messages + prior_messages)
    concentration = messages + prior_messages
    rho = _day_to_day(days, mean)
    if rho > 0:
        concentration = min(concentration, 1 / rho - 1)
    return mean * concentration, (1 - mean) * concentration


def _day_to_day(days: Sequence[Counts], mean: float) -> float:
    """rho, 0 up to 0.5, from the days with messages: the spread of their shares beyond the binomial's."""
    seen = [d for d in days if d.messages]
    total = sum(d.messages for d in seen)
    if len(seen) < MIN_DAYS or not 0 < mean < 1:
        return 0.0
    spread = sum(d.messages * (d.share - mean) ** 2 for d in seen) / (mean * (1 - mean))
    room = total - sum(d.messages**2 for d in seen) / total - (len(seen) - 1)
    if room <= 0:
        return 0.0
    return min(max((spread - (len(seen) - 1)) / room, 0.0), 0.5)


def judge_all(
    window: dict[str, Counts], baseline: dict[str, list[Counts]], rules: SurgeRules = SurgeRules()
) -> list[Verdict]:
    """Every topic of the window judged against its own days (none: the prior alone), by name."""
    past = [d for days in baseline.values() for d in days]
    total = sum(d.messages for d in past)
    overall = sum(d.negative for d in past) / total if total else 0.0
    return [
        judge(intent, counts, baseline.get(intent, []), overall, rules)
        for intent, counts in sorted(window.items())
    ]
