"""Choose what a clarify question with the right option is worth to self-calibration (`CLARIFY_WORTH` in
bot/routing/self_calibration.py, #27 item 3) on BANKING77 train.csv only (never test.csv, never HWU64).

    python scripts/experiments/tune_clarify.py [--self-train] [--worths 0,0.25,0.5,0.75,1] [--small 20]
                                               [--hard-cap]

1. Small folders, where the worth matters (the shipped folder's point is the same for every worth, see 2):
--small folders of 15 of the shipped intents with two BANKING77 train examples each, the rest of train in
scope and off-topic alike (`scripts/bench/bench_small_folders.py --dataset banking77 --seed 100`), fitted
with a clarify counted as a miss and with each worth. Per worth: folders whose point changed, in-scope
answered right, precision, share asked (with the right option), and the share served, right answers plus
half the questions with the right option: a customer served by a question takes two turns (the question
and a click) where a right answer takes one. The shipped worth is the largest whose served share on real
messages does not fall: beyond it the fit trades more right answers for questions than they are worth.
2. The shipped folder: for each worth the shipped intents self-calibrate (their calibration.yaml ignored; at most `CLARIFY_CAP`
of the traffic asked) and route the train messages: answered right, answered wrong, asked with the right
intent among the options, asked without it, precision, and how many of the messages worth 0 answers
wrong are asked with the right option instead. Then the 20 held-out intents of docs/evaluation.md are
removed and the 62 kept self-calibrate again (their messages out of scope, 26% of the rows): the same
figures and the share of out-of-scope messages asked. --hard-cap adds the shipped worth with the cap never
lifted to what the fit without it asks (not shipped: see `choose_point`). Progress on stderr, the tables
on stdout.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from bot.config import Settings
from bot.content.intents import IntentSet, content_hash, load_intents
from bot.routing.engine import Engine
from bot.routing.policy import Decision
from bot.routing.pseudo_queries import Evidence
from bot.routing.self_calibration import (
    CLARIFY_WORTH,
    TOLERANCE,
    choose_point,
    fit_self_calibration,
    grid_points,
)
from bot.routing.state import RoutingState, with_calibration
from bot.tuning.datasets import OUT_OF_SCOPE, Example, read_dataset
from bot.tuning.evaluate import route_examples

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "bench"))  # the benchmarks this experiment reuses
from bench_cold_start import engine_for  # noqa: E402
from bench_oos_prior import HELD_OUT  # noqa: E402
from bench_small_folders import measure as measure_folder  # noqa: E402
from bench_small_folders import subset_folders  # noqa: E402
from measure_pseudo_bias import train_parser  # noqa: E402


@dataclass(frozen=True)
class Routed:
    """Shares of one run's rows (in scope: of the in-scope rows) by what the bot did."""

    right: float
    wrong: float
    asked_right: float
    asked_other: float
    asked_out: float
    precision: float
    point: str


def fitted(engine: Engine, intents: IntentSet, worth: float, hard_cap: bool = False) -> RoutingState:
    """`intents`' state self-calibrated with this worth (no cache: every worth is fitted); with `hard_cap`,
    at the point that asks at most `CLARIFY_CAP` even where the fit without the worth asks more."""
    state = engine.with_intents(intents, calibration=None)
    settings = engine.settings
    evidence = Evidence.of(settings.model, state.intents, engine.encoder)
    fit = fit_self_calibration(state, settings, evidence, worth=worth)
    if fit is None:
        raise SystemExit("the folder is too small to self-calibrate")
    calibration = fit.calibration
    if hard_cap:
        pseudo = evidence.pseudo_queries(state, settings)
        points = grid_points(pseudo, settings.oos_rate, evidence.bias, settings.max_clarify_options)
        rate, target = settings.oos_rate, settings.target_precision
        best = choose_point(points, target, TOLERANCE, rate=rate, worth=worth, lift=False)
        assert best is not None
        calibration = calibration.model_copy(update={"threshold": best[0], "margin": best[1]})
    return with_calibration(state, settings, calibration)


def measure(rows: list[Example], decisions: list[Decision], state: RoutingState) -> Routed:
    """What the bot did with `rows`."""
    inside = [(r, d) for r, d in zip(rows, decisions, strict=True) if r.in_scope]
    outside = [d for r, d in zip(rows, decisions, strict=True) if not r.in_scope]
    answered = [
        (r, d) for r, d in zip(rows, decisions, strict=True) if d.route in ("answer", "handoff") and d.intent
    ]
    n = max(len(inside), 1)
    right = sum(d.intent == r.label for r, d in answered if r.in_scope)
    asked = [(r, d) for r, d in inside if d.route == "clarify"]
    return Routed(
        right=right / n,
        wrong=sum(d.intent != r.label for r, d in answered if r.in_scope) / n,
        asked_right=sum(r.label in d.options for r, d in asked) / n,
        asked_other=sum(r.label not in d.options for r, d in asked) / n,
        asked_out=sum(d.route == "clarify" for d in outside) / max(len(outside), 1),
        precision=sum(d.intent == r.label for r, d in answered) / max(len(answered), 1),
        point=f"{state.policy.threshold:.2f} / {state.policy.margin:.2f}",
    )


