"""Does the promise hold at the off-topic share a business states (#31 items 2 and 5)?

    python scripts/bench/bench_oos_share.py [--dataset hwu64|banking77-oos] [--self-train]
                                            [--rates 0.03,0.1,0.2,0.3] [--target 0.90] [--json]

A folder routes with zero labelled data (self-calibrated from its own texts; with --self-train, on the
encoder fine-tuned on them, as `bot serve` does). Its off-topic traffic has two kinds:
- **siblings**: requests about the domain's topics the folder never covered. hwu64: 12 of its 64 intents
  held out (seed 0, as bench_cold_start.py), their test messages; banking77-oos: the published BANKING77-OOS
  split (`../shared/data/banking77/OOS_SPLIT.md`): the 50 kept intents of the demo folder, the 27 held out;
- **general**: `scripts/bench/data/off_topic_eval.txt` (our evaluation set, never used to fit), for hwu64
  without the lines its intents cover (`off_topic_eval_hwu64.csv`).
For each stated share (`BOT_OOS_RATE`) the folder is fitted for it, and traffic with that share off-topic
is judged three ways: off-topic all siblings, all general, and half each. Delivered precision weighs the
rows to that share (the same arithmetic as the promise); the oracle is the best threshold and margin on
the same labels reaching the target precision.
Nothing here is tuned on: settings were chosen on BANKING77 train (docs/evaluation.md).
Progress on stderr; Markdown tables (or --json) on stdout.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from bench_cold_start import engine_for, promised  # beside this script
from oracle import MARGINS, Ranked

from bot.config import Settings
from bot.content.intents import IntentSet, content_hash, load_intents
from bot.content.small_talk import is_built_in
from bot.routing.engine import Engine
from bot.routing.pseudo_queries import Evidence
from bot.routing.self_calibration import cached_self_calibration
from bot.routing.state import RoutingState, with_calibration
from bot.tuning.datasets import OUT_OF_SCOPE, Example, read_dataset
from bot.tuning.evaluate import route_examples

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
GENERAL = ROOT / "scripts" / "bench" / "data" / "off_topic_eval.txt"
GENERAL_HWU64 = ROOT / "scripts" / "bench" / "data" / "off_topic_eval_hwu64.csv"
MIXES = {"siblings": 1.0, "half": 0.5, "general": 0.0}  # share of the off-topic traffic that is siblings


def say(message: str) -> None:
    """Progress on stderr, so stdout stays the result."""
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")


def general_texts(dataset: str) -> list[str]:
    """The evaluation off-topic set, without what the dataset's folder covers (hwu64 only)."""
    if dataset == "hwu64":
        with GENERAL_HWU64.open(encoding="utf-8", newline="") as handle:
            return [row["text"] for row in csv.DictReader(handle) if not row["hwu64_intent"].strip()]
    lines = GENERAL.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def banking77_oos_held_out() -> set[str]:
    """The 27 intents BANKING77-OOS holds out (the list at the end of OOS_SPLIT.md)."""
    text = (DATA / "banking77" / "OOS_SPLIT.md").read_text(encoding="utf-8")
    listed = text.rsplit("\n\n", 1)[-1]
    return {name.strip() for name in listed.replace("\n", " ").split(",") if name.strip()}


@dataclass(frozen=True)
class Setup:
    """A folder, its in-scope test rows and its two kinds of off-topic rows."""

    intents: IntentSet
    inside: list[Example]
    siblings: list[Example]
    general: list[Example]
    held_out: list[str]


