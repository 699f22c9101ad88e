"""Sentiment surge detector (#32 item 3): false alarms on a steady stream, detection delay on a surge.

    python scripts/bench/bench_sentiment_surge.py            # the tables in docs/evaluation.md
    python scripts/bench/bench_sentiment_surge.py --seed 7   # another draw

Synthetic counts only (no text, no database: the detector's numbers, `bot.insights.surge.judge_all`, as
`bot.runtime.sentiment` calls it). TOPICS topics, each with its own steady negative share (1-15%) and
daily volume (5-400 scored messages, a quiet topic to a busy one), hour by hour with a daily cycle. The
detector runs once an hour (the server runs it every few minutes: more looks at the same day, so the
hourly figure is a lower bound of the server's false-alarm rate; `--every` changes it), comparing the UTC
day so far with the 14 days before it, and alerts at most once per topic and day.

- Steady: DAYS days of the steady stream; "day-to-day noise" also draws each topic's share per day
  from a beta distribution around its steady share (sd about a third of it), which real traffic has and
  a binomial test alone would read as surges. Reported: alerts per 1,000 topic-days.
- Surge: after 14 steady days, one topic's share rises by RISE points from a given hour of day 15 on;
  reported: the hours from the rise to the alert (or "missed" by the day's end), per volume and rise.
"""

from __future__ import annotations

import argparse

import numpy as np

from bot.insights.surge import Counts, SurgeRules, judge_all

BASELINE_DAYS = 14
TOPICS = 40
HOURS = 24
# share of a day's messages in each hour: quiet at night, busy in the day
CYCLE = np.array([1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 7, 7, 7, 7, 7, 6, 5, 4, 3, 2, 2, 1], dtype=float)
CYCLE /= CYCLE.sum()


def stream(rng: np.random.Generator, days: int, noise: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Messages and negatives per (day, hour, topic), and the topics' daily volumes."""
    shares = rng.uniform(0.01, 0.15, TOPICS)
    volumes = np.exp(rng.uniform(np.log(5), np.log(400), TOPICS))
    messages = rng.poisson(volumes[None, None, :] * CYCLE[None, :, None], (days, HOURS, TOPICS))
    daily = np.broadcast_to(shares, (days, TOPICS))
    if noise:  # beta around the steady share, sd about a third of it
        concentration = 9 / shares - 1
        daily = rng.beta(shares * concentration, (1 - shares) * concentration, (days, TOPICS))
    negative = rng.binomial(messages, daily[:, None, :])
    return messages, negative, volumes


def alerts_on(
    messages: np.ndarray, negative: np.ndarray, day: int, every: int, rules: SurgeRules
) -> dict[str, int]:
    """The topics that alert on `day`, each with the first hour (of runs every `every` hours) it did."""
    past = slice(day - BASELINE_DAYS, day)
    topics = range(messages.shape[2])
    daily_messages, daily_negative = messages[past].sum(axis=1), negative[past].sum(axis=1)
    baseline = {
        str(t): [
            Counts(int(n), int(k))
            for n, k in zip(daily_messages[:, t], daily_negative[:, t], strict=True)
            if n
        ]
        for t in topics
    }
    fired: dict[str, int] = {}
    for hour in range(every - 1, HOURS, every):
        window = {
            str(t): Counts(int(messages[day, : hour + 1, t].sum()), int(negative[day, : hour + 1, t].sum()))
            for t in topics
            if str(t) not in fired
        }
        for verdict in judge_all(window, baseline, rules):
            if verdict.surge:
                fired[verdict.intent] = hour
    return fired


def steady(rng: np.random.Generator, days: int, every: int, rules: SurgeRules) -> None:
    """Alerts per 1,000 topic-days on the steady stream, without and with day-to-day noise."""
    print("| stream | topic-days judged | alerts | per 1,000 topic-days |")
    print("|---|---|---|---|")
    for noise in (False, True):
        messages, negative, _ = stream(rng, days + BASELINE_DAYS, noise)
        alerts = sum(
            len(alerts_on(messages, negative, day, every, rules))
            for day in range(BASELINE_DAYS, days + BASELINE_DAYS)
        )
        judged = days * TOPICS
        name = "steady, day-to-day noise" if noise else "steady (binomial only)"
        print(f"| {name} | {judged:,} | {alerts} | {1000 * alerts / judged:.2f} |")


def delay(rng: np.random.Generator, every: int, rules: SurgeRules, trials: int) -> None:
    """Hours from the rise to the alert, by the topic's daily volume and the rise, for a rise at midnight
    and at noon (median over trials; missed: no alert that day)."""
    print(
        "\n| topic's messages a day | steady share | rise (points) | rise at | alerted | median hours to alert |"
    )
    print("|---|---|---|---|---|---|")
    for volume in (30, 100, 400):
        for rise in (0.10, 0.20, 0.40):
            for start in (0, 12):
                hours = []
                for _ in range(trials):
                    days = BASELINE_DAYS + 1
                    messages = rng.poisson(volume * CYCLE[None, :], (days, HOURS))
                    share = np.full((days, HOURS), 0.05)
                    share[-1, start:] += rise
                    negative = rng.binomial(messages, share)
                    fired = alerts_on(messages[:, :, None], negative[:, :, None], BASELINE_DAYS, every, rules)
                    if "0" in fired:
                        hours.append(fired["0"] + 1 - start)
                alerted = len(hours) / trials
                median = f"{np.median(hours):.0f}" if hours else "missed"
                print(f"| {volume} | 0.05 | {rise * 100:.0f} | {start:02d}:00 | {alerted:.0%} | {median} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=32)
    parser.add_argument("--days", type=int, default=100, help="steady days judged per stream")
    parser.add_argument("--every", type=int, default=1, help="hours between runs of the detector")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--p-value", type=float, default=SurgeRules.p_value, help="the test's level")
    parser.add_argument(
        "--min-rise", type=float, default=SurgeRules.min_rise, help="points above the baseline"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    rules = SurgeRules(p_value=args.p_value, min_rise=args.min_rise)
    print(f"rules: {rules}")
    steady(rng, args.days, args.every, rules)
    delay(rng, args.every, rules, args.trials)


if __name__ == "__main__":
    main()
