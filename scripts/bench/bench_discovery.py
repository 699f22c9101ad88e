"""New-intent discovery benchmark: how pure are the clusters drafted from traffic no intent took?

    python scripts/bench/bench_discovery.py [--intents intents] [--data ../shared/data/banking77/train.csv]
                                            [--unknown 10] [--seed 0] [--per-known 20] [--json]

1. --unknown intents (drawn with --seed among those the folder and --data share) are removed from the
   folder; every --data row of theirs becomes traffic the folder cannot answer, mixed with --per-known
   rows of every other label (in-scope traffic, most of it answered, some of it not);
2. the traffic is routed against the reduced folder (the live calibration, the knowledge base included;
   a row that is also one of its intent's examples does not see that example);
3. what discovery is fed is clustered, and each cluster is judged by its rows' true labels:
   purity = rows of each cluster's majority label / rows clustered; also how many rows were clustered and
   left out, how many clustered rows the knowledge base had answered, and how many removed intents lead a
   cluster of their own.

Two configurations are compared on the same traffic:
  before  what discovery did until #18: retrieve and handoff without an intent fed, average-linkage
          distance 0.75, no pruning;
  after   the current defaults: only handoffs without an intent or passage (the knowledge base answered
          the rest), `DEFAULT_DISTANCE` and `DEFAULT_MIN_SIMILARITY` of bot/insights/discovery.py.
Use BANKING77 *train* (the defaults were chosen on it); never tune on a test split.
Progress goes to stderr; the Markdown table (or --json) to stdout.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bot.config import Settings
from bot.content.intents import IntentSet, content_hash, load_intents
from bot.insights import discovery
from bot.routing.engine import Engine
from bot.routing.policy import Decision
from bot.tuning.datasets import Example, group_by_label, read_dataset
from bot.tuning.evaluate import route_examples

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Config:
    """What discovery is fed and how it clusters."""

    name: str
    routes: tuple[str, ...]  # decisions without an intent on these routes are fed to discovery
    distance: float
    min_similarity: float


BEFORE = Config("before", ("retrieve", "handoff"), 0.75, 0.0)
AFTER = Config("after", ("handoff",), discovery.DEFAULT_DISTANCE, discovery.DEFAULT_MIN_SIMILARITY)


@dataclass(frozen=True)
class Result:
    """One configuration's clusters, judged by the true labels."""

    config: str
    distance: float
    min_similarity: float
    fed: int  # rows discovery received
    clusters: int
    clustered: int  # rows inside a listed cluster
    left_out: int  # rows fed but in no listed cluster
    purity: float  # rows of each cluster's majority label / rows clustered
    knowledge_answered: int  # clustered rows the knowledge base had answered
    unknown_found: int  # removed intents that are the majority label of at least one cluster
    unknown_recall: float  # rows of removed intents inside a cluster their own label leads / all such rows


def say(message: str) -> None:
    """Progress on stderr, so stdout stays the result."""
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")


def fed_rows(rows: Sequence[Example], decisions: Sequence[Decision], config: Config) -> list[int]:
    """Indexes of the rows discovery receives under `config` (as `stats.unrouted_messages` selects them)."""
    keep = []
    for index, decision in enumerate(decisions):
        if decision.intent is not None or decision.route not in config.routes:
            continue
        if config.routes == ("handoff",) and decision.source is not None:
            continue
        keep.append(index)
    return keep


