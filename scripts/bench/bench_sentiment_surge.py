"""Sentiment surge detector (#32 item 3): false alarms on a steady stream, detection delay on a surge.

    python scripts/bench/bench_sentiment_surge.py                    # the shipped rolling windows
    python scripts/bench/bench_sentiment_surge.py --detector day     # the former UTC-day-so-far window
    python scripts/bench/bench_sentiment_surge.py --windows 6,24 --p-value 2e-5 --days 500
    python scripts/bench/bench_sentiment_surge.py --skip-steady --skip-delay --skip-shifts --trials 30
    python scripts/bench/bench_sentiment_surge.py --skip-steady --skip-delay --skip-repeats   # lasting shifts

Synthetic counts only (no text, no database: the detector's numbers, `bot.insights.surge.judge_topic`, as
`bot.runtime.sentiment` calls it through `judge_all`). TOPICS topics, each with its own steady negative
share (1-15%) and daily volume (5-400 scored messages, a quiet topic to a busy one), hour by hour with a
daily cycle. The detector runs once an hour (the server runs it every few minutes: more looks, so the
hourly figure is a lower bound of the server's false-alarm rate; `--every` changes it).

- `--detector rolling` (shipped): each window of `--windows` hours up to the look against the
  `--baseline-days` days before the longest window, cut into blocks of the window's length; each window
  at `p-value` split between the windows with enough messages to be tested; after an alert, a topic is
  judged only on windows whose hours all come `--rearm` hours after it, and its hours are left out of the
  topic's baseline as served (`surge_spans`: from the longest window before it to its re-arm time, or to
  when it was found if the topic surged again once re-armed).
- `--detector day` (before): the UTC day so far against the 14 days before it, at the whole `p-value`,
  at most once per topic and day.

- Steady: DAYS days of the steady stream; "day-to-day noise" also draws each topic's share per day
  from a beta distribution around its steady share (sd about a third of it), which real traffic has and
  a binomial test alone would read as surges. Reported: alerts per 1,000 topic-days.
- Surge: after the baseline's steady days, one topic's share rises by RISE points from midnight or noon of
  the next day and stays up; reported: the share of trials alerted by that day's end and the median hours
  from the rise to the alert, and (rolling) alerted within 24 hours of the rise.
- Repeats (rolling): one topic's share rises by RISE points from noon for a few hours, then is back to its
  steady 5 %; reported: the trials alerted, and alerted more than once over the 3 days from the rise (one
  surge, one alert, unless it is still there past the re-arm time).
- Lasting shifts (rolling): one topic's share rises by RISE points at noon and stays up; reported: the
  alerts over the 14 days from the rise (its shifted hours must reach its baseline, or it alerts daily).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from bot.config import Settings
from bot.insights.surge import (
    Counts,
    SurgeRules,
    blocks_of,
    judge,
    judge_topic,
    outside_surges,
    rearmed_windows,
)

TOPICS = 40
HOURS = 24
# share of a day's messages in each hour: quiet at night, busy in the day
CYCLE = np.array([1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 7, 7, 7, 7, 7, 6, 5, 4, 3, 2, 2, 1], dtype=float)
CYCLE /= CYCLE.sum()


def stream(rng: np.random.Generator, days: int, noise: bool) -> tuple[np.ndarray, np.ndarray]:
    """Messages and negatives per (hour, topic), hours of `days` days end to end."""
    shares = rng.uniform(0.01, 0.15, TOPICS)
    volumes = np.exp(rng.uniform(np.log(5), np.log(400), TOPICS))
    messages = rng.poisson(volumes[None, None, :] * CYCLE[None, :, None], (days, HOURS, TOPICS))
    daily = np.broadcast_to(shares, (days, TOPICS))
    if noise:  # beta around the steady share, sd about a third of it
        concentration = 9 / shares - 1
        daily = rng.beta(shares * concentration, (1 - shares) * concentration, (days, TOPICS))
    negative = rng.binomial(messages, daily[:, None, :])
    return messages.reshape(days * HOURS, -1), negative.reshape(days * HOURS, -1)


class Detector:
    """One detector over a stream of hourly counts (hours x topics): `look(hour)` gives the topics (by
    index) that alert at the end of that hour, with the dedupe of the server."""

    def __init__(
        self,
        kind: str,
        rules: SurgeRules,
        messages: np.ndarray,
        negative: np.ndarray,
        *,
        whole_baseline: bool = False,
        every_rearm_out: bool = False,
    ) -> None:
        """`whole_baseline`: keep the surges' hours in the baseline (served: left out), to compare;
        `every_rearm_out`: leave every surge's re-arm time out too, a lasting shift's included (a96f756)."""
        self.kind, self.rules, self.whole_baseline = kind, rules, whole_baseline
        self.every_rearm_out = every_rearm_out
        self.messages, self.negative = messages, negative
        self.cum_m = np.vstack([np.zeros((1, messages.shape[1]), int), np.cumsum(messages, axis=0)])
        self.cum_k = np.vstack([np.zeros((1, negative.shape[1]), int), np.cumsum(negative, axis=0)])
        self.last: dict[int, int] = {}  # day detector: topic -> the day of its last alert
        self.found: dict[int, list[int]] = {}  # rolling: topic -> when its alerts were found (hour ends)

    def first_look(self) -> int:
        """The first hour with a whole baseline before its windows."""
        longest = max(self.rules.windows) if self.kind == "rolling" else HOURS
        return self.rules.baseline_days * HOURS + longest - 1

    def _sum(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """Counts of hours [start, end) per topic."""
        return self.cum_m[end] - self.cum_m[start], self.cum_k[end] - self.cum_k[start]

    def _blocks(self, end: int, size: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """`count` blocks of `size` hours ending at hour `end` (exclusive), oldest first: (block, topic)."""
        edges = end - size * np.arange(count, -1, -1)
        return np.diff(self.cum_m[edges], axis=0), np.diff(self.cum_k[edges], axis=0)

    def look(self, hour: int) -> list[int]:
        """The topics that alert at the end of `hour` (and were not alerted for too recently)."""
        return self._rolling(hour) if self.kind == "rolling" else self._day(hour)

    def _rolling(self, hour: int) -> list[int]:
        rules, end = self.rules, hour + 1
        base_end = end - max(rules.windows)
        span = rules.baseline_days * HOURS
        base_m, base_k = self._sum(base_end - span, base_end)
        cleaned = self._outside(base_end - span, base_end)
        for t, hours in cleaned.items():
            base_m[t], base_k[t] = sum(c.messages for c in hours), sum(c.negative for c in hours)
        overall = base_k.sum() / base_m.sum() if base_m.sum() else 0.0
        blocks = {size: self._blocks(base_end, size, span // size) for size in rules.windows}
        windows = {size: self._sum(end - size, end) for size in rules.windows}
        armed = {t: rearmed_windows(end - found[-1], rules) for t, found in self.found.items()}
        possible = np.zeros(self.cum_m.shape[1], bool)
        for size, (m, k) in windows.items():
            could = _could_surge(m, k, base_m, base_k, overall, rules)
            could[[t for t, sizes in armed.items() if size not in sizes]] = False
            possible |= could
        fired = []
        for t in np.flatnonzero(possible):
            sizes = armed.get(t, rules.windows)
            verdict = judge_topic(
                str(t),
                {size: Counts(int(m[t]), int(k[t])) for size, (m, k) in windows.items() if size in sizes},
                {
                    size: blocks_of(cleaned[t], size) if t in cleaned else _counts(m[:, t], k[:, t])
                    for size, (m, k) in blocks.items()
                    if size in sizes
                },
                overall,
                rules,
            )
            if verdict.surge:
                self.found.setdefault(t, []).append(end)
                fired.append(t)
        return fired

    def _outside(self, start: int, end: int) -> dict[int, list[Counts]]:
        """The hourly baseline [start, end) of the topics with a surge's hours in it, without them."""
        longest, rearm = max(self.rules.windows), self.rules.rearm_hours
        if self.whole_baseline:
            return {}
        if self.every_rearm_out:
            return {
                t: [
                    Counts(int(self.messages[h, t]), int(self.negative[h, t]))
                    for h in range(start, end)
                    if not any(at - longest <= h < at + rearm for at in found)
                ]
                for t, found in self.found.items()
                if any(at - longest < end and at + rearm > start for at in found)
            }
        return {
            t: outside_surges(
                _counts(self.messages[start:end, t], self.negative[start:end, t]),
                [at - start for at in found],
                self.rules,
            )
            for t, found in self.found.items()
            if any(at - longest < end and at + rearm > start for at in found)
        }

    def _day(self, hour: int) -> list[int]:
        rules, day = self.rules, hour // HOURS
        base_m, base_k = self._blocks(day * HOURS, HOURS, rules.baseline_days)
        overall = base_k.sum() / base_m.sum() if base_m.sum() else 0.0
        win_m, win_k = self._sum(day * HOURS, hour + 1)
        fired = []
        for t in np.flatnonzero(
            _could_surge(win_m, win_k, base_m.sum(axis=0), base_k.sum(axis=0), overall, rules)
        ):
            if self.last.get(t) == day:
                continue
            days = _counts(base_m[:, t], base_k[:, t])
            if judge(str(t), Counts(int(win_m[t]), int(win_k[t])), days, overall, rules).surge:
                self.last[t] = day
                fired.append(t)
        return fired


