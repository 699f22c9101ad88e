"""The surge test (bot.insights.surge) as a table: minimum counts, minimum rise, each topic against its own
days, a thin history leaning on the all-topics share, and a share that wanders from day to day."""

from __future__ import annotations

import pytest

from bot.insights.surge import Counts, SurgeRules, judge, judge_all

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
        (Counts(60, 35), [], 0.06, True, "a topic with no history is judged by all topics' share"),
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


def test_every_topic_is_judged_against_its_own_baseline() -> None:
    """The same 30% is a surge for a calm topic and the usual for a topic people complain about."""
    window = {"calm": Counts(100, 30), "complained": Counts(100, 30)}
    days = {"calm": even(1400, 70), "complained": even(1400, 420)}
    verdicts = {v.intent: v for v in judge_all(window, days)}
    assert verdicts["calm"].surge and not verdicts["complained"].surge
    assert verdicts["calm"].baseline_share == pytest.approx(0.05, abs=0.01)
    assert verdicts["complained"].baseline_share == pytest.approx(0.30, abs=0.01)
    assert verdicts["calm"].baseline == Counts(1400, 70)
