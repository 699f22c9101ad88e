"""Choose self-calibration's in-scope tolerance (`TOLERANCE` in bot/routing/self_calibration.py) on
BANKING77 train.csv only (never test.csv, never HWU64).

    python scripts/experiments/tune_self_calibration.py [--self-train] [--tolerances 0,0.005,0.01,0.02,0.03,0.05]

For each tolerance the shipped intents self-calibrate (their calibration.yaml ignored) and route the
train messages: in-scope accuracy and precision. Then the 20 held-out intents of docs/evaluation.md are
removed and the 62 kept self-calibrate again: their train messages are in scope, the removed intents'
train messages out of scope: in-scope accuracy, out-of-scope recall and the oracle's recall at the same
in-scope accuracy (the best any threshold and margin could do). A tolerance is worth it when it buys
out-of-scope recall for little in-scope accuracy. With --self-train each folder is routed with the
encoder fine-tuned on its own texts (the default path). Progress on stderr, the table on stdout.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bot.config import Settings
from bot.content.intents import IntentSet, content_hash, load_intents
from bot.routing.engine import Engine
from bot.routing.pseudo_queries import Evidence
from bot.routing.self_calibration import fit_self_calibration
from bot.routing.state import RoutingState, with_calibration
from bot.tuning.datasets import OUT_OF_SCOPE, Example, read_dataset

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "bench"))  # the benchmarks this experiment reuses
from bench_cold_start import engine_for, run  # noqa: E402
from bench_oos_prior import HELD_OUT  # noqa: E402
from measure_pseudo_bias import train_parser  # noqa: E402


def fitted(engine: Engine, intents: IntentSet, tolerance: float) -> RoutingState:
    """`intents`' state self-calibrated with this tolerance (no cache: every tolerance is fitted)."""
    state = engine.with_intents(intents, calibration=None)
    fit = fit_self_calibration(
        state, engine.settings, Evidence.of(engine.settings.model, state.intents, engine.encoder), tolerance
    )
    if fit is None:
        raise SystemExit("the folder is too small to self-calibrate")
    return with_calibration(state, engine.settings, fit.calibration)


def main() -> None:
    """Fit and measure every tolerance; print the table."""
    parser = train_parser(__doc__)
    parser.add_argument("--tolerances", default="0,0.005,0.01,0.02,0.03,0.05")
    args = parser.parse_args()
    if "test" in args.data.name:
        raise SystemExit("the tolerance is chosen on training data only; give train.csv")
    tolerances = [float(t) for t in args.tolerances.split(",")]
    settings = Settings(intents_dir=args.intents, torch_threads=2, cache_dir=Path(".bot_cache"))
    rows = read_dataset(args.data)
    base = load_intents(args.intents)
    kept_intents = tuple(i for i in base.intents if i.name not in HELD_OUT)
    kept = IntentSet(intents=kept_intents, version=content_hash(i.spec for i in kept_intents))
    names = set(base.names)
    inside = [r for r in rows if r.label in names]
    relabelled = [Example(r.text, OUT_OF_SCOPE if r.label in HELD_OUT else r.label) for r in inside]
    whole_engine = engine_for(settings, base, args.self_train)
    kept_engine = engine_for(settings, kept, args.self_train)
    print(f"{args.data}, {args.intents}{', self-trained' if args.self_train else ''}\n")
    print(
        "| tolerance | all intents: in-scope acc. | precision | 20 unknown: in-scope acc. | precision "
        "| oos recall | oracle recall at that in-scope |"
    )
    print("|---|---|---|---|---|---|---|")
    for tolerance in tolerances:
        whole = run(whole_engine, fitted(whole_engine, base, tolerance), inside)
        unknown = run(kept_engine, fitted(kept_engine, kept, tolerance), relabelled)
        w, u = whole["metrics"], unknown["metrics"]
        oracle = unknown.get("oracle_recall_at_same_in_scope")
        assert isinstance(w, dict) and isinstance(u, dict)
        oracle_recall = f"{oracle['oos_recall']:.3f}" if isinstance(oracle, dict) else ""
        print(
            f"| {tolerance:g} | {w['in_scope_accuracy']:.3f} | {w['answer_precision']:.3f} | "
            f"{u['in_scope_accuracy']:.3f} | {u['answer_precision']:.3f} | {u['oos_recall']:.3f} | "
            f"{oracle_recall} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