def _could_surge(
    messages: np.ndarray,
    negative: np.ndarray,
    base_m: np.ndarray,
    base_k: np.ndarray,
    overall: float,
    rules: SurgeRules,
) -> np.ndarray:
    """Per topic, whether `judge` could call the window a surge: its minimum counts and minimum rise over
    the prior's mean (which the spread does not move), checked at once so the bench skips the rest."""
    prior = max(min(overall, 0.99), 0.01)
    expected = (base_k + rules.prior_messages * prior) / (base_m + rules.prior_messages)
    share = np.divide(negative, messages, out=np.zeros(len(messages)), where=messages > 0)
    enough = (messages >= rules.min_messages) & (negative >= rules.min_negative)
    return enough & (share >= expected + rules.min_rise - 1e-12)


def _counts(messages: np.ndarray, negative: np.ndarray) -> list[Counts]:
    return [Counts(int(n), int(k)) for n, k in zip(messages, negative, strict=True)]


def steady(
    rng: np.random.Generator, kind: str, days: int, every: int, rules: SurgeRules, whole: bool = False
) -> None:
    """Alerts per 1,000 topic-days on the steady stream, without and with day-to-day noise."""
    print("| stream | topic-days judged | alerts | per 1,000 topic-days |")
    print("|---|---|---|---|")
    for noise in (False, True):
        warmup = rules.baseline_days + 1
        messages, negative = stream(rng, days + warmup, noise)
        detector = Detector(kind, rules, messages, negative, whole_baseline=whole)
        judged_from = warmup * HOURS
        alerts = sum(
            len(detector.look(hour))
            for hour in range(judged_from + every - 1, messages.shape[0], every)
            if hour >= detector.first_look()
        )
        judged = days * TOPICS
        name = "steady, day-to-day noise" if noise else "steady (binomial only)"
        print(f"| {name} | {judged:,} | {alerts} | {1000 * alerts / judged:.2f} |", flush=True)


