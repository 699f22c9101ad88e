"""How `bot bootstrap`'s clustering defaults (bot/insights/bootstrap.py: DISTANCE, MIN_SIMILARITY) were chosen.

    python scripts/experiments/tune_bootstrap.py [--train ../shared/data/banking77/train.csv]
                                                 [--grid 0.6:0.6:3 0.4:0.7:3 0.35:0.7:3 0.3:0.7:3]

For each distance:min_similarity:examples, BANKING77 train's texts are drafted into a folder (train encoded
once); the labels then score the drafts (purity, share in drafts of purity >= 0.8) and the folder routes
train itself, self-calibrated, each draft counted as its majority label (bench_bootstrap.py's `judge`).
Only train is read: the test split is for bench_bootstrap.py's one report.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_bootstrap import DATA, ROOT, judge, majority_labels, say
from bench_cold_start import self_calibrated

from bot.config import Settings
from bot.content.intents import load_intents
from bot.insights.bootstrap import cluster_history
from bot.insights.bootstrap_folder import Source, prepare, write_folder
from bot.routing.engine import Engine
from bot.tuning.datasets import read_dataset


def main() -> None:
    """Encode train once, then draft and judge each grid point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", type=Path, default=DATA / "train.csv")
    parser.add_argument(
        "--grid", nargs="+", default=["0.6:0.6:3", "0.45:0.65:3", "0.4:0.7:3", "0.35:0.7:3", "0.3:0.7:3"]
    )
    args = parser.parse_args()
    train = read_dataset(args.train, "train")
    texts = [r.text for r in train]
    settings = Settings(model="bundled", torch_threads=2, self_calibrate=True, cache_dir=ROOT / ".bot_cache")
    engine = Engine(settings.with_overrides(intents_dir=ROOT / "intents"), progress=True)
    engine.load()
    say(f"encoding {len(texts):,} train texts")
    vectors = np.asarray(engine.encoder.encode(texts), dtype=np.float32)
    row = {t: i for i, t in enumerate(texts)}

    def encode(batch: list[str]) -> np.ndarray:
        return vectors[[row[t] for t in batch]]

    print(
        "| distance : min similarity : examples | drafts | purity | train in accepted drafts | top-1 | in-scope at 0.90 (oracle) |"
    )
    print("|---|---|---|---|---|---|")
    for point in args.grid:
        distance, similarity, examples = point.split(":")
        result = cluster_history(
            texts,
            [None] * len(texts),
            encode,
            distance=float(distance),
            min_similarity=float(similarity),
            examples=int(examples),
        )
        mapping, drafts = majority_labels(result, train)
        work = Path(tempfile.mkdtemp(prefix="tune-bootstrap-"))
        prepare(work / "drafted", force=False)
        write_folder(result, work / "drafted", Source(str(args.train), len(texts), 0))
        state = self_calibrated(
            engine, load_intents(work / "drafted"), settings.with_overrides(cache_dir=work / "fit")
        )
        routed = judge(engine, state, train, mapping)
        print(
            f"| {point} | {drafts['drafts']} | {drafts['purity']:.3f} | {drafts['covered_by_accepted']:.3f} | "
            f"{routed['top1']:.3f} | {routed['oracle_in_scope_at_0.90']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
