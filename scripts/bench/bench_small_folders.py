"""Small folders (#27): does self-calibration's promise hold on a 15-intent folder with two examples each,
and what does asking on near ties change?

    python scripts/bench/bench_small_folders.py [--dataset hwu64|banking77] [--subsets 10] [--intents 15]
                                                [--examples 2] [--seed 0] [--whole] [--self-train] [--worth W] [--json]

Each of --subsets folders keeps --intents intents drawn at random (seed --seed + its number) with our own
names, titles and descriptions and --examples examples each drawn from the data set's *train* split:
- hwu64 (reported, never tuned on): descriptions from scripts/bench/hwu64/intents; the folder's intents'
  HWU64 test messages are in scope, the other intents' test messages off-topic traffic;
- banking77 (where the bound's constants were judged): descriptions from intents/; the rest of BANKING77
  train (the drawn examples left out) in scope and off-topic alike. Never test.csv.
With --whole, the whole folder comes first, with its own examples, all of its messages in scope (hwu64: its
64 intents on test.csv; banking77: the shipped intents on train.csv); built-in small talk left out.

Every folder self-calibrates twice: as before #27 item 3 (a clarify counted as a miss: worth 0) and as
shipped (`CLARIFY_WORTH`, or --worth). Delivered precision weighs the off-topic messages to the share the promise plans for
(`BOT_OOS_RATE`, `oos_rate` in the calibration), as the promise does. Per folder: the point, the promise,
its lower bound, the precision delivered, in-scope answered right, the share asked to clarify (with the
right option), how many messages answered wrong before are asked with the right option now, and how many
of the wrong answers the chosen threshold would give without a margin its margin asks with the right option.
Knowledge passages play no part (the intents' promise is measured). With --self-train each folder routes
with the encoder fine-tuned on its own texts (trained once per folder, cached in .bot_cache/models).
Progress on stderr, the tables (or --json) on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bench_cold_start import engine_for  # beside this script

from bot.config import Settings
from bot.content.intents import IntentSet, content_hash, load_intents
from bot.routing.engine import Engine
from bot.routing.policy import Decision
from bot.routing.pseudo_queries import Evidence
from bot.routing.scoring import decide_vectors
from bot.routing.self_calibration import CLARIFY_WORTH, fit_self_calibration
from bot.routing.state import with_calibration
from bot.tuning.datasets import OUT_OF_SCOPE, Example, group_by_label, read_dataset

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
FOLDERS = {"hwu64": ROOT / "scripts" / "bench" / "hwu64" / "intents", "banking77": ROOT / "intents"}


def say(message: str) -> None:
    """Progress on stderr, so stdout stays the result."""
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")


@dataclass(frozen=True)
class Folder:
    """One folder to self-calibrate and the labelled rows it is judged on (off-topic rows labelled oos)."""

    name: str
    intents: IntentSet
    rows: list[Example]


@dataclass(frozen=True)
class Result:
    """One folder under one fit: its point, promise and what it delivered."""

    point: str
    promised: float
    bound: float
    delivered: float
    answered_right: float  # share of in-scope messages answered with the right intent
    asked: float  # share of all messages (off-topic weighed as planned) asked which intent is meant
    asked_right: float  # share of in-scope messages asked with the right intent among the options
    pseudo: dict[str, float]  # the fit's outcome on its pseudo-queries and their number (for --json)
    decisions: list[Decision]
    unasked: list[Decision]  # the same threshold with margin 0: every near tie answered, none asked


def subset_folders(args: argparse.Namespace, base: IntentSet) -> list[Folder]:
    """--subsets folders of --intents intents, --examples train examples each, with their rows."""
    train = read_dataset(DATA / args.dataset / "train.csv")
    judged = train if args.dataset == "banking77" else read_dataset(DATA / args.dataset / "test.csv")
    by_label = group_by_label(train)
    names = sorted(n for n in base.names if n in by_label)  # the demo's greeting & co. have no rows
    folders = []
    for number in range(args.subsets):
        rng = random.Random(args.seed + number)
        chosen = sorted(rng.sample(names, args.intents))
        drawn = {name: rng.sample(sorted(by_label[name]), args.examples) for name in chosen}
        kept = tuple(
            dataclasses.replace(i, spec=i.spec.model_copy(update={"examples": tuple(drawn[i.name])}))
            for i in base.intents
            if i.name in drawn
        )
        used = {text for texts in drawn.values() for text in texts}
        rows = [
            Example(r.text, r.label if r.label in drawn else OUT_OF_SCOPE)
            for r in judged
            if r.text not in used and r.label in by_label
        ]
        intents = IntentSet(intents=kept, version=content_hash(i.spec for i in kept))
        folders.append(Folder(f"subset {number + 1}", intents, rows))
    return folders


def route(engine: Engine, folder: Folder, worth: float, vectors: np.ndarray) -> Result:
    """`folder` self-calibrated with `worth` (no cache), its rows routed and judged."""
    state = engine.with_intents(folder.intents, calibration=None)
    evidence = Evidence.of(engine.settings.model, state.intents, engine.encoder)
    fit = fit_self_calibration(state, engine.settings, evidence, worth=worth)
    if fit is None:
        raise SystemExit(f"{folder.name} is too small to self-calibrate")
    calibration = fit.calibration
    decisions = decide_vectors(with_calibration(state, engine.settings, calibration), vectors)
    no_margin = calibration.model_copy(update={"margin": 0.0})
    unasked = decide_vectors(with_calibration(state, engine.settings, no_margin), vectors)
    inside = np.array([r.in_scope for r in folder.rows])
    rate = calibration.oos_rate or 0.0
    weights = np.where(inside, (1 - rate) / max(inside.sum(), 1), rate / max((~inside).sum(), 1))
    if inside.all():
        weights = np.full(len(inside), 1 / len(inside))
    answered = np.array([d.route in ("answer", "handoff") and d.intent is not None for d in decisions])
    right = np.array([d.intent == r.label for r, d in zip(folder.rows, decisions, strict=True)]) & answered
    asked = np.array([d.route == "clarify" for d in decisions])
    holds = np.array([r.label in d.options for r, d in zip(folder.rows, decisions, strict=True)]) & asked
    return Result(
        point=f"{calibration.threshold:.2f} / {calibration.margin:.2f}",
        promised=calibration.expected_precision or 0.0,
        bound=calibration.expected_precision_low or 0.0,
        delivered=float(weights[right].sum() / max(weights[answered].sum(), 1e-12)),
        answered_right=float(right[inside].mean()),
        asked=float(weights[asked].sum() / weights.sum()),
        asked_right=float(holds[inside].mean()),
        pseudo={**dataclasses.asdict(fit.outcome), "queries": fit.queries},
        decisions=decisions,
        unasked=unasked,
    )


def converted(folder: Folder, before: list[Decision], after: list[Decision]) -> tuple[int, int]:
    """Messages answered wrong before that are asked with the right option after, and all answered wrong before."""
    wrong = [
        (r, b, a)
        for r, b, a in zip(folder.rows, before, after, strict=True)
        if r.in_scope and b.route == "answer" and b.intent != r.label
    ]
    return sum(a.route == "clarify" and r.label in a.options for r, _, a in wrong), len(wrong)


def measure(args: argparse.Namespace, settings: Settings, folder: Folder) -> dict[str, object]:
    """Both fits of one folder (its own engine when self-trained), as a table row's figures."""
    engine = engine_for(settings, folder.intents, args.self_train)
    vectors = engine.encoder.encode([r.text for r in folder.rows])
    before, now = (route(engine, folder, worth, vectors) for worth in (0.0, args.worth))
    turned, wrong = converted(folder, before.decisions, now.decisions)
    # what the clarify route does at the chosen point: its threshold without the margin answers every
    # near tie; which of those wrong answers the margin asks with the right option instead
    turned_here, wrong_here = converted(folder, now.unasked, now.decisions)
    say(
        f"{folder.name}: promised {now.promised:.3f}, at least {now.bound:.3f}, delivered {now.delivered:.3f}"
    )
    figures = {
        name: {k: v for k, v in dataclasses.asdict(r).items() if k not in ("decisions", "unasked")}
        for name, r in (("before", before), ("now", now))
    }
    in_scope = sum(r.in_scope for r in folder.rows)
    return {
        "folder": folder.name,
        "intents": folder.intents.names,
        "rows": len(folder.rows),
        "in_scope": in_scope,
        **figures,
        "wrong_before": wrong,
        "wrong_now_asked_right": turned,
        "wrong_without_margin": wrong_here,
        "wrong_without_margin_asked_right": turned_here,
    }


