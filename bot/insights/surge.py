"""The surge test of sentiment by topic (#32 item 3): is a topic's negative share of late above its own past?

Pure numbers in, verdicts out (the database side is `bot.insights.sentiment`, the alert
`bot.runtime.sentiment`). Each topic is compared with itself, not with the others: a topic where customers
are often displeased (refunds, charges) has a higher steady share than a calm one (opening hours), and
only a jump over its own level is news.

The windows are rolling: the last few hours (`SurgeRules.windows`, 3 and 24 by default) up to now, not the
UTC day so far, so a surge that starts in the afternoon is not diluted by a calm morning, nor one at 23:00
cut in two at midnight. The short window sees a busy topic's surge within hours; the long one gives a
quiet topic enough messages. Each window is judged with its share of the false-alarm budget (`p_value`
split between the windows with at least `min_messages`), and a topic surges when any of them does.

The test: the window's negatives against the beta-binomial predictive of the topic's baseline, its days
before the longest window cut into blocks as long as the window. A plain binomial test would treat the
baseline share as exact; a topic with a thin history (a few dozen messages) is then trusted as much as one
with thousands, and a topic whose share moves from block to block (a busy Monday of complaints, a cross
evening) alarms on its ordinary high blocks. Both are kept in the prior of the window's share
(`share_prior`), with `prior_messages` pseudo-messages at the share of all topics together, so a topic new
or quiet in the baseline is judged by the traffic's general level. Measuring the spread on blocks of the
window's own length is what scales it to the window: a 3-hour window meets the swings between hours of
the day as well as between days, which daily counts would hide. On top: minimum counts (a quiet topic
cannot alarm on 2 messages) and a minimum rise in points (a very busy topic cannot alarm on a significant
but meaningless 1-point rise).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scipy.stats import betabinom

from bot.config_sentiment import MIN_BLOCKS, SentimentSettings


def _default(name: str) -> Any:
    """A setting's default: the one place the tuned values are written is `bot.config_sentiment`."""
    return SentimentSettings.model_fields[name].default


@dataclass(frozen=True)
class SurgeRules:
    """When a topic's window counts as a surge (the BOT_SENTIMENT_* settings, `from_settings`); the
    defaults' false-alarm rate and detection delay are in docs/evaluation.md ("Sentiment by topic (#32
    item 3)", `scripts/bench/bench_sentiment_surge.py`)."""

    min_messages: int = _default("sentiment_min_messages")  # scored messages of the topic in the window
    min_negative: int = _default("sentiment_min_negative")  # negative ones among them
    min_rise: float = _default("sentiment_min_rise")  # the window's share this many points over the baseline
    # the chance a steady topic's windows pass, per look, split equally between the windows tested
    p_value: float = _default("sentiment_p_value")
    windows: tuple[int, ...] = _default("sentiment_window_hours")  # hours, rolling up to now
    baseline_days: int = _default("sentiment_baseline_days")  # before the longest window
    # after a surge is found, the topic's windows are judged again only on hours this long after it
    rearm_hours: float = _default("sentiment_rearm_hours")
    prior_messages: float = 20.0  # weight of the all-topics share in a topic's baseline

    @property
    def chained_hours(self) -> float:
        """Two surges of a topic found at most this far apart are one lasting shift (`surge_spans`): the
        re-arm time and a longest window until every window is judged again, and a longest window more."""
        return self.rearm_hours + 2 * max(self.windows)

    @classmethod
    def from_settings(cls, settings: SentimentSettings) -> SurgeRules:
        """The rules a deployment set (validated by `Settings`)."""
        return cls(
            min_messages=settings.sentiment_min_messages,
            min_negative=settings.sentiment_min_negative,
            min_rise=settings.sentiment_min_rise,
            p_value=settings.sentiment_p_value,
            windows=settings.sentiment_window_hours,
            baseline_days=settings.sentiment_baseline_days,
            rearm_hours=settings.sentiment_rearm_hours,
        )


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
    hours: int = 24  # the window's length