def judge(
    engine: Engine,
    rows: Sequence[Example],
    decisions: Sequence[Decision],
    unknown: set[str],
    config: Config,
) -> Result:
    """Cluster what `config` feeds discovery and score the clusters against the rows' labels."""
    fed = fed_rows(rows, decisions, config)
    texts = [rows[i].text for i in fed]
    clusters = discovery.cluster_messages(
        texts, engine.encoder, distance_threshold=config.distance, min_similarity=config.min_similarity
    )
    # texts are distinct within a label in BANKING77, but the same text may carry two labels: count each
    by_text: dict[str, list[int]] = {}
    for i in fed:
        by_text.setdefault(" ".join(rows[i].text.casefold().split()), []).append(i)
    clustered = majority = answered = 0
    leaders: set[str] = set()
    recalled = 0
    for cluster in clusters:
        members = [i for text in cluster.messages for i in by_text[" ".join(text.casefold().split())]]
        labels = Counter(rows[i].label for i in members)
        label, count = labels.most_common(1)[0]
        clustered += len(members)
        majority += count
        answered += sum(decisions[i].route == "retrieve" for i in members)
        if label in unknown:
            leaders.add(label)
            recalled += count
    unknown_rows = sum(rows[i].label in unknown for i in fed) or 1
    return Result(
        config=config.name,
        distance=config.distance,
        min_similarity=config.min_similarity,
        fed=len(fed),
        clusters=len(clusters),
        clustered=clustered,
        left_out=len(fed) - clustered,
        purity=round(majority / clustered, 4) if clustered else 0.0,
        knowledge_answered=answered,
        unknown_found=len(leaders),
        unknown_recall=round(recalled / unknown_rows, 4),
    )


def main() -> None:
    """Route the traffic once, then judge each configuration on it."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--intents", type=Path, default=ROOT / "intents")
    parser.add_argument(
        "--data", type=Path, default=ROOT.parent / "shared" / "data" / "banking77" / "train.csv"
    )
    parser.add_argument("--unknown", type=int, default=10, help="intents removed from the folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-known", type=int, default=20, help="rows of each other label mixed in")
    parser.add_argument(
        "--grid", action="store_true", help="also judge other distances and pruning cut-offs (tuning)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    settings = Settings(intents_dir=args.intents, cache_dir=Path(".bot_cache")).with_overrides()
    engine = Engine(settings, progress=False)
    engine.load()
    folder = load_intents(args.intents)
    by_label = group_by_label(read_dataset(args.data))
    shared = sorted(set(by_label) & {i.name for i in folder.intents})
    if len(shared) <= args.unknown:
        raise SystemExit(f"--data and the folder share {len(shared)} intents; need more than --unknown")
    rng = random.Random(args.seed)
    unknown = set(rng.sample(shared, args.unknown))
    kept = tuple(i for i in folder.intents if i.name not in unknown)
    reduced = engine.with_intents(IntentSet(intents=kept, version=content_hash(i.spec for i in kept)))
    rows = [Example(text, label) for label in sorted(unknown) for text in by_label[label]]
    for label in sorted(set(by_label) - unknown):
        texts = by_label[label]
        rows += [Example(t, label) for t in rng.sample(texts, min(args.per_known, len(texts)))]
    say(f"removed {', '.join(sorted(unknown))}; routing {len(rows)} rows")
    decisions = route_examples(engine, rows, state=reduced, leave_one_out=True)

    configs = [BEFORE, AFTER]
    if args.grid:
        configs += [
            Config(f"grid {d:.2f}/{s:.2f}", AFTER.routes, d, s)
            for d in (0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
            for s in (0.0, 0.55, 0.6, 0.65, 0.7)
        ]
    results = []
    for config in configs:
        say(f"clustering: {config.name}")
        results.append(judge(engine, rows, decisions, unknown, config))

    if args.json:
        sys.stdout.write(
            json.dumps(
                {"unknown": sorted(unknown), "rows": len(rows), "results": [asdict(r) for r in results]}
            )
            + "\n"
        )
        return
    print(f"{len(rows)} rows routed; removed intents: {', '.join(sorted(unknown))}\n")
    print(
        "| config | distance | min similarity | fed | clusters | clustered | left out | purity "
        "| knowledge-answered in clusters | removed intents leading a cluster | removed rows in own cluster |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.config} | {r.distance:.2f} | {r.min_similarity:.2f} | {r.fed} | {r.clusters} | {r.clustered} "
            f"| {r.left_out} | {r.purity:.3f} | {r.knowledge_answered} | {r.unknown_found}/{len(unknown)} "
            f"| {r.unknown_recall:.3f} |"
        )


if __name__ == "__main__":
    main()