def main() -> None:
    """Build the folders, fit and route each, print the tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", choices=sorted(FOLDERS), default="hwu64")
    parser.add_argument("--subsets", type=int, default=10)
    parser.add_argument("--intents", type=int, default=15)
    parser.add_argument("--examples", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--whole", action="store_true", help="the whole folder first (hwu64: 64 intents)")
    parser.add_argument("--self-train", action="store_true")
    parser.add_argument(
        "--worth",
        type=float,
        default=CLARIFY_WORTH,
        help="a clarify with the right option, as a share of a right answer",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folder_dir = FOLDERS[args.dataset]
    # no knowledge passage answers: the intents' own promise is what is measured
    settings = Settings(
        intents_dir=folder_dir,
        torch_threads=args.threads,
        cache_dir=Path(".bot_cache"),
        retrieval_threshold=1.0,
    )
    base = load_intents(folder_dir)
    folders = subset_folders(args, base)
    if args.whole:  # the data set's intents only: built-in small talk has no labelled messages
        test = read_dataset(DATA / args.dataset / ("test.csv" if args.dataset == "hwu64" else "train.csv"))
        labelled = tuple(i for i in base.intents if i.name in {r.label for r in test})
        whole = IntentSet(intents=labelled, version=content_hash(i.spec for i in labelled))
        rows = [r for r in test if r.label in whole.names]
        folders.insert(0, Folder(f"whole ({len(labelled)} intents)", whole, rows))
    results = []
    for folder in folders:
        say(f"{folder.name}: {len(folder.intents.intents)} intents, {len(folder.rows)} rows")
        results.append(measure(args, settings, folder))
    if args.json:
        sys.stdout.write(
            json.dumps({"dataset": args.dataset, "worth": args.worth, "folders": results}) + "\n"
        )
        return
    print_tables(args, results)


def print_tables(args: argparse.Namespace, results: list[dict[str, object]]) -> None:
    """The promise table and the clarify table of docs/evaluation.md."""
    trained = ", encoder trained on each folder's texts" if args.self_train else ", stock encoder"
    print(
        f"{args.dataset}: {args.intents} intents x {args.examples} train examples, seed {args.seed}{trained}\n"
    )
    print("| folder | threshold / margin | promised | at least | delivered | holds |")
    print("|---|---|---|---|---|---|")
    held = 0
    for result in results:
        now = result["now"]
        assert isinstance(now, dict)
        holds = now["delivered"] >= now["bound"]
        held += holds and str(result["folder"]).startswith("subset")
        print(
            f"| {result['folder']} | {now['point']} | {now['promised']:.3f} | {now['bound']:.3f} | "
            f"{now['delivered']:.3f} | {'yes' if holds else 'NO'} |"
        )
    print(f"\nthe bound holds on {held} of {args.subsets} subsets\n")
    print(
        "| folder | point before / now | precision before / now | answered right before / now | asked "
        "(with the right option) | wrong answers asked with the right option now | of the wrong answers "
        "at the same threshold without a margin, asked with the right option |"
    )
    print("|---|---|---|---|---|---|---|")
    for result in results:
        before, now = result["before"], result["now"]
        assert isinstance(before, dict) and isinstance(now, dict)
        print(
            f"| {result['folder']} | {before['point']} / {now['point']} | {before['delivered']:.3f} / "
            f"{now['delivered']:.3f} | {before['answered_right']:.3f} / {now['answered_right']:.3f} | "
            f"{now['asked']:.3f} ({now['asked_right']:.3f}) | {result['wrong_now_asked_right']} of "
            f"{result['wrong_before']} | {result['wrong_without_margin_asked_right']} of "
            f"{result['wrong_without_margin']} |"
        )


if __name__ == "__main__":
    main()