def judge(
    intent: str,
    window: Counts,
    blocks: Sequence[Counts],
    overall: float,
    rules: SurgeRules = SurgeRules(),
    *,
    level: float | None = None,
    hours: int = 24,
) -> Verdict:
    """Whether `window` is a surge over the topic's baseline `blocks` (one `Counts` per stretch of the
    window's length); `overall` is the baseline share of all topics, `level` the p-value to beat (default
    the whole budget, `rules.p_value`)."""
    alpha, beta = share_prior(blocks, overall, rules.prior_messages)
    expected = alpha / (alpha + beta)
    enough = window.messages >= rules.min_messages and window.negative >= rules.min_negative
    p_value = 1.0
    if enough:
        p_value = float(betabinom.sf(window.negative - 1, window.messages, alpha, beta))
    passed = p_value < (rules.p_value if level is None else level)
    surge = enough and window.share >= expected + rules.min_rise and passed
    baseline = Counts(sum(b.messages for b in blocks), sum(b.negative for b in blocks))
    return Verdict(intent, window, baseline, round(expected, 4), p_value, surge, hours)


def share_prior(blocks: Sequence[Counts], overall: float, prior_messages: float) -> tuple[float, float]:
    """Beta(alpha, beta) for a new block's negative share of a topic, from its past blocks.

    Its mean is the blocks' pooled share, pulled towards `overall` by `prior_messages` pseudo-messages. Its
    spread is the wider of two: what the pooled counts leave uncertain (a thin history), and how much the
    share moved from block to block beyond what the counts explain (the intra-block correlation rho of a
    beta-binomial, estimated by moments over the blocks). Without the second, a topic whose share wanders
    reads every high block as a surge.
    """
    prior = max(min(overall, 0.99), 0.01)  # a stream with no negative at all must not make every one news
    messages = sum(b.messages for b in blocks)
    mean = (sum(b.negative for b in blocks) + prior_messages * prior) / (messages + prior_messages)
    concentration = messages + prior_messages
    rho = _block_to_block(blocks, mean)
    if rho > 0:
        concentration = min(concentration, 1 / rho - 1)
    return mean * concentration, (1 - mean) * concentration


def _block_to_block(blocks: Sequence[Counts], mean: float) -> float:
    """rho, 0 up to 0.5, from the blocks with messages: the spread of their shares beyond the binomial's."""
    seen = [b for b in blocks if b.messages]
    total = sum(b.messages for b in seen)
    if len(seen) < MIN_BLOCKS or not 0 < mean < 1:
        return 0.0
    spread = sum(b.messages * (b.share - mean) ** 2 for b in seen) / (mean * (1 - mean))
    room = total - sum(b.messages**2 for b in seen) / total - (len(seen) - 1)
    if room <= 0:
        return 0.0
    return min(max((spread - (len(seen) - 1)) / room, 0.0), 0.5)


def blocks_of(hours: Sequence[Counts], size: int) -> list[Counts]:
    """Hourly counts (oldest first) summed into blocks of `size` hours counted back from the newest; an
    incomplete oldest block is left out (it would read as a short, noisy one)."""
    blocks = []
    for end in range(len(hours), size - 1, -size):
        part = hours[end - size : end]
        blocks.append(Counts(sum(c.messages for c in part), sum(c.negative for c in part)))
    return blocks[::-1]


def judge_topic(
    intent: str,
    windows: Mapping[int, Counts],
    blocks: Mapping[int, Sequence[Counts]],
    overall: float,
    rules: SurgeRules = SurgeRules(),
) -> Verdict:
    """One topic's verdict: of its first window (shortest) that surges, else of the one closest to it
    (smallest p-value). `windows`: hours -> the topic's counts of the last that many hours; `blocks`: hours
    -> its baseline cut into blocks that long (`blocks_of`).

    The false-alarm budget is split between the windows with enough messages to be tested: a window under
    `min_messages` cannot alarm, whatever its negatives, so it spends none (a quiet topic's 3 hours leave
    the whole budget to its 24)."""
    tested = sum(counts.messages >= rules.min_messages for counts in windows.values())
    level = rules.p_value / max(tested, 1)
    kept: Verdict | None = None
    for size in sorted(windows):
        verdict = judge(intent, windows[size], blocks.get(size, []), overall, rules, level=level, hours=size)
        if kept is None or (not kept.surge and (verdict.surge or verdict.p_value < kept.p_value)):
            kept = verdict
    if kept is None:
        raise ValueError("judge_topic needs at least one window")
    return kept


