"""How fast `bot diff` replays logged traffic: N customer messages under the demo intents and a candidate.

    python scripts/bench/bench_diff.py [--messages 10000] [--backend onnx-int8]

BANKING77 texts (train, then test) stand in for logged customer messages: they are written as decisions
into a scratch SQLite database, then the diff runs twice, with an empty embedding cache (every message
encoded) and again with the messages cached (what a second diff of the same traffic costs). The
candidate is the shipped intents with card_arrival's description extended.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BANKING77 = ROOT.parent / "shared" / "data" / "banking77"
OLD = "whether it was sent or how to track it."  # the end of card_arrival's description
NEW = "whether it was sent, how to track it, or how many days the post takes."


def texts(count: int) -> list[str]:
    found: list[str] = []
    for name in ("train.csv", "test.csv"):
        path = BANKING77 / name
        if not path.is_file():
            sys.exit(f"{path} is absent: this benchmark reads BANKING77 from the project's shared folder")
        with path.open(encoding="utf-8") as handle:
            found.extend(row["text"] for row in csv.DictReader(handle))
    unique = list(dict.fromkeys(found))
    if len(unique) < count:
        sys.exit(f"only {len(unique)} distinct texts available")
    return unique[:count]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--backend", default="onnx-int8", choices=["torch", "onnx", "onnx-int8"])
    args = parser.parse_args()

    from bot.config import Settings
    from bot.routing.engine import Engine
    from bot.store.db import make_engine, session_scope, upgrade
    from bot.store.models import Conversation, DecisionLog
    from bot.tuning.diff import routing_diff

    messages = texts(args.messages)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        candidate = work / "candidate"
        shutil.copytree(ROOT / "intents", candidate)
        cards = candidate / "cards.yaml"
        text = cards.read_text(encoding="utf-8")
        if OLD not in text:
            sys.exit(f"{cards}: the card_arrival description this benchmark rewrites has changed")
        cards.write_text(
            text.replace(OLD, NEW),
            encoding="utf-8",
        )
        database = make_engine(f"sqlite:///{work / 'bench.db'}")
        upgrade(database)
        with session_scope(database) as session:
            conversation = Conversation()
            session.add(conversation)
            session.flush()
            session.add_all(
                DecisionLog(
                    conversation_id=conversation.id,
                    text=message,
                    route="answer",
                    intent=None,
                    confidence=0.0,
                    reason="seeded",
                    threshold=0.0,
                    margin=0.0,
                    model_id="seeded",
                    intents_version="seeded",
                    latency_ms=0.0,
                )
                for message in messages
            )
        settings = Settings(
            intents_dir=ROOT / "intents",
            cache_dir=work / "cache",
            encoder_backend=args.backend,
            self_train=False,
        )
        engine = Engine(settings)
        engine.load()
        candidate_state, _ = engine.candidate(candidate)
        for label in ("cold cache", "warm cache"):
            started = time.perf_counter()
            report = routing_diff(
                database, engine.encoder, engine.state, candidate_state, limit=args.messages
            )
            seconds = time.perf_counter() - started
            print(
                f"{label}: {report.messages} messages replayed in {seconds:.1f} s "
                f"({report.messages / seconds:,.0f}/s, {args.backend}); {report.changed} decided differently "
                f"in {len(report.groups)} groups"
            )
        database.dispose()


if __name__ == "__main__":
    main()