def delay(rng: np.random.Generator, kind: str, every: int, rules: SurgeRules, trials: int) -> None:
    """Hours from the rise to the alert, by the topic's daily volume and the rise, for a rise at midnight
    and at noon (median over trials; alerted by the day's end, and within 24 hours of the rise)."""
    print(
        "\n| topic's messages a day | steady share | rise (points) | rise at | alerted by the day's end "
        "| median hours to alert | alerted within 24 h |"
    )
    print("|---|---|---|---|---|---|---|")
    days = rules.baseline_days + 3  # a day for the longest window's lead, the rise's day, the day after
    surge_day = days - 2
    for volume in (30, 100, 400):
        for rise in (0.10, 0.20, 0.40):
            for start in (0, 12):
                same_day, within = [], 0
                for _ in range(trials):
                    messages = rng.poisson(volume * CYCLE[None, :], (days, HOURS))
                    share = np.full((days, HOURS), 0.05)
                    share[surge_day, start:] += rise
                    share[surge_day + 1 :] += rise
                    negative = rng.binomial(messages, share)
                    detector = Detector(kind, rules, messages.reshape(-1, 1), negative.reshape(-1, 1))
                    rise_hour = surge_day * HOURS + start
                    for hour in range(surge_day * HOURS + every - 1, days * HOURS, every):
                        if detector.look(hour):
                            hours = hour + 1 - rise_hour
                            if hour < (surge_day + 1) * HOURS:
                                same_day.append(hours)
                            within += hours <= 24
                            break
                median = f"{np.median(same_day):.0f}" if same_day else "missed"
                print(
                    f"| {volume} | 0.05 | {rise * 100:.0f} | {start:02d}:00 | {len(same_day) / trials:.0%} | "
                    f"{median} | {within / trials:.0%} |",
                    flush=True,
                )


