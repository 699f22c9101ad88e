"""The surge test (bot.insights.surge) as a table: minimum counts, minimum rise, each topic against its own
days, a thin history leaning on the all-topics share, and a share that wanders from day to day; then the
rolling windows: blocks of the baseline, the budget split between windows, an afternoon surge."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from bot.config import Settings
from bot.insights.surge import (
    Counts,
    SurgeRules,
    blocks_of,
    judge,
    judge_all,
    outside_surges,
    rearmed_windows,
    surge_spans,
)
from tests.cli.test_bad_config import serve

DAYS = 14


def even(messages: int, negative: int) -> list[Counts]:
    """`messages` and `negative` spread as evenly as counts allow over DAYS days."""
    return [
        Counts(messages // DAYS + (d < messages % DAYS), negative // DAYS + (d < negative % DAYS))
        for d in range(DAYS)
    ]


@pytest.mark.parametrize(
    ("window", "days", "overall", "surge", "why"),
    [
        (Counts(60, 30), even(800, 48), 0.06, True, "50% against 6%: a surge"),
        (Counts(3, 3), even(1000, 10), 0.01, False, "3 of 3 is very unlikely, but 3 messages prove nothing"),
        (Counts(12, 6), even(1000, 10), 0.01, False, "under the minimum of 20 messages"),
        (Counts(40, 4), even(1000, 10), 0.01, False, "under the minimum of 5 negatives"),
        (Counts(5000, 800), even(50000, 6000), 0.12, False, "16% against 12%: significant, not 10 points"),
        (Counts(60, 30), even(800, 360), 0.06, False, "45% is this topic's usual level"),
        (Counts(60, 38), [], 0.06, True, "a topic with no history is judged by all topics' share"),
        (Counts(60, 25), [], 0.06, False, "... with more doubt than one with a history"),
        (Counts(60, 25), even(800, 48), 0.06, True, "(the same 25 of 60 against a history of 6%)"),
        (Counts(60, 35), [Counts(15, 5)], 0.06, False, "a thin history at 33% (5 of 15) leaves 58% possible"),
        (Counts(60, 0), even(800, 48), 0.06, False, "nothing negative"),
    ],
)
def test_judge(window: Counts, days: list[Counts], overall: float, surge: bool, why: str) -> None:
    verdict = judge("topic", window, days, overall)
    assert verdict.surge is surge, why
    if surge:
        assert verdict.p_value < SurgeRules().p_value


def test_too_few_messages_are_not_even_tested() -> None:
    assert judge("topic", Counts(3, 3), even(1000, 10), 0.01).p_value == 1.0


def test_a_share_that_wanders_from_day_to_day_needs_a_bigger_jump() -> None:
    """Two topics at 15% over 14 days: one every day, one at 5% and 25% on alternate days. The same 35%
    today is news for the first and not far from an ordinary high day for the second."""
    steady = even(1400, 210)
    wandering = [Counts(100, 5 if d % 2 else 25) for d in range(DAYS)]
    today = Counts(100, 35)
    assert judge("steady", today, steady, 0.15).surge
    assert not judge("wandering", today, wandering, 0.15).surge
    assert judge("wandering", Counts(100, 80), wandering, 0.15).surge  # a jump far past its highs still is


def hourly(days: list[Counts]) -> list[Counts]:
    """Hourly counts whose 24-hour blocks are `days` (each day's messages in its last hour)."""
    return [c for day in days for c in [*[Counts(0, 0)] * 23, day]]


def test_every_topic_is_judged_against_its_own_baseline() -> None:
    """The same 30% is a surge for a calm topic and the usual for a topic people complain about."""
    window = {24: {"calm": Counts(100, 30), "complained": Counts(100, 30)}}
    days = {"calm": hourly(even(1400, 70)), "complained": hourly(even(1400, 420))}
    verdicts = {v.intent: v for v in judge_all(window, days)}
    assert verdicts["calm"].surge and not verdicts["complained"].surge
    assert verdicts["calm"].baseline_share == pytest.approx(0.05, abs=0.01)
    assert verdicts["complained"].baseline_share == pytest.approx(0.30, abs=0.01)
    assert verdicts["calm"].baseline == Counts(1400, 70)


def test_blocks_are_counted_back_from_the_newest_hour() -> None:
    hours = [Counts(1, i % 2) for i in range(10)]
    assert blocks_of(hours, 3) == [Counts(3, 2), Counts(3, 1), Counts(3, 2)]  # the oldest hour left out
    assert blocks_of(hours, 24) == []


def test_each_window_tested_gets_its_share_of_the_budget() -> None:
    """A window that passes the whole budget but not its half is no surge when another window has enough
    messages to be tested too; a window too thin to be tested takes none of it."""
    days = even(1400, 140)
    window = Counts(40, 13)
    p_value = judge("topic", window, days, 0.1).p_value
    rules = SurgeRules(p_value=p_value * 1.5, windows=(3, 24))
    assert judge("topic", window, days, 0.1, rules).surge  # alone, at the whole budget
    baseline = {"topic": hourly(days)}
    [verdict] = judge_all({3: {"topic": window}, 24: {"topic": Counts(100, 10)}}, baseline, rules)
    assert not verdict.surge and verdict.hours == 3 and verdict.p_value == pytest.approx(p_value)
    [verdict] = judge_all({3: {"topic": Counts(5, 5)}, 24: {"topic": window}}, baseline, rules)
    assert verdict.surge and verdict.hours == 24


@pytest.mark.parametrize(
    ("since_found", "windows", "why"),
    [
        (None, (3, 24), "no surge stored: every window"),
        (2.0, (), "just found: none (one alert, not one per look)"),
        (24.5, (), "re-armed, but the last 3 hours still hold the half hour before the re-arm time"),
        (27.0, (3,), "the last 3 hours all after the re-arm time; the 24 still hold the surge's day"),
        (48.0, (3, 24), "a day after the re-arm time: both"),
    ],
)
def test_a_topic_is_judged_again_only_on_hours_after_its_rearm_time(
    since_found: float | None, windows: tuple[int, ...], why: str
) -> None:
    assert rearmed_windows(since_found, SurgeRules(windows=(3, 24), rearm_hours=24)) == windows, why


def test_a_surges_hours_are_left_out_of_its_topics_baseline() -> None:
    """Found at hour 30: the 24 hours before (its longest window) and the 24 after (its re-arm time)."""
    hours = [Counts(1, i) for i in range(100)]
    rules = SurgeRules(windows=(3, 24), rearm_hours=24)
    kept = outside_surges(hours, [30.0], rules)
    assert [c.negative for c in kept] == [*range(6), *range(54, 100)]
    assert outside_surges(hours, [], SurgeRules()) == hours
    assert len(outside_surges(hours, [30.0, 110.0], rules)) == 100 - 48 - 14  # two surges, 80 h apart
    assert len(outside_surges(hours, [30.0, 80.0], rules)) == 100 - 24 - 24  # 50 h: one lasting shift


@pytest.mark.parametrize(
    ("found", "spans", "why"),
    [
        ([30.0], [(6.0, 54.0)], "alone: its longest window before, its re-arm time after"),
        ([30.0, 57.0], [(6.0, 30.0), (33.0, 57.0)], "found again once its 3 hours re-armed: a lasting shift"),
        ([57.0, 30.0], [(6.0, 30.0), (33.0, 57.0)], "(in any order)"),
        ([30.0, 78.0], [(6.0, 30.0), (54.0, 78.0)], "found again once its 24 hours re-armed: lasting too"),
        ([30.0, 102.0], [(6.0, 30.0), (78.0, 102.0)], "... within a day of that (a quiet topic's 24 hours)"),
        ([30.0, 103.0], [(6.0, 54.0), (79.0, 127.0)], "found 73 h later: a new surge, the first one passed"),
        ([30.0, 57.0, 140.0], [(6.0, 30.0), (33.0, 57.0), (116.0, 164.0)], "a shift, then a new surge"),
    ],
)
def test_a_surge_found_again_once_rearmed_keeps_its_later_hours_in_the_baseline(
    found: list[float], spans: list[tuple[float, float]], why: str
) -> None:
    assert surge_spans(found, SurgeRules(windows=(3, 24), rearm_hours=24)) == spans, why


def test_a_lasting_shift_alerts_at_most_three_times_in_two_weeks() -> None:
    """One topic of 400 messages a day goes from 5 % to 25 % negative for good, looked at every hour for
    14 days as served (re-armed windows, surges' hours out of the baseline) beside 3 calm topics. Its
    shifted hours must reach its baseline: when every alert kept its re-arm time out too, none ever did,
    and the topic alerted about every 27 hours (10-11 times in the reviewer's probe)."""
    rules = SurgeRules()
    longest, span = max(rules.windows), rules.baseline_days * 24
    rng = np.random.default_rng(4)
    shift = span + longest  # the first hour judged
    hours = {
        topic: [
            Counts(int(n), int(rng.binomial(n, 0.25 if topic == "shifted" and h >= shift else 0.05)))
            for h, n in enumerate(rng.poisson(400 * np.tile(CYCLE, 30)))
        ]
        for topic in ("shifted", "calm0", "calm1", "calm2")
    }
    found: dict[str, list[int]] = {}
    for end in range(shift + 1, shift + 14 * 24 + 1):  # a look at the end of each hour
        start = end - longest - span
        windows = {size: {t: _sum(hs[end - size : end]) for t, hs in hours.items()} for size in rules.windows}
        baseline = {t: hs[start : end - longest] for t, hs in hours.items()}
        for topic, times in found.items():
            baseline[topic] = outside_surges(baseline[topic], [at - start for at in times], rules)
            for size in set(rules.windows) - set(rearmed_windows(end - times[-1], rules)):
                windows[size].pop(topic)
        for verdict in judge_all(windows, baseline, rules):
            if verdict.surge:
                found.setdefault(verdict.intent, []).append(end)
    assert list(found) == ["shifted"] and 1 <= len(found["shifted"]) <= 3, found


def _sum(hours: list[Counts]) -> Counts:
    return Counts(sum(c.messages for c in hours), sum(c.negative for c in hours))


# share of a day's messages in each hour, as scripts/bench/bench_sentiment_surge.py: quiet at night
CYCLE = np.array([1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 7, 7, 7, 7, 7, 6, 5, 4, 3, 2, 2, 1]) / 104


@pytest.mark.parametrize("seed", range(5))
def test_a_surge_starting_in_the_afternoon_is_caught_within_hours(seed: int) -> None:
    """A busy topic (600 messages a day at 8% negative) jumps to 35% from 13:00. Its last 3 hours say so by
    16:00; the UTC day so far (the former window) is diluted by the calm morning (about 14% negative at
    16:00, under the 10 points' rise) and alarms later, or not that day."""
    rng = np.random.default_rng(seed)
    days = 16  # the baseline's 14, the day before (the 24-hour window's lead), the surge's day
    messages = rng.poisson(600 * CYCLE, (days, 24))
    share = np.full((days, 24), 0.08)
    share[-1, 13:] = 0.35
    negative = rng.binomial(messages, share)
    hours = [Counts(int(n), int(k)) for n, k in zip(messages.ravel(), negative.ravel(), strict=True)]
    today = 15 * 24  # the surge day's first hour

    def last(size: int, now: int) -> Counts:
        part = hours[now - size : now]
        return Counts(sum(c.messages for c in part), sum(c.negative for c in part))

    def rolling(now: int) -> bool:
        baseline = {"topic": hours[now - 24 - 14 * 24 : now - 24]}
        [verdict] = judge_all({size: {"topic": last(size, now)} for size in (3, 24)}, baseline)
        return verdict.surge

    def day_so_far(now: int) -> bool:  # the former rule: today so far against the 14 days before
        return judge("topic", last(now - today, now), blocks_of(hours[:today], 24)[-14:], 0.08).surge

    found = [hour for hour in range(14, 25) if rolling(today + hour)]
    assert found and found[0] <= 16
    former = [hour for hour in range(14, 25) if day_so_far(today + hour)]
    assert not former or former[0] > found[0]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sentiment_p_value": 0.5}, "less than or equal to 0.01"),
        ({"sentiment_p_value": 0}, "greater than 0"),
        (
            {"sentiment_window_hours": "0,3"},
            "BOT_SENTIMENT_WINDOW_HOURS must be 1 to 4 whole numbers of hours",
        ),
        ({"sentiment_window_hours": "3,soon"}, "from 1 to 72, comma-separated (e.g. 3,24), not '3,soon'"),
        ({"sentiment_window_hours": "1,2,3,4,5"}, "1 to 4 whole numbers"),
        ({"sentiment_window_hours": "48", "sentiment_baseline_days": 7}, "at least 10 days"),
        ({"sentiment_negative_threshold": -0.1}, "greater than or equal to 0"),
        ({"sentiment_min_rise": 1.0}, "less than 1"),
        ({"sentiment_min_messages": 0}, "greater than or equal to 1"),
        ({"sentiment_rearm_hours": 2}, "greater than or equal to 24"),
        ({"sentiment_seconds": 1}, "greater than or equal to 10"),
    ],
)
def test_a_bad_setting_is_refused_saying_what_is_allowed(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(**changes)
    [error] = caught.value.errors()
    assert error["loc"][0] in changes and message in error["msg"], error


def test_the_settings_make_the_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_SENTIMENT_WINDOW_HOURS", "24, 6")  # as written in an environment
    monkeypatch.setenv("BOT_SENTIMENT_MIN_RISE", "0.2")
    rules = SurgeRules.from_settings(Settings())
    assert rules.windows == (6, 24) and rules.min_rise == 0.2 and rules.p_value == SurgeRules().p_value


def test_a_bad_setting_stops_the_server_with_one_line(tmp_path: Path) -> None:
    result = serve(tmp_path, BOT_SENTIMENT_WINDOW_HOURS="0,24")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(
        "error: setting 'sentiment_window_hours': Value error, BOT_SENTIMENT_WINDOW_HOURS must be 1 to 4"
    ), result.stderr
