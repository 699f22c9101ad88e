"""The surge test of sentiment by topic (#32 item 3): is a topic's negative share today above its own past?

Pure numbers in, verdicts out (the database side is `bot.insights.sentiment`, the alert
`bot.runtime.sentiment`). Each topic is compared with itself, not with the others: a topic where customers
are often displeased (refunds, charges) has a higher steady share than a calm one (opening hours), and
only a jump over its own level is news.

The test: the window's negatives against the beta-binomial predictive of the topic's trailing baseline.
A plain binomial test would treat the baseline share as exact; a topic with a thin history (a few dozen
messages) is then trusted as much as one with thousands, and alarms on noise. The baseline share's
uncertainty is kept instead, with a prior of `prior_messages` pseudo-messages at the share of all topics
together, so a topic new or quiet in the baseline is judged by the traffic's general level. On top:
minimum counts (a quiet topic cannot alarm on 2 messages) and a minimum rise in points (a very busy
topic cannot alarm on a significant but meaningless 1-point rise).
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy.stats import betabinom


@dataclass(frozen=True)
class SurgeRules:
    """When a topic's window counts as a surge; the defaults' false-alarm rate and detection delay are in
    docs/evaluation.md ("Sentiment by topic (#32 item 3)", `scripts/bench/bench_sentiment_surge.py`)."""

    min_messages: int = 20  # scored messages of the topic in the window
    min_negative: int = 5  # negative ones among them
    min_rise: float = 0.10  # the window's share at least this many points above the baseline's
    p_value: float = 1e-4  # the window's negatives this unlikely under the baseline; the test runs every
    # few minutes for every topic, so a per-test level of 1e-4 keeps false alarms rare over a day of runs
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
    intent: str, window: Counts, baseline: Counts, overall: float, rules: SurgeRules = SurgeRules()
) -> Verdict:
    """Whether `window` is a surge over `baseline`; `overall` is the baseline share of all topics."""
    prior = max(min(overall, 0.99), 0.01)  # a stream with no negative at all must not make every one news
    alpha = baseline.negative + rules.prior_messages * prior
    beta = baseline.messages - baseline.negative + rules.prior_messages * (1 - prior)
    expected = alpha / (alpha + beta)
    enough = window.messages >= rules.min_messages and window.negative >= rules.min_negative
    p_value = 1.0
    if enough:
        p_value = float(betabinom.sf(window.negative - 1, window.messages, alpha, beta))
    surge = enough and window.share >= expected + rules.min_rise and p_value < rules.p_value
    return Verdict(intent, window, baseline, round(expected, 4), p_value, surge)


def judge_all(
    window: dict[str, Counts], baseline: dict[str, Counts], rules: SurgeRules = SurgeRules()
) -> list[Verdict]:
    """Every topic of the window judged against its own baseline (none: the prior alone), by name."""
    total = sum(c.messages for c in baseline.values())
    overall = sum(c.negative for c in baseline.values()) / total if total else 0.0
    return [
        judge(intent, counts, baseline.get(intent, Counts(0, 0)), overall, rules)
        for intent, counts in sorted(window.items())
    ]