def converted(rows: list[Example], before: list[Decision], after: list[Decision]) -> int:
    """Messages answered wrong before and asked with the right option after."""
    return sum(
        b.route == "answer" and b.intent != r.label and a.route == "clarify" and r.label in a.options
        for r, b, a in zip(rows, before, after, strict=True)
        if r.in_scope
    )


def small_folders(args: argparse.Namespace, worths: list[float]) -> None:
    """Part 1: the small-folder table (the worth 0 row is the fit before #27 item 3)."""
    base = load_intents(args.intents)
    print(f"{args.small} folders of 15 shipped intents x 2 BANKING77 train examples (seed 100)\n")
    print("| worth | folders changed | answered right | precision | asked (right option) | served |")
    print("|---|---|---|---|---|---|")
    settings = Settings(
        intents_dir=args.intents, torch_threads=2, cache_dir=Path(".bot_cache"), retrieval_threshold=1.0
    )
    for worth in worths:
        options = dict(dataset="banking77", subsets=args.small, intents=15, examples=2, seed=100)
        bench = argparse.Namespace(**options, self_train=args.self_train, worth=worth)
        results = [measure_folder(bench, settings, folder) for folder in subset_folders(bench, base)]
        side = "now" if worth > 0 else "before"

        def mean(key: str, results: list[dict[str, object]] = results, side: str = side) -> float:
            return statistics.mean(float(r[side][key]) for r in results)  # type: ignore[index]

        served = statistics.mean(
            float(r[side]["answered_right"]) + 0.5 * float(r[side]["asked_right"])  # type: ignore[index]
            for r in results
        )
        changed = sum(r["before"]["point"] != r["now"]["point"] for r in results)  # type: ignore[index]
        print(
            f"| {worth:g} | {changed} of {len(results)} | {mean('answered_right'):.3f} | "
            f"{mean('delivered'):.3f} | {mean('asked'):.3f} ({mean('asked_right'):.3f}) | {served:.3f} |",
            flush=True,
        )
    print()


def main() -> None:
    """Fit and measure every worth; print the tables."""
    parser = train_parser(__doc__)
    parser.add_argument("--worths", default="0,0.25,0.5,0.75,1")
    parser.add_argument("--small", type=int, default=20, help="small folders in part 1 (0: skip it)")
    parser.add_argument(
        "--hard-cap", action="store_true", help="part 2: also the shipped worth with CLARIFY_CAP never lifted"
    )
    args = parser.parse_args()
    if "test" in args.data.name:
        raise SystemExit("the worth is chosen on training data only; give train.csv")
    worths = [float(w) for w in args.worths.split(",")]
    if args.small:
        small_folders(args, worths)
    settings = Settings(intents_dir=args.intents, torch_threads=2, cache_dir=Path(".bot_cache"))
    rows = read_dataset(args.data)
    base = load_intents(args.intents)
    kept_intents = tuple(i for i in base.intents if i.name not in HELD_OUT)
    kept = IntentSet(intents=kept_intents, version=content_hash(i.spec for i in kept_intents))
    names = set(base.names)
    inside = [r for r in rows if r.label in names]
    relabelled = [Example(r.text, OUT_OF_SCOPE if r.label in HELD_OUT else r.label) for r in inside]
    runs = (
        ("all intents", engine_for(settings, base, args.self_train), base, inside),
        ("20 unknown", engine_for(settings, kept, args.self_train), kept, relabelled),
    )
    print(f"{args.data}, {args.intents}{', self-trained' if args.self_train else ''}\n")
    print(
        "| folder | worth | threshold / margin | right | wrong | asked, right option | asked, not | "
        "precision | wrong -> asked right | oos asked |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, engine, intents, labelled in runs:
        baseline: list[Decision] | None = None
        runs = [(worth, False) for worth in worths] + ([(CLARIFY_WORTH, True)] if args.hard_cap else [])
        for worth, hard in runs:
            state = fitted(engine, intents, worth, hard)
            decisions = route_examples(engine, labelled, state=state)
            baseline = baseline or decisions
            m = measure(labelled, decisions, state)
            label = f"{worth:g}{', hard cap (not shipped)' if hard else ''}"
            print(
                f"| {name} | {label} | {m.point} | {m.right:.3f} | {m.wrong:.3f} | {m.asked_right:.3f} | "
                f"{m.asked_other:.3f} | {m.precision:.3f} | {converted(labelled, baseline, decisions)} | "
                f"{m.asked_out:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
