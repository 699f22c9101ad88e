"""Cold-start benchmark: a folder routed with zero labelled data, against the oracle operating point.

    python scripts/bench/bench_cold_start.py [--intents scripts/bench/hwu64/intents] [--data ../shared/data/hwu64/test.csv]
                                             [--holdout 12] [--seed 0] [--model bundled] [--oos-rate R]
                                             [--self-train] [--json]

1. in scope      the folder, self-calibrated from its own texts (no calibration.yaml, no labels), routes
                 every row of --data: top-1, in-scope accuracy, coverage, answer precision, and what the
                 self-calibration promised at the data's own out-of-scope share;
2. oracle        the operating point picked on those same labels (the best any threshold and margin
                 could do with this ranking), at the precision self-calibration reached and at 0.90;
3. unknown       --holdout intents (drawn with --seed) removed from the folder, their rows relabelled
                 out of scope; the rest self-calibrates again: out-of-scope recall and AUROC, against the
                 oracle's recall at the same in-scope accuracy.
With --self-train, each run routes with the encoder fine-tuned on its folder's own texts first (what
`BOT_SELF_TRAIN` does for a folder without calibration.yaml; trained once, cached in .bot_cache/models).
Nothing is tuned on --data: every setting was chosen on BANKING77 train (bot/routing/self_calibration.py).
Progress goes to stderr; the Markdown table (or --json) to stdout.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from oracle import Ranked, best_in_scope_at_precision, best_oos_recall_at_in_scope  # beside this script

from bot.config import Settings
from bot.content.intents import IntentSet, content_hash, load_intents
from bot.routing.engine import Engine
from bot.routing.pseudo_queries import Evidence
from bot.routing.self_calibration import cached_self_calibration
from bot.routing.state import RoutingState, with_calibration
from bot.tuning.datasets import OUT_OF_SCOPE, Example, read_dataset
from bot.tuning.evaluate import Metrics, compute_metrics, route_examples
from bot.tuning.self_training import self_trained_model

ROOT = Path(__file__).resolve().parents[2]


def say(message: str) -> None:
    """Progress on stderr, so stdout stays the result."""
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")


def promised(state: RoutingState, oos_share: float) -> float | None:
    """The precision self-calibration promised for traffic with this out-of-scope share."""
    calibration = state.calibration
    if calibration is None:
        return None
    shares = {float(k): v for k, v in calibration.expected_by_oos_rate.items()}
    if not shares:
        return calibration.expected_precision
    nearest = min(shares, key=lambda share: abs(share - oos_share))
    if abs(nearest - oos_share) < 1e-9:
        return shares[nearest][0]
    # between two tabulated shares: interpolate linearly
    lower = max((s for s in shares if s <= oos_share), default=min(shares))
    upper = min((s for s in shares if s >= oos_share), default=max(shares))
    if upper == lower:
        return shares[lower][0]
    weight = (oos_share - lower) / (upper - lower)
    return (1 - weight) * shares[lower][0] + weight * shares[upper][0]


def run(engine: Engine, state: RoutingState, rows: list[Example]) -> dict[str, object]:
    """Route `rows` against `state` and compare with the oracle on the same labels."""
    decisions = route_examples(engine, rows, state=state, progress=True)
    metrics: Metrics = compute_metrics(rows, decisions)
    ranked = Ranked.of(rows, decisions)
    share = sum(not r.in_scope for r in rows) / len(rows)
    precision = metrics.answer_precision or 0.0
    at_same = best_in_scope_at_precision(ranked, precision)
    at_90 = best_in_scope_at_precision(ranked, 0.90)
    result: dict[str, object] = {
        "rows": len(rows),
        "oos_share": round(share, 4),
        "operating_point": {"threshold": state.policy.threshold, "margin": state.policy.margin},
        "promised_precision": round(p, 4) if (p := promised(state, share)) is not None else None,
        "metrics": metrics.as_dict(),
        "oracle_at_same_precision": at_same.as_dict() if at_same else None,
        "oracle_at_0.90": at_90.as_dict() if at_90 else None,
    }
    if share > 0:
        recall = best_oos_recall_at_in_scope(ranked, metrics.in_scope_accuracy)
        result["oracle_recall_at_same_in_scope"] = recall.as_dict() if recall else None
    return result


def self_calibrated(engine: Engine, intents: IntentSet, settings: Settings) -> RoutingState:
    """A state for `intents`, self-calibrated as `Engine.load` would (no calibration file)."""
    state = engine.with_intents(intents, calibration=None)
    settings = settings.with_overrides(model=engine.settings.model)  # the bias depends on the model
    evidence = Evidence.of(settings.model, intents, engine.encoder)  # with the shipped off-topic set
    found = cached_self_calibration(state, settings, evidence).calibration
    if found is None:
        raise SystemExit("the folder is too small to self-calibrate")
    return with_calibration(state, settings, found)


def engine_for(settings: Settings, intents: IntentSet, self_train: bool) -> Engine:
    """An engine with the stock model, or with the model fine-tuned on `intents`' texts."""
    if self_train:
        path = self_trained_model(settings, intents)
        if path is None:
            raise SystemExit("the folder is too small to train on")
        settings = settings.with_overrides(model=str(path))
    engine = Engine(settings, progress=True)
    engine.load()
    return engine


