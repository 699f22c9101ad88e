"""Replay the sentiment tests' stream (#32 item 3) through the day: when is the injected surge found?

    python scripts/bench/replay_sentiment_surge.py            # seeds 0-9, refund_request 12% -> 50%
    python scripts/bench/replay_sentiment_surge.py --share 0.35

The stream of `tests/runtime/test_sentiment_watch.py` (4 topics, 40 messages a topic and day spread over
the day, each day's share drawn around the topic's own, 20 days in a real SQLite database), written up
to 23:59 of the last day; the last day is then judged as the server would every 5 minutes (only the
messages written by then), with the shipped rules. Prints per seed the hour the surge was found (None:
not that day) and how many other topics alarmed on the way.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the tests' stream helper
from bot.insights.sentiment import by_topic, day_start, topic_day_counts
from bot.insights.surge import judge_all
from bot.runtime.sentiment import SentimentWatch
from bot.store.db import make_engine
from tests.runtime.test_sentiment_watch import NAMES, SURGE, seed_stream

END = datetime(2026, 11, 20, 23, 59, tzinfo=UTC)


def replay(seed: int, share: float) -> tuple[float | None, int]:
    """The hour the surge was first found (None: not that day) and the other topics' alarms before it."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bot.db"
        seed_stream(url, END, surge=SURGE, surge_share=share, seed=seed)
        database = make_engine(url)
        start = day_start(END)
        baseline = SentimentWatch(database, lambda: NAMES, clock=lambda: END).baseline(start)
        others = 0
        try:
            for minutes in range(5, 24 * 60, 5):
                window = by_topic(topic_day_counts(database, start, start + timedelta(minutes=minutes)))
                fired = {v.intent for v in judge_all(window, baseline) if v.surge}
                others += len(fired - {SURGE})
                if SURGE in fired:
                    return minutes / 60, others
            return None, others
        finally:
            database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--share", type=float, default=0.5, help="the surge topic's share on the last day")
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    found = []
    for seed in range(args.seeds):
        hours, others = replay(seed, args.share)
        print(
            f"seed {seed}: found at {'-' if hours is None else f'{hours:.1f} h'}, other topics alarmed {others}"
        )
        if hours is not None:
            found.append(hours)
    print(f"found in {len(found)} of {args.seeds}; hours {sorted(round(h, 1) for h in found)}")


if __name__ == "__main__":
    main()