def repeats(rng: np.random.Generator, every: int, rules: SurgeRules, trials: int) -> None:
    """Alerts over the 3 days from a rise at noon that lasts `hours`, then calm (rolling detector)."""
    print("\n| topic's messages a day | rise (points) | lasting | alerted | alerted twice or more |")
    print("|---|---|---|---|---|")
    days = rules.baseline_days + 4  # the longest window's lead, the rise's day and the 2 days after
    surge_day = days - 3
    for volume in (100, 400):
        for rise in (0.20, 0.40):
            for hours in (3, 6, 12, 36):
                alerted = twice = 0
                for _ in range(trials):
                    messages = rng.poisson(volume * CYCLE[None, :], (days, HOURS))
                    share = np.full(days * HOURS, 0.05)
                    share[surge_day * HOURS + 12 : surge_day * HOURS + 12 + hours] += rise
                    negative = rng.binomial(messages.reshape(-1), share)
                    detector = Detector("rolling", rules, messages.reshape(-1, 1), negative.reshape(-1, 1))
                    looks = range(surge_day * HOURS + every - 1, days * HOURS, every)
                    count = sum(len(detector.look(hour)) for hour in looks)
                    alerted += count >= 1
                    twice += count >= 2
                print(
                    f"| {volume} | {rise * 100:.0f} | {hours} h | {alerted / trials:.0%} | {twice / trials:.0%} |",
                    flush=True,
                )


def shifts(rng: np.random.Generator, every: int, rules: SurgeRules, trials: int, former: bool) -> None:
    """Alerts over the 14 days from a rise at noon that stays (rolling detector; `former`: every
    surge's re-arm time left out of the baseline, as before the fix)."""
    print("\n| topic's messages a day | rise (points) | alerts in 14 days: median | min-max |")
    print("|---|---|---|---|")
    days = rules.baseline_days + 16  # the longest window's lead, the rise's day and 14 days after (+ 1)
    surge_day = days - 15
    for volume in (100, 400):
        for rise in (0.20, 0.40):
            counts = []
            for _ in range(trials):
                messages = rng.poisson(volume * CYCLE[None, :], (days, HOURS))
                share = np.full(days * HOURS, 0.05)
                share[surge_day * HOURS + 12 :] += rise
                negative = rng.binomial(messages.reshape(-1), share)
                detector = Detector(
                    "rolling", rules, messages.reshape(-1, 1), negative.reshape(-1, 1), every_rearm_out=former
                )
                start = surge_day * HOURS + 12
                looks = range(start + every - 1, start + 14 * HOURS, every)
                counts.append(sum(len(detector.look(hour)) for hour in looks))
            print(
                f"| {volume} | {rise * 100:.0f} | {np.median(counts):.0f} | {min(counts)}-{max(counts)} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    defaults = SurgeRules()
    parser.add_argument("--detector", choices=("rolling", "day"), default="rolling")
    parser.add_argument("--seed", type=int, default=32)
    parser.add_argument("--days", type=int, default=100, help="steady days judged per stream")
    parser.add_argument("--every", type=int, default=1, help="hours between runs of the detector")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--p-value", type=float, default=defaults.p_value, help="the test's level")
    parser.add_argument("--min-rise", type=float, default=defaults.min_rise, help="points over the baseline")
    parser.add_argument("--windows", default=",".join(map(str, defaults.windows)), help="hours, rolling")
    parser.add_argument("--baseline-days", type=int, default=defaults.baseline_days)
    parser.add_argument("--rearm", type=float, default=defaults.rearm_hours, help="hours between alerts")
    parser.add_argument("--skip-steady", action="store_true")
    parser.add_argument("--skip-delay", action="store_true")
    parser.add_argument("--skip-repeats", action="store_true")
    parser.add_argument("--skip-shifts", action="store_true")
    parser.add_argument(
        "--whole-baseline", action="store_true", help="keep surges' hours in the baseline (steady only)"
    )
    parser.add_argument(
        "--every-rearm-out",
        action="store_true",
        help="lasting shifts: leave every alert's re-arm time out of the baseline (the rule before the fix)",
    )
    args = parser.parse_args()
    windows = Settings(sentiment_window_hours=args.windows).sentiment_window_hours  # validated as served
    rules = replace(
        defaults,
        p_value=args.p_value,
        min_rise=args.min_rise,
        windows=windows if args.detector == "rolling" else (24,),
        baseline_days=args.baseline_days,
        rearm_hours=args.rearm,
    )
    print(f"detector: {args.detector}; rules: {rules}")
    if not args.skip_steady:
        steady(
            np.random.default_rng(args.seed), args.detector, args.days, args.every, rules, args.whole_baseline
        )
    if not args.skip_delay:
        delay(np.random.default_rng(args.seed + 1), args.detector, args.every, rules, args.trials)
    if not args.skip_repeats and args.detector == "rolling":
        repeats(np.random.default_rng(args.seed + 2), args.every, rules, args.trials)
    if not args.skip_shifts and args.detector == "rolling":
        shifts(np.random.default_rng(args.seed + 3), args.every, rules, args.trials, args.every_rearm_out)


if __name__ == "__main__":
    main()
