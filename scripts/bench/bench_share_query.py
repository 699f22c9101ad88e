"""What the off-topic share estimate's query costs (docs/evaluation.md, "Estimating the off-topic share").

    python scripts/bench/bench_share_query.py [--database sqlite|postgresql] [--rounds 15] [--decisions 20000]

Writes `--decisions` bot decisions with 5 candidates each into a scratch database (SQLite in a temporary
folder, or a scratch PostgreSQL database made from BOT_TEST_PG_ADMIN_URL / the tests' default), then times,
interleaved and in rotated order, three reads of the window the stats page reads:
- **scalar**: the three scalar columns the estimate read before it needed each decision's top candidate;
- **whole JSON**: the same plus every decision's `candidates` list, parsed in Python (the
  simple way to read each decision's top candidate);
- **served**: `bot.insights.off_topic_traffic.database_traffic`, what `GET /v1/stats` runs (the first
  candidate's intent and raw score by a JSON path, the model id, and the window's reviews).
Prints the median of each and the ratios to scalar. Timing only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, col

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the tests' scratch PostgreSQL helper

from bot.insights.off_topic_traffic import database_traffic, top_candidate  # noqa: E402
from bot.insights.stats import bot_decisions  # noqa: E402
from bot.store.db import make_engine, session_scope, upgrade  # noqa: E402
from bot.store.models import Conversation, DecisionLog  # noqa: E402

INTENTS = 77


def fill(database: sa.Engine, count: int, now: datetime) -> None:
    """`count` answered decisions, one a second back from `now`, 5 candidates each."""
    rng = np.random.default_rng(0)
    names = [f"intent_{i}" for i in range(INTENTS)]
    with session_scope(database) as session:
        conversation = Conversation()
        session.add(conversation)
        session.flush()
        rows = []
        for i in range(count):
            scores = np.sort(rng.uniform(0.2, 0.9, 5))[::-1]
            candidates = [
                {
                    "intent": names[int(rng.integers(INTENTS))],
                    "score": round(float(score), 4),
                    "confidence": round(float(1 / (1 + np.exp(-8 * (score - 0.5)))), 4),
                }
                for score in scores
            ]
            rows.append(
                {
                    "conversation_id": conversation.id,
                    "text": f"message {i}",
                    "route": "answer",
                    "intent": candidates[0]["intent"],
                    "confidence": candidates[0]["confidence"],
                    "candidates": candidates,
                    "reason": "benchmark",
                    "threshold": 0.5,
                    "margin": 0.05,
                    "model_id": "all-MiniLM-L6-v2@907da517703c",
                    "intents_version": "v",
                    "calibration_id": "abcdef123456",
                    "latency_ms": 1.0,
                    "created_at": now - timedelta(seconds=i),
                }
            )
        session.execute(sa.insert(DecisionLog), rows)


def reads(database: sa.Engine, count: int, since: datetime, until: datetime) -> dict[str, Callable[[], int]]:
    """The three reads, each returning how many decisions it read."""
    window = (col(DecisionLog.created_at) >= since, col(DecisionLog.created_at) < until, bot_decisions())

    def query(*columns: object) -> sa.Select[tuple[object, ...]]:
        return (
            sa.select(*columns)  # type: ignore[call-overload]
            .where(*window, col(DecisionLog.chosen).is_(False))
            .order_by(col(DecisionLog.id).desc())
            .limit(count)
        )

    scalar_columns = (col(DecisionLog.confidence), col(DecisionLog.calibration_id), col(DecisionLog.intent))

    def scalar() -> int:
        with Session(database) as session:
            return len(session.execute(query(*scalar_columns)).all())

    def whole_json() -> int:
        with Session(database) as session:
            rows = session.execute(query(*scalar_columns, col(DecisionLog.candidates))).all()
        return len([top_candidate(row[3]) for row in rows])

    def served() -> int:
        return len(database_traffic(database, since, until).confidences)

    return {"scalar": scalar, "whole JSON": whole_json, "served": served}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--decisions", type=int, default=20_000)
    args = parser.parse_args()
    scratch: AbstractContextManager[str]
    if args.database == "postgresql":
        from tests.api_support import PG_ADMIN_URL
        from tests.scratch_postgres import scratch_postgres

        scratch = scratch_postgres(PG_ADMIN_URL, "bot_share_query")
    else:
        scratch = nullcontext(f"sqlite:///{tempfile.mkdtemp()}/bench.db")
    with scratch as url:
        database = make_engine(url)
        upgrade(database)
        now = datetime.now(UTC)
        fill(database, args.decisions, now)
        variants = reads(database, args.decisions, now - timedelta(days=30), now + timedelta(minutes=1))
        for read in variants.values():  # warm, and check each reads the whole window
            assert read() == args.decisions
        times: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        for round_ in range(args.rounds):
            for name in names[round_ % 3 :] + names[: round_ % 3]:
                started = time.perf_counter()
                variants[name]()
                times[name].append(time.perf_counter() - started)
        database.dispose()
    median = {name: statistics.median(spent) for name, spent in times.items()}
    for name, spent in median.items():
        print(f"{args.database} {name}: {spent * 1000:.0f} ms ({spent / median['scalar']:.1f}x scalar)")


if __name__ == "__main__":
    main()