def main() -> None:
    """Run both experiments and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--intents", type=Path, default=ROOT / "scripts" / "bench" / "hwu64" / "intents")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "hwu64" / "test.csv")
    parser.add_argument("--holdout", type=int, default=12, help="intents held out as unknown")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="bundled")
    parser.add_argument("--oos-rate", type=float, default=None, help="BOT_OOS_RATE (default: the setting's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--self-train", action="store_true", help="fine-tune on each folder's texts first")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    overrides: dict[str, object] = {"oos_rate": args.oos_rate} if args.oos_rate is not None else {}
    cache = Path(tempfile.mkdtemp(prefix="cold-start-"))  # a fresh self-calibration cache: fitted here
    settings = Settings(
        intents_dir=args.intents,
        model=args.model,
        torch_threads=args.threads,
        self_calibrate=True,
        cache_dir=Path(".bot_cache"),
        **overrides,  # type: ignore[arg-type]
    ).with_overrides()
    fit_settings = settings.with_overrides(cache_dir=cache)
    rows = read_dataset(args.data, "test")
    base = load_intents(args.intents)
    engine = engine_for(settings, base, args.self_train)
    unknown_labels = sorted({r.label for r in rows} - set(base.names))
    if unknown_labels:
        raise SystemExit(f"--data has labels with no intent in --intents: {', '.join(unknown_labels[:5])}")
    say(f"{len(base.intents)} intents, {len(rows)} rows; self-calibrating the whole folder")
    whole = self_calibrated(engine, base, fit_settings)
    results = {"in_scope": run(engine, whole, rows)}

    held = set(random.Random(args.seed).sample(sorted(base.names), args.holdout))
    say(f"held out as unknown (seed {args.seed}): {', '.join(sorted(held))}")
    kept = tuple(i for i in base.intents if i.name not in held)
    subset = IntentSet(intents=kept, version=content_hash(i.spec for i in kept))
    relabelled = [Example(r.text, OUT_OF_SCOPE if r.label in held else r.label) for r in rows]
    if args.self_train:  # the subset's own model: trained on the kept intents only
        engine = engine_for(settings, subset, True)
    results["unknown"] = run(engine, self_calibrated(engine, subset, fit_settings), relabelled)
    results["unknown"]["held_out"] = sorted(held)
    if args.json:
        sys.stdout.write(json.dumps(results) + "\n")
        return
    print_table(args, results)


def print_table(args: argparse.Namespace, results: dict[str, dict[str, object]]) -> None:
    """The rows of docs/cold-start.md."""

    def fmt(value: object) -> str:
        return f"{value:.3f}" if isinstance(value, float) else ("" if value is None else str(value))

    trained = ", encoder trained on each folder's own texts" if args.self_train else ""
    print(f"{args.data} with {args.intents}, zero labelled data{trained}\n")
    print(
        "| run | top-1 | in-scope acc. | coverage | answer precision (promised) | oos recall | AUROC | threshold / margin |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, result in results.items():
        m = result["metrics"]
        point = result["operating_point"]
        assert isinstance(m, dict) and isinstance(point, dict)
        print(
            f"| {name} (self-calibrated) | {fmt(m['top1_accuracy'])} | {fmt(m['in_scope_accuracy'])} | "
            f"{fmt(m['coverage'])} | {fmt(m['answer_precision'])} ({fmt(result['promised_precision'])}) | "
            f"{fmt(m['oos_recall'])} | {fmt(m['auroc'])} | {point['threshold']:.2f} / {point['margin']:.3f} |"
        )
        for key, label in (
            ("oracle_at_same_precision", "oracle at that precision"),
            ("oracle_at_0.90", "oracle at precision 0.90"),
            ("oracle_recall_at_same_in_scope", "oracle at that in-scope accuracy"),
        ):
            oracle = result.get(key)
            if isinstance(oracle, dict):
                print(
                    f"| {name}: {label} | | {fmt(oracle['in_scope_accuracy'])} | {fmt(oracle['coverage'])} | "
                    f"{fmt(oracle['precision'])} | {fmt(oracle['oos_recall'])} | | "
                    f"{oracle['threshold']:.2f} / {oracle['margin']:.3f} |"
                )


if __name__ == "__main__":
    main()
