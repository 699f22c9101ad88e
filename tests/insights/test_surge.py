"""The surge test (bot.insights.surge) as a table: minimum counts, minimum rise, each topic against its own
baseline, and a thin baseline leaning on the all-topics share."""

from __future__ import annotations

import pytest

from bot.insights.surge import Counts, SurgeRules, judge, judge_all


@pytest.mark.parametrize(
    ("window", "baseline", "overall", "surge", "why"),
    [
        (Counts(60, 30), Counts(800, 48), 0.06, True, "50% against 6%: a surge"),
        (
            Counts(3, 3),
            Counts(1000, 10),
            0.01,
            False,
            "3 of 3 is very unlikely, but 3 messages prove nothing",
        ),
        (Counts(12, 6), Counts(1000, 10), 0.01, False, "under the minimum of 20 messages"),
        (Counts(40, 4), Counts(1000, 10), 0.01, False, "under the minimum of 5 negatives"),
        (Counts(5000, 800), Counts(50000, 6000), 0.12, False, "16% against 12%: significant, not 10 points"),
        (Counts(60, 30), Counts(800, 360), 0.06, False, "45% is this topic's usual level"),
        (Counts(60, 30), Counts(0, 0), 0.06, True, "a topic with no history is judged by all topics' share"),
        (Counts(60, 25), Counts(0, 0), 0.06, False, "... with more doubt than one with a history"),
        (Counts(60, 25), Counts(800, 48), 0.06, True, "(the same 25 of 60 against a history of 6%)"),
        (Counts(60, 30), Counts(15, 5), 0.06, False, "a thin baseline at 33% (5 of 15) leaves 50% possible"),
        (Counts(60, 0), Counts(800, 48), 0.06, False, "nothing negative"),
    ],
)
def test_judge(window: Counts, baseline: Counts, overall: float, surge: bool, why: str) -> None:
    verdict = judge("topic", window, baseline, overall)
    assert verdict.surge is surge, why
    if surge:
        assert verdict.p_value < SurgeRules().p_value


def test_too_few_messages_are_not_even_tested() -> None:
    assert judge("topic", Counts(3, 3), Counts(1000, 10), 0.01).p_value == 1.0


def test_every_topic_is_judged_against_its_own_baseline() -> None:
    """The same 30% is a surge for a calm topic and the usual for a topic people complain about."""
    window = {"calm": Counts(100, 30), "complained": Counts(100, 30)}
    baseline = {"calm": Counts(1400, 70), "complained": Counts(1400, 420)}
    verdicts = {v.intent: v for v in judge_all(window, baseline)}
    assert verdicts["calm"].surge and not verdicts["complained"].surge
    assert verdicts["calm"].baseline_share == pytest.approx(0.05, abs=0.01)
    assert verdicts["complained"].baseline_share == pytest.approx(0.30, abs=0.01)