def setup(dataset: str, seed: int) -> Setup:
    """The folder and rows of `dataset` (see the module docstring)."""
    if dataset == "hwu64":
        base = load_intents(ROOT / "scripts" / "bench" / "hwu64" / "intents")
        rows = read_dataset(DATA / "hwu64" / "test.csv", "test")
        held = set(random.Random(seed).sample(sorted(base.names), 12))
    else:
        base = load_intents(ROOT / "intents")
        rows = read_dataset(DATA / "banking77" / "test.csv", "test")
        labels = {r.label for r in rows}
        held = banking77_oos_held_out()
        missing = held - labels
        if missing:
            raise SystemExit(f"OOS_SPLIT.md names intents test.csv lacks: {sorted(missing)}")
        # the 50 kept BANKING77 intents only: the demo folder's other intents are not part of the protocol
        base = IntentSet(
            intents=tuple(i for i in base.intents if i.name in labels),
            version="",
            small_talk=None,
        )
    # the data set's intents only: built-in small talk has no labelled messages (bench_small_folders.py)
    kept = tuple(i for i in base.intents if i.name not in held and not is_built_in(i))
    folder = IntentSet(intents=kept, version=content_hash(i.spec for i in kept), small_talk=None)
    inside = [r for r in rows if r.label in folder.names]
    siblings = [Example(r.text, OUT_OF_SCOPE) for r in rows if r.label in held]
    general = [Example(text, OUT_OF_SCOPE) for text in general_texts(dataset)]
    return Setup(folder, inside, siblings, general, sorted(held))


@dataclass(frozen=True)
class Judged:
    """What one operating point does to traffic `rate` off-topic, `siblings` of it sibling requests."""

    mix: str
    threshold: float
    margin: float
    promised: float | None
    promised_low: float | None
    delivered: float
    in_scope: float
    oos_recall: float
    oracle_in_scope: float | None  # the best in-scope accuracy at precision >= the target
    oracle_at_delivered: float | None  # ... at precision >= what was delivered


def weights(n_in: int, n_sib: int, n_gen: int, rate: float, siblings: float) -> np.ndarray:
    """Row weights making in scope 1 - rate, siblings rate * siblings and general the rest."""
    parts = [
        np.full(n_in, (1 - rate) / n_in),
        np.full(n_sib, rate * siblings / n_sib if n_sib else 0.0),
        np.full(n_gen, rate * (1 - siblings) / n_gen if n_gen else 0.0),
    ]
    return np.concatenate(parts)


def weighted(ranked: Ranked, w: np.ndarray, threshold: float, margin: float) -> tuple[float, float, float]:
    """Precision, in-scope accuracy and off-topic recall of one point, rows weighted by `w`."""
    accept = (ranked.top >= threshold) & (ranked.lead >= margin)
    answered = float(w[accept].sum())
    right = float(w[accept & ranked.right & ranked.in_scope].sum())
    inside = float(w[ranked.in_scope].sum())
    outside = float(w[~ranked.in_scope].sum())
    precision = right / answered if answered > 0 else 1.0
    refused = float(w[~accept & ~ranked.in_scope].sum())
    return precision, right / inside, refused / outside if outside > 0 else 1.0


def oracle(ranked: Ranked, w: np.ndarray, precision: float) -> float | None:
    """The best weighted in-scope accuracy of any (threshold, margin) whose precision reaches `precision`."""
    best: float | None = None
    thresholds = np.unique(np.round(ranked.top[ranked.in_scope], 3))
    for margin in MARGINS:
        for threshold in thresholds:
            got, inside, _ = weighted(ranked, w, float(threshold), margin)
            if got >= precision - 1e-9 and (best is None or inside > best):
                best = inside
    return best


def judge(
    state: RoutingState, ranked: Ranked, sizes: tuple[int, int, int], rate: float, target: float
) -> list[Judged]:
    """The fitted point of `state` on traffic `rate` off-topic, for every mix of `MIXES`."""
    calibration = state.calibration
    out: list[Judged] = []
    for mix, siblings in MIXES.items():
        w = weights(*sizes, rate, siblings)
        precision, inside, recall = weighted(ranked, w, state.policy.threshold, state.policy.margin)
        best = oracle(ranked, w, target)
        at_delivered = oracle(ranked, w, precision)
        out.append(
            Judged(
                mix,
                state.policy.threshold,
                state.policy.margin,
                promised(state, rate),
                calibration.expected_precision_low if calibration else None,
                precision,
                inside,
                recall,
                best,
                at_delivered,
            )
        )
    return out


