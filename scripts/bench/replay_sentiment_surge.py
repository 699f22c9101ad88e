"""Replay the sentiment tests' stream (#32 item 3) through the day: when is the injected surge found?

    python scripts/bench/replay_sentiment_surge.py                    # seeds 0-9, refund_request 12% -> 50%
    python scripts/bench/replay_sentiment_surge.py --share 0.35
    python scripts/bench/replay_sentiment_surge.py --from-hour 14 --volume 400   # an afternoon surge
    python scripts/bench/replay_sentiment_surge.py --former      # the former rule: the UTC day so far

The stream of `tests/runtime/test_sentiment_watch.py` (4 topics, 40 messages a topic and day spread over
the day, or `--volume` for the surge's topic, each day's share drawn around the topic's own, 20 days in a
real SQLite database), written up to 23:59 of the last day; the last day is then judged as the server
would every 5 minutes (`SentimentWatch` with the shipped settings, each look seeing only the messages
written by then, surges stored and deduplicated as served). Prints per seed the hour the surge was found
(None: not that day) and how many other topics alarmed. `--former` judges instead with the rule before
the rolling windows: the UTC day so far against the 14 days before it at p < 1e-5, once per topic and day.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine as Database
from sqlmodel import Session, select

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the tests' stream helper
from bot.insights.sentiment import day_start, topic_counts, topic_day_counts
from bot.insights.surge import Counts, SurgeRules, judge
from bot.runtime.sentiment import SentimentWatch
from bot.store.db import make_engine
from bot.store.models import SentimentSurge
from tests.runtime.test_sentiment_watch import NAMES, SURGE, seed_stream

END = datetime(2026, 11, 20, 23, 59, tzinfo=UTC)
FORMER_P_VALUE = 1e-5  # the level of the former rule (one window, the whole budget)


def former(database: Database, rise: datetime) -> tuple[float | None, int]:
    """The former rule on the last day, every 5 minutes from the rise: hours to the surge's alert (None:
    not that day) and the other topics' alerts (once per topic)."""
    start = day_start(rise)
    days: dict[str, list[Counts]] = {}
    counted = topic_day_counts(database, start - timedelta(days=14), start)
    for cell, counts in sorted(counted.items(), key=lambda item: (item[0].intent, item[0].day)):
        days.setdefault(cell.intent, []).append(counts)
    past = [c for d in days.values() for c in d]
    overall = sum(c.negative for c in past) / sum(c.messages for c in past)
    rules = replace(SurgeRules(), p_value=FORMER_P_VALUE)
    fired: dict[str, datetime] = {}
    for minutes in range(int((rise - start).total_seconds() // 60) + 5, 24 * 60, 5):
        now = start + timedelta(minutes=minutes)
        for intent, counts in topic_counts(database, start, now).items():
            if intent not in fired and judge(intent, counts, days.get(intent, []), overall, rules).surge:
                fired[intent] = now
    found = fired.pop(SURGE, None)
    return (None if found is None else (found - rise).total_seconds() / 3600), len(fired)


def replay(seed: int, share: float, from_hour: int, volume: float, rule: str) -> tuple[float | None, int]:
    """Hours from the rise to the surge's alert (None: not that day), and the other topics' alerts."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bot.db"
        start = day_start(END)
        rise = start + timedelta(hours=from_hour)
        since = None if from_hour == 0 else rise  # 0: the tests' own stream (the surge's day drawn whole)
        seed_stream(
            url, END, surge=SURGE, surge_share=share, surge_since=since, seed=seed, volumes={SURGE: volume}
        )
        database = make_engine(url)
        if rule == "former":
            try:
                return former(database, rise)
            finally:
                database.dispose()
        now = [rise]
        watch = SentimentWatch(database, lambda: NAMES, clock=lambda: now[0])
        try:
            for minutes in range(from_hour * 60 + 5, 24 * 60, 5):
                now[0] = start + timedelta(minutes=minutes)
                watch()
            with Session(database) as session:
                surges = session.exec(select(SentimentSurge)).all()
            found = [s.created_at for s in surges if s.intent == SURGE]
            hours = (found[0] - rise).total_seconds() / 3600 if found else None
            return hours, sum(s.intent != SURGE for s in surges)
        finally:
            database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--share", type=float, default=0.5, help="the surge topic's share from the rise on")
    parser.add_argument("--from-hour", type=int, default=0, help="the hour (UTC) of the last day it rises")
    parser.add_argument("--volume", type=float, default=40, help="the surge topic's messages a day")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--former", action="store_true", help="the UTC day so far, as before the windows")
    args = parser.parse_args()
    rule = "former" if args.former else "rolling"
    found = []
    for seed in range(args.seeds):
        hours, others = replay(seed, args.share, args.from_hour, args.volume, rule)
        print(
            f"seed {seed}: found {'-' if hours is None else f'{hours:.1f} h after the rise'}, "
            f"other topics alarmed {others}",
            flush=True,
        )
        if hours is not None:
            found.append(hours)
    print(f"found in {len(found)} of {args.seeds}; hours {sorted(round(h, 1) for h in found)}")


if __name__ == "__main__":
    main()
