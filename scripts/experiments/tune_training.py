"""Choose `bot train`'s loss on BANKING77 train.csv (never test.csv): few-shot draws, scored on other train rows.

    python scripts/experiments/tune_training.py [--data ../shared/data/banking77/train.csv] [--intents intents]
                                                [--shots 10] [--seeds 1,2] [--rows 2000] [--models models/tune]
                                                [--only 0,3] [--try FIELD=VALUE[,FIELD=VALUE] ...]

For each draw seed, K examples per intent are drawn from train.csv (as `--train --shots --seed` does), the
bundled model is fine-tuned on the shipped intents plus those examples with each loss below, and top-1
accuracy is measured on `--rows` other train rows (a fixed sample). Prints a Markdown table; each run takes
about 3 minutes on 2 CPU cores (30 minutes for the whole table). The defaults in `bot.tuning.training.TrainingConfig` come from this table.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import zlib
from dataclasses import replace
from pathlib import Path

from bot.config import Settings
from bot.content.intents import load_intents
from bot.routing.engine import Engine
from bot.tuning.datasets import few_shot, read_dataset, without_texts
from bot.tuning.evaluate import compute_metrics, route_examples
from bot.tuning.training import TrainingConfig, fine_tune

DEFAULT = TrainingConfig(progress=False)
LOSSES = {
    "contrastive only": replace(DEFAULT, margin_weight=0.0),
    "contrastive + margin 0.2": replace(DEFAULT, margin=0.2),
    "contrastive + margin 0.35": replace(DEFAULT, margin=0.35),
    "contrastive + margin 0.5 (default)": replace(DEFAULT, margin=0.5),
    "margin 0.35 only": replace(DEFAULT, contrastive_weight=0.0, margin=0.35),
}


def _with_overrides(text: str) -> TrainingConfig:
    """DEFAULT with `field=value` pairs applied, each value parsed as the field's type."""
    changes: dict[str, object] = {}
    for pair in text.split(","):
        field, _, value = (part.strip() for part in pair.partition("="))
        if field not in TrainingConfig.__dataclass_fields__:
            raise SystemExit(f"--try: no TrainingConfig field '{field}' (see bot/tuning/training.py)")
        current = getattr(DEFAULT, field)
        kind = type(current)
        changes[field] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return replace(DEFAULT, **changes)  # type: ignore[arg-type]


def main() -> None:
    """Train every loss on every draw and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data/banking77/train.csv"))
    parser.add_argument("--intents", type=Path, default=Path("intents"))
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--seeds", default="1,2", help="Draw seeds; 0 is the benchmark's and is avoided.")
    parser.add_argument("--rows", type=int, default=2000, help="Other train rows each model is scored on.")
    parser.add_argument("--models", type=Path, default=Path("models/tune"))
    parser.add_argument("--cache", type=Path, default=Path(".bot_cache"))
    parser.add_argument(
        "--only", default="", help="Comma-separated row numbers (0-based) to run; all rows by default."
    )
    parser.add_argument(
        "--try",
        dest="extra",
        action="append",
        default=[],
        metavar="FIELD=VALUE[,FIELD=VALUE]",
        help="An extra row: the default config with these TrainingConfig fields changed (repeatable).",
    )
    args = parser.parse_args()
    if "test" in args.data.name:
        raise SystemExit("tune on training data only; test.csv is for reporting")
    train = read_dataset(args.data)
    base = load_intents(args.intents)
    seeds = [int(s) for s in args.seeds.split(",")]
    wanted = {int(n) for n in args.only.split(",")} if args.only else set(range(len(LOSSES)))
    chosen = {name: config for number, (name, config) in enumerate(LOSSES.items()) if number in wanted}
    if args.extra and not args.only:  # --try alone runs just the rows it names
        chosen = {}
    for overrides in args.extra:
        chosen[f"default with {overrides}"] = _with_overrides(overrides)
    results: dict[str, list[float]] = {name: [] for name in chosen}
    for seed in seeds:
        shot = few_shot(train, args.shots, seed)
        intents = base.with_extra_examples(shot)
        rows = random.Random(123).sample(without_texts(train, shot), args.rows)
        for name, config in chosen.items():
            started = time.perf_counter()
            out = args.models / f"s{seed}-{list(chosen).index(name)}-{zlib.crc32(name.encode()) % 10**6}"
            model = fine_tune("bundled", intents, out, replace(config, seed=0)).path
            engine = Engine(
                Settings(intents_dir=args.intents, model=str(model), torch_threads=2, cache_dir=args.cache)
            )
            engine.load()
            state = engine.with_intents(intents)
            accuracy = compute_metrics(rows, route_examples(engine, rows, state=state)).top1_accuracy
            results[name].append(accuracy)
            sys.stderr.write(f"seed {seed}, {name}: {accuracy:.4f} ({time.perf_counter() - started:.0f} s)\n")
    print("| loss | " + " | ".join(f"draw seed {s}" for s in seeds) + " | mean |")
    print("|---|" + "---|" * (len(seeds) + 1))
    for name, values in results.items():
        cells = " | ".join(f"{v:.4f}" for v in values)
        print(f"| {name} | {cells} | {sum(values) / len(values):.4f} |")


if __name__ == "__main__":
    main()