def self_calibrated(engine: Engine, intents: IntentSet, settings: Settings, general: bool) -> RoutingState:
    """A state for `intents`, self-calibrated as `Engine.load` does; without `general`, as before #31 (the
    off-topic traffic judged by the folder's siblings alone)."""
    state = engine.with_intents(intents, calibration=None)
    settings = settings.with_overrides(model=engine.settings.model)  # the bias depends on the model
    evidence = Evidence.of(settings.model, intents, engine.encoder if general else None)
    found = cached_self_calibration(state, settings, evidence).calibration
    if found is None:
        raise SystemExit("the folder is too small to self-calibrate")
    return with_calibration(state, settings, found)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", choices=("hwu64", "banking77-oos"), default="hwu64")
    parser.add_argument("--rates", default="0.03,0.1,0.2,0.3")
    parser.add_argument("--target", type=float, default=0.90)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--self-train", action="store_true", help="fine-tune on the folder's texts first")
    parser.add_argument(
        "--before",
        action="store_true",
        help="fit as before #31: no general off-topic evidence, siblings alone",
    )
    parser.add_argument(
        "--siblings", type=float, default=None, help="BOT_OOS_SIBLINGS (default: the setting's)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    found = setup(args.dataset, args.seed)
    say(
        f"{args.dataset}: {len(found.intents.intents)} intents, {len(found.inside)} in scope, "
        f"{len(found.siblings)} sibling and {len(found.general)} general off-topic rows"
    )
    settings = Settings(
        intents_dir=ROOT / "intents",
        torch_threads=args.threads,
        self_calibrate=True,
        target_precision=args.target,
        cache_dir=Path(".bot_cache"),
    ).with_overrides()
    engine: Engine = engine_for(settings, found.intents, args.self_train)
    rows = found.inside + found.siblings + found.general
    sizes = (len(found.inside), len(found.siblings), len(found.general))
    results: dict[str, list[dict[str, object]]] = {}
    for rate in rates:
        fit_cache = Path(tempfile.mkdtemp(prefix="oos-share-"))
        fit = settings.with_overrides(cache_dir=fit_cache, oos_rate=rate)
        if args.siblings is not None:
            fit = fit.with_overrides(oos_siblings=args.siblings)
        state = self_calibrated(engine, found.intents, fit, general=not args.before)
        ranked = Ranked.of(rows, route_examples(engine, rows, state=state))
        results[f"{rate:g}"] = [asdict(j) for j in judge(state, ranked, sizes, rate, args.target)]
        say(f"share {rate:g}: threshold {state.policy.threshold:.2f}, margin {state.policy.margin:.2f}")
    if args.json:
        sys.stdout.write(
            json.dumps({"dataset": args.dataset, "held_out": found.held_out, "results": results}) + "\n"
        )
        return
    trained = ", encoder trained on the folder's texts" if args.self_train else ", stock encoder"
    trained += ", fitted as before #31" if args.before else ""
    print(f"{args.dataset}{trained}; target precision {args.target:.2f}\n")
    print(
        "| stated share = true share | off-topic mix | threshold / margin | promised (low) | delivered | in scope | oracle in scope at target | off-topic refused |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for rate, judged in results.items():
        for j in judged:
            print(
                f"| {float(rate):.0%} | {j['mix']} | {j['threshold']:.2f} / {j['margin']:.2f} | "
                f"{fmt(j['promised'])} ({fmt(j['promised_low'])}) | {fmt(j['delivered'])} | {fmt(j['in_scope'])} | "
                f"{fmt(j['oracle_in_scope'])} | {fmt(j['oos_recall'])} |"
            )


def fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else ("" if value is None else str(value))


if __name__ == "__main__":
    main()
