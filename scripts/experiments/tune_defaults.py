"""Choose the default scoring and decision settings on BANKING77 train.csv (never test.csv).

    python scripts/experiments/tune_defaults.py [--data ../shared/data/banking77/train.csv] [--intents intents]
                                                [--target-precision 0.9] [--max-clarify 0.1] [--shots 10 --seeds 1,2,3]

Prints, with the figures behind each choice:
  aggregation   weight/depth/prototype weight of
                `score = (1-p)*((1-w)*best + w*mean(top d)) + p*cos(prototype)` with the best train top-1
                accuracy, averaged over zero-shot and, with --shots, few-shot draws from train scored on
                the rest of train (cross-validation: test.csv is never read);
  calibration   slope/center of `confidence = sigmoid(slope*(score-center))`, a logistic fit of
                "top intent is right" on its score;
  threshold     and margin: the largest coverage whose answers reach the target precision, with at
                most `--max-clarify` of messages sent to clarify;
  retrieval     the 95th percentile of the best knowledge cosine over these (in-domain, intent-covered)
                messages: a passage must match better than a typical intent question does.
Paste the printed values into bot/config.py.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from bot.config import Settings
from bot.routing.engine import Engine
from bot.routing.promise import wilson_low
from bot.routing.scoring import intent_scores
from bot.routing.state import Scoring
from bot.tuning.datasets import few_shot, without_texts
from bot.tuning.evaluate import read_dataset


def few_shot_accuracy(
    engine: Engine, examples: list, shots: int, seeds: list[int], grid: list
) -> list[float]:
    """Mean top-1 accuracy of each aggregation over few-shot draws, scored on the rows not drawn."""
    base = engine.state
    totals = [0.0] * len(grid)
    for seed in seeds:
        extra = few_shot(examples, shots, seed)
        state = engine.with_intents(base.intents.with_extra_examples(extra))
        rest = without_texts(examples, extra)
        names = np.array(state.intents.names)
        labels = np.array([e.label for e in rest])
        queries = engine.encoder.encode([e.text for e in rest])
        for position, (weight, depth, prototype) in enumerate(grid):
            scores = intent_scores(state, queries, Scoring(1.0, 0.0, weight, depth, prototype))
            totals[position] += float(np.mean(names[scores.argmax(1)] == labels)) / len(seeds)
    return totals


def main() -> None:
    """Run the search and print the chosen settings."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data/banking77/train.csv"))
    parser.add_argument("--intents", type=Path, default=Path("intents"))
    parser.add_argument("--target-precision", type=float, default=0.9)
    parser.add_argument("--max-clarify", type=float, default=0.1)
    parser.add_argument(
        "--shots", type=int, default=10, help="Few-shot draws to score too (0: zero-shot only)."
    )
    parser.add_argument(
        "--seeds", default="1,2,3", help="Seeds of the few-shot draws (not the benchmark's 0)."
    )
    args = parser.parse_args()
    if "test" in args.data.name:
        sys.exit("refusing to tune on a test set: pass a training file")

    engine = Engine(Settings(intents_dir=args.intents, torch_threads=2), progress=True)
    engine.load()
    examples = read_dataset(args.data)
    labels = np.array([e.label for e in examples])
    names = np.array(engine.intents.names)
    queries = engine.encoder.encode([e.text for e in examples], progress=True)  # cached: reruns are quick

    grid = [
        (w, d, p) for p in (0.0, 0.2, 0.3, 0.4, 0.5) for w, d in itertools.product([0.0, 0.2, 0.4], [3, 5])
    ]
    zero = []
    for weight, depth, prototype in grid:
        scores = intent_scores(engine.state, queries, scoring=Scoring(1.0, 0.0, weight, depth, prototype))
        zero.append(float(np.mean(names[scores.argmax(1)] == labels)))
    seeds = [int(s) for s in args.seeds.split(",")]
    few = few_shot_accuracy(engine, examples, args.shots, seeds, grid) if args.shots else zero
    print(f"aggregation grid (weight, depth, prototype) -> train top-1: zero-shot, {args.shots}-shot")
    for (weight, depth, prototype), a, b in zip(grid, zero, few, strict=True):
        print(f"  w={weight:.1f} d={depth} p={prototype:.1f}: {a:.4f} {b:.4f}")
    chosen = max(range(len(grid)), key=lambda i: (zero[i] + few[i]) / 2)
    best_acc, best_agg = zero[chosen], grid[chosen]
    weight, depth, prototype = best_agg
    scores = intent_scores(engine.state, queries, scoring=Scoring(1.0, 0.0, weight, depth, prototype))
    order = np.argsort(-scores, axis=1)
    top, second = scores[np.arange(len(scores)), order[:, 0]], scores[np.arange(len(scores)), order[:, 1]]
    right = names[order[:, 0]] == labels
    print(
        f"chosen aggregation: weight={weight} depth={depth} prototype={prototype} (zero-shot {best_acc:.4f})"
    )

    fit = LogisticRegression(C=100.0).fit(top.reshape(-1, 1), right)
    slope = float(fit.coef_[0, 0])
    center = float(-fit.intercept_[0] / slope)
    print(f"calibration: slope={slope:.2f} center={center:.4f}")
    conf1 = 1 / (1 + np.exp(-slope * (top - center)))
    conf2 = 1 / (1 + np.exp(-slope * (second - center)))

    best = None
    for threshold in np.arange(0.2, 0.96, 0.025):
        for margin in np.arange(0.0, 0.31, 0.025):
            passed = conf1 >= threshold
            accept = passed & (conf1 - conf2 >= margin)
            clarify = passed & ~accept
            if accept.sum() == 0:
                continue
            precision = right[accept].mean()
            coverage = accept.mean()
            if (
                precision >= args.target_precision
                and clarify.mean() <= args.max_clarify
                and (best is None or coverage > best[0])
            ):
                best = (coverage, precision, clarify.mean(), threshold, margin)
    if best is None:
        sys.exit("no threshold reaches the target precision; lower --target-precision")
    coverage, precision, clarify_rate, threshold, margin = best
    print(
        f"threshold={threshold:.3f} margin={margin:.3f}: coverage {coverage:.3f}, "
        f"answer precision {precision:.3f}, clarify {clarify_rate:.3f}"
    )
    # the promise's lower bound over the answered messages, floored to 4 places as bot calibrate writes it
    answered = round(coverage * len(examples))
    low = math.floor(min(wilson_low(precision, answered), precision) * 1e4) / 1e4
    print(f"expected_precision_low={low:.4f} (over {answered} answered)")
    if engine.state.knowledge_index.size:
        knowledge = engine.state.knowledge_index.search(queries, 1).scores[:, 0]
        print(
            f"retrieval_threshold={np.percentile(knowledge, 95):.3f} (95th percentile of best passage cosine)"
        )


if __name__ == "__main__":
    main()
