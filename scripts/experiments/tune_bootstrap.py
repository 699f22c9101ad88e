"""How `bot bootstrap`'s defaults (bot/insights/bootstrap.py: DISTANCE, MIN_SIMILARITY, EXAMPLES, PICKER)
were chosen, on BANKING77 train only.

    python scripts/experiments/tune_bootstrap.py [--train ../shared/data/banking77/train.csv] [--split]
                                                 [--no-share] [--seed 0]
                                                 [--grid 0.35:0.7:3:central 0.3:0.7:5:spread ...]

Each grid point is distance:min_similarity:examples:picker (picker `central` or `spread`,
bot/insights/bootstrap_examples.py). Its texts are drafted into a folder (encoded once, then from the
embedding cache); the labels score the drafts (purity, share in drafts of purity >= 0.8); the folder,
self-calibrated as `Engine.load` does, routes train, each draft counted as its majority label
(bench_bootstrap.py's `judge`), and what the self-calibration promises is set beside what it delivers.

Without --split, train is drafted and routed in-sample (a draft's own questions are routed too, which
flatters it). With --split, one random half of train (by row, --seed) is the history and the other half
is routed, as new traffic would be; the hand-written folder routes that half too, for the ratio at 0.90.
The defaults were chosen with --split by the rule: of the points whose promise (the fitted calibration's
expected precision, at the folder's off_topic_share) is within 3 points of the precision delivered on
the routed half, the one answering the most of it right. Only train is read: the test split is for
bench_bootstrap.py's one report.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_bootstrap import DATA, ROOT, as_loaded, judge, majority_labels, say

from bot.config import Settings
from bot.content.intents import load_intents
from bot.insights.bootstrap import cluster_history
from bot.insights.bootstrap_folder import Source, prepare, write_folder
from bot.routing.engine import Engine
from bot.tuning.datasets import Example, read_dataset

# the grid the defaults were chosen from (docs/evaluation.md); with --no-share for the rows without the
# folder's off_topic_share
GRID = [
    "0.35:0.7:3:central",
    "0.35:0.7:5:spread",
    "0.3:0.7:3:central",
    "0.3:0.7:5:central",
    "0.3:0.7:5:spread",
    "0.3:0.7:3:boundary",
    "0.3:0.7:5:boundary",
]


def halves(rows: list[Example], seed: int) -> tuple[list[Example], list[Example]]:
    """Two random halves of `rows`: the history drafted from, and the traffic routed."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    half = len(rows) // 2
    return [rows[i] for i in sorted(order[:half])], [rows[i] for i in sorted(order[half:])]


def main() -> None:
    """Encode train once, then draft and judge each grid point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", type=Path, default=DATA / "train.csv")
    parser.add_argument("--split", action="store_true", help="draft on one half of train, route the other")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", nargs="+", default=GRID)
    parser.add_argument(
        "--no-share", action="store_true", help="ignore the drafted folder's off_topic_share (BOT_OOS_RATE)"
    )
    args = parser.parse_args()
    train = read_dataset(args.train, "train")
    history, routed = halves(train, args.seed) if args.split else (train, train)
    settings = Settings(model="bundled", torch_threads=2, self_calibrate=True, cache_dir=ROOT / ".bot_cache")
    engine = Engine(settings.with_overrides(intents_dir=ROOT / "intents"), progress=True)
    engine.load()
    say(f"encoding {len(train):,} train texts (embedding cache)")
    engine.encoder.encode([r.text for r in train], progress=True)
    work = Path(tempfile.mkdtemp(prefix="tune-bootstrap-"))
    if args.split:
        hand = judge(
            engine,
            as_loaded(engine, engine.state.intents, settings.with_overrides(cache_dir=work / "fit")),
            routed,
            {},
        )
        say(f"hand-written folder on the routed half: {hand}")
    print(
        "| distance : min similarity : examples : picker | drafts | purity | accepted share | top-1 "
        "| out-of-scope share | promised (low) | promised, no out of scope | delivered precision | coverage | in-scope at 0.90 (oracle) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for point in args.grid:
        distance, similarity, examples, picker = point.split(":")
        result = cluster_history(
            [r.text for r in history],
            [None] * len(history),
            lambda texts: engine.encoder.encode(texts),
            distance=float(distance),
            min_similarity=float(similarity),
            examples=int(examples),
            picker=picker,
        )
        mapping, drafts = majority_labels(result, history)
        folder = work / point.replace(":", "_")
        prepare(folder, force=False)
        write_folder(result, folder, Source(str(args.train), len(history), 0))
        intents = load_intents(folder)
        if args.no_share:
            intents = dataclasses.replace(intents, off_topic=None)
        state = as_loaded(engine, intents, settings.with_overrides(cache_dir=folder / "fit"))
        r = judge(engine, state, routed, mapping)
        print(
            f"| {point} | {drafts['drafts']} | {drafts['purity']:.3f} | {drafts['covered_by_accepted']:.3f} | "
            f"{r['top1']:.3f} | {r['oos_rate']} | {r['promised']:.3f} ({r['promised_low']:.3f}) | {r['promised_no_oos']:.3f} | "
            f"{r['precision']:.3f} | {r['coverage']:.3f} | {r['oracle_in_scope_at_0.90']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