def rearmed_windows(since_found: float | None, rules: SurgeRules) -> tuple[int, ...]:
    """The windows (hours, of `rules.windows`) a topic is judged on at a look `since_found` hours after its
    last stored surge was found (None: none stored): those whose hours all come at least
    `rules.rearm_hours` after it.

    Why not every window once the re-arm time has passed: a window reaching back before it still holds
    the surge's later hours, which its alert already reported, and the baseline (ending a longest window
    before the look) does not hold them yet, so a surge of 6-12 hours would read as a new one a day later.
    Judged only on hours after the re-arm time, a surge alerts again only if it is still there then."""
    if since_found is None:
        return tuple(rules.windows)
    return tuple(size for size in rules.windows if since_found - size >= rules.rearm_hours)


def outside_surges(hours: Sequence[Counts], found: Sequence[float], rules: SurgeRules) -> list[Counts]:
    """A topic's baseline hours (oldest first) without those its stored surges cover; `found`: when each
    was found, in hours from the start of the baseline's first hour (later ones included, `surge_spans`).
    A surge's hours in its topic's baseline would raise the level and the spread the next surge is judged
    against, for `baseline_days`."""
    spans = surge_spans(found, rules)
    return [
        counts
        for index, counts in enumerate(hours)
        if not any(start < index + 1 and index < end for start, end in spans)
    ]


def surge_spans(found: Sequence[float], rules: SurgeRules) -> list[tuple[float, float]]:
    """The hours [start, end) each surge found at `found` (hours, any order) covers in its topic's
    baseline: from the longest window before it to its re-arm time, or only up to when it was found if
    another of the topic's surges was found within a re-arm time and two longest windows of it (before or
    after: the topic surged again within a longest window of being judged again on all its windows; a
    quiet topic's 24 hours, judged again from 48 hours after, may need a few more hours to show a shift).

    Why the difference: a surge over by its re-arm time is news that passed, and its later hours (the
    alert reported them) are kept out so they do not raise the topic's level. A surge found again as soon
    as the topic was judged again is still there: a lasting shift, the topic's new level. Its hours after
    each alert must reach the baseline, or every re-armed look meets the calm level of before and the
    topic alerts about daily until the shift is `baseline_days` old. The last alert of such a chain is
    part of the shift too: keeping its later hours out would cost one more alert a day later."""
    longest = max(rules.windows)
    times = sorted(found)
    spans = []
    near = rules.chained_hours
    for index, at in enumerate(times):
        before = index > 0 and at - times[index - 1] <= near
        after = index + 1 < len(times) and times[index + 1] - at <= near
        spans.append((at - longest, at if before or after else at + rules.rearm_hours))
    return spans


def judge_all(
    windows: Mapping[int, Mapping[str, Counts]],
    hourly: Mapping[str, Sequence[Counts]],
    rules: SurgeRules = SurgeRules(),
) -> list[Verdict]:
    """Every topic seen in a window judged (`judge_topic`), by name. `windows`: hours -> counts per topic of
    the last that many hours; `hourly`: each topic's counts per hour of its baseline, oldest first (a topic
    missing: the prior alone)."""
    past = [c for hours in hourly.values() for c in hours]
    total = sum(c.messages for c in past)
    overall = sum(c.negative for c in past) / total if total else 0.0
    topics = sorted({intent for counts in windows.values() for intent in counts})
    verdicts = []
    for intent in topics:
        hours = hourly.get(intent, [])
        verdicts.append(
            judge_topic(
                intent,
                {size: counts.get(intent, Counts(0, 0)) for size, counts in windows.items()},
                {size: blocks_of(hours, size) for size in windows},
                overall,
                rules,
            )
        )
    return verdicts
