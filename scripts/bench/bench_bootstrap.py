"""`bot bootstrap` benchmark (#32 item 2): a folder drafted from BANKING77 train, against the hand-written one.

    python scripts/bench/bench_bootstrap.py [--train ../shared/data/banking77/train.csv]
                                            [--test ../shared/data/banking77/test.csv] [--intents intents]
                                            [--examples 5] [--distance 0.3] [--picker spread]
                                            [--no-share] [--seed 0] [--json]
    python scripts/bench/bench_bootstrap.py --scale 100000 [--train ...]   # the timing only

1. drafts   BANKING77 train's texts (no labels) go through `cluster_history`, as `bot bootstrap` runs it; the
            labels then judge the drafts: purity (rows of each draft's majority label / rows in drafts), the
            share of train in drafts, and the share in drafts "accepted as is": purity >= ACCEPT (a reviewer
            who reads the draft's examples sees one topic and keeps it without an edit).
2. routing  the drafted folder with no human edit routes BANKING77 test; each draft counts as its majority
            label (two drafts of one label are both right for it). Self-calibrated, no calibration file,
            as `Engine.load` does for a new folder; the stock encoder (no self-training). The hand-written
            demo folder (--intents, its calibration.yaml left out) is measured the same way. Reported:
            top-1, in-scope accuracy at the self-calibrated point with its precision, and the oracle's best
            in-scope accuracy at precision >= 0.90 (any threshold and margin on those labels).
3. --scale N  the timing: N messages made by repeating train with light variation (`vary`), written as a
            CSV and run through `bot bootstrap` end to end (read, redact, encode, cluster, write).
Progress goes to stderr; the Markdown table (or --json) to stdout.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from bench_cold_start import self_calibrated  # beside this script
from oracle import Ranked, best_in_scope_at_precision

from bot.config import Settings
from bot.content.intents import IntentSet, load_intents
from bot.insights.bootstrap import DISTANCE, EXAMPLES, PICKER, Result, cluster_history, question_key
from bot.insights.bootstrap_examples import PICKERS
from bot.insights.bootstrap_folder import Source, prepare, write_folder
from bot.routing.engine import Engine
from bot.routing.policy import Decision
from bot.routing.state import RoutingState
from bot.tuning.datasets import Example, read_dataset
from bot.tuning.evaluate import compute_metrics, route_examples

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "banking77"
ACCEPT = 0.8


def say(message: str) -> None:
    """Progress on stderr, so stdout stays the result."""
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")


def majority_labels(result: Result, rows: list[Example]) -> tuple[dict[str, str], dict[str, object]]:
    """Each draft's majority label, and the drafts' figures judged by the labels."""
    labels_of: dict[str, list[str]] = {}
    for row in rows:
        labels_of.setdefault(question_key(row.text), []).append(row.label)
    mapping: dict[str, str] = {}
    clustered = majority = accepted_rows = accepted = 0
    for draft in result.drafts:
        labels = Counter(
            label for i in draft.members for label in labels_of[question_key(result.distinct[i])]
        )
        label, count = labels.most_common(1)[0]
        mapping[draft.name] = label
        total = sum(labels.values())
        clustered += total
        majority += count
        if count / total >= ACCEPT:
            accepted += 1
            accepted_rows += total
    return mapping, {
        "drafts": len(result.drafts),
        "labels_leading_a_draft": len(set(mapping.values())),
        "purity": round(majority / clustered, 4),
        "covered": round(clustered / len(rows), 4),
        "accepted_as_is": accepted,
        "covered_by_accepted": round(accepted_rows / len(rows), 4),
        "knowledge_entries": len(result.knowledge),
    }


def as_loaded(engine: Engine, intents: IntentSet, settings: Settings) -> RoutingState:
    """`self_calibrated` with the folder's own `off_topic_share` in place of BOT_OOS_RATE, as `Engine.load`
    applies it (the drafted folder declares the history's share in no draft)."""
    if intents.off_topic_share is not None:
        settings = settings.with_overrides(oos_rate=intents.off_topic_share)
    return self_calibrated(engine, intents, settings)


def relabel(decision: Decision, mapping: dict[str, str]) -> Decision:
    """A decision as if each draft were named by its majority label."""
    candidates = tuple(replace(c, intent=mapping.get(c.intent, c.intent)) for c in decision.candidates)
    intent = mapping.get(decision.intent, decision.intent) if decision.intent else None
    return replace(decision, intent=intent, candidates=candidates)


def judge(
    engine: Engine, state: RoutingState, rows: list[Example], mapping: dict[str, str]
) -> dict[str, object]:
    """Top-1, the self-calibrated point and the oracle at precision 0.90 on `rows`."""
    decisions = [relabel(d, mapping) for d in route_examples(engine, rows, state=state, progress=True)]
    metrics = compute_metrics(rows, decisions)
    at_90 = best_in_scope_at_precision(Ranked.of(rows, decisions), 0.90)
    calibration = state.calibration
    assert calibration is not None, "judge() takes a self-calibrated state"
    # promised at the fit's out-of-scope share (the folder's, else BOT_OOS_RATE) and at none
    at_none = calibration.expected_by_oos_rate.get("0", (None, None))[0]
    return {
        "oos_rate": calibration.oos_rate,
        "promised": calibration.expected_precision,
        "promised_low": calibration.expected_precision_low,
        "promised_no_oos": at_none,
        "intents": len(state.intents.intents),
        "top1": round(metrics.top1_accuracy, 4),
        "in_scope": round(metrics.in_scope_accuracy, 4),
        "precision": round(metrics.answer_precision or 0.0, 4),
        "coverage": round(metrics.coverage, 4),
        "oracle_in_scope_at_0.90": at_90.in_scope_accuracy if at_90 else None,
    }


def measure(args: argparse.Namespace) -> dict[str, object]:
    """Draft from train, then route test with the drafted and the hand-written folder."""
    train, test = read_dataset(args.train, "train"), read_dataset(args.test, "test")
    work = Path(tempfile.mkdtemp(prefix="bench-bootstrap-"))
    settings = Settings(model="bundled", torch_threads=2, self_calibrate=True, cache_dir=ROOT / ".bot_cache")
    engine = Engine(settings.with_overrides(intents_dir=args.intents), progress=True)
    engine.load()
    encoder = engine.direct_encoder
    say(f"drafting from {len(train):,} train texts")
    started = time.perf_counter()
    result = cluster_history(
        [r.text for r in train],
        [None] * len(train),
        lambda texts: encoder.encode(texts),
        seed=args.seed,
        examples=args.examples,
        distance=args.distance,
        picker=args.picker,
    )
    seconds = time.perf_counter() - started
    folder = work / "drafted"
    prepare(folder, force=False)
    write_folder(result, folder, Source(str(args.train), len(train), 0))
    mapping, drafts = majority_labels(result, train)
    drafts["seconds"] = round(seconds, 1)
    fit = settings.with_overrides(cache_dir=work / "fit")  # self-calibrations fitted here, not cached
    say("routing test with the drafted folder")
    intents = load_intents(folder)
    if args.no_share:
        intents = dataclasses.replace(intents, off_topic=None)
    drafted = judge(engine, as_loaded(engine, intents, fit), test, mapping)
    say("routing test with the hand-written folder")
    hand = judge(engine, as_loaded(engine, load_intents(args.intents), fit), test, {})
    ratio = None
    if drafted["oracle_in_scope_at_0.90"] and hand["oracle_in_scope_at_0.90"]:
        ratio = round(float(drafted["oracle_in_scope_at_0.90"]) / float(hand["oracle_in_scope_at_0.90"]), 3)  # type: ignore[arg-type]
    return {
        "drafts": drafts,
        "drafted": drafted,
        "hand_written": hand,
        "ratio_at_0.90": ratio,
        "folder": str(folder),
    }


def vary(text: str, copy: int) -> str:
    """The `copy`-th light variation of a question: case, punctuation, a greeting, thanks, a typo."""
    words = text.split()
    longest = max(range(len(words)), key=lambda i: len(words[i])) if words else 0
    typo = list(words)
    if words and len(words[longest]) > 3:
        w = words[longest]
        typo[longest] = w[:1] + w[2] + w[1] + w[3:]
    return [
        text,
        text.lower(),
        text.rstrip("?.!"),
        f"Hi, {text}",
        f"{text} Thanks!",
        f"hello {text.lower()}",
        f"{text} please",
        " ".join(typo),
        f"Hey {text}",
        f"{text}??",
    ][copy % 10]


def scale(args: argparse.Namespace) -> dict[str, object]:
    """Time `bot bootstrap` end to end on --scale messages made from train."""
    train = read_dataset(args.train, "train")
    work = Path(tempfile.mkdtemp(prefix="bench-bootstrap-scale-"))
    history = work / "history.csv"
    with history.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text"])
        for n in range(args.scale):
            writer.writerow([vary(train[n % len(train)].text, n // len(train))])
    distinct = len(
        {question_key(vary(train[n % len(train)].text, n // len(train))) for n in range(args.scale)}
    )
    say(f"{args.scale:,} messages ({distinct:,} distinct questions) in {history}; running bot bootstrap")
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from bot.cli import main; main()",
            "bootstrap",
            "--from",
            str(history),
            "--out",
            str(work / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return {
        "messages": args.scale,
        "distinct": distinct,
        "seconds": round(seconds, 1),
        "said": done.stdout.splitlines()[0],
    }


def main() -> None:
    """Measure, then print the table (or JSON)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", type=Path, default=DATA / "train.csv")
    parser.add_argument("--test", type=Path, default=DATA / "test.csv")
    parser.add_argument("--intents", type=Path, default=ROOT / "intents")
    parser.add_argument("--examples", type=int, default=EXAMPLES)
    parser.add_argument("--distance", type=float, default=DISTANCE)
    parser.add_argument("--picker", choices=PICKERS, default=PICKER)
    parser.add_argument(
        "--no-share",
        action="store_true",
        help="drop the drafted folder's off_topic_share (the folder then plans for BOT_OOS_RATE)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--scale", type=int, default=0, help="time bot bootstrap on this many messages instead"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = scale(args) if args.scale else measure(args)
    if args.json or args.scale:
        sys.stdout.write(json.dumps(result) + "\n")
        return
    print_table(result)


def print_table(result: dict[str, object]) -> None:
    """The rows of docs/evaluation.md's section."""
    drafts = result["drafts"]
    assert isinstance(drafts, dict)
    print(
        f"drafts: {drafts['drafts']} ({drafts['labels_leading_a_draft']} labels lead one), purity "
        f"{drafts['purity']:.3f}, train covered {drafts['covered']:.3f}, accepted as is (purity >= {ACCEPT}) "
        f"{drafts['accepted_as_is']} covering {drafts['covered_by_accepted']:.3f}, {drafts['seconds']} s\n"
    )
    print(
        "| folder | intents | top-1 | out-of-scope share planned | promised precision (lower bound) "
        "| delivered precision | coverage | in-scope right | in-scope at precision >= 0.90 (oracle) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in ("drafted", "hand_written"):
        r = result[name]
        assert isinstance(r, dict)
        print(
            f"| {name} | {r['intents']} | {r['top1']:.3f} | {r['oos_rate']} | {r['promised']:.3f} "
            f"({r['promised_low']:.3f}) | {r['precision']:.3f} | {r['coverage']:.3f} | {r['in_scope']:.3f} | "
            f"{r['oracle_in_scope_at_0.90']} |"
        )
    print(f"\nratio drafted / hand-written at precision >= 0.90: {result['ratio_at_0.90']}")


if __name__ == "__main__":
    main()
