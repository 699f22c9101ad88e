"""Time to a folder's trained model: the whole background job `bot serve` starts (the model, its cross-fit
fold models and the ONNX int8 export), against the folder's size, with and without the cap.

    python scripts/bench/bench_training_time.py run demo f150 hwu64 s2000x4 [--runs 2] [--threads 2]
                                                [--code DIR --label uncapped] [--results FILE]
    python scripts/bench/bench_training_time.py plot [--results FILE] [--out docs/plots/training_time.png]

`run` times `python -m bot.tuning.self_training FOLDER bundled CACHE THREADS --progress-json --export
onnx-int8` (the child bot.runtime.training starts, without --nice and --parent) in a fresh cache, so each
run trains from scratch, and appends one JSON line per run to --results (default
docs/plots/training_time.jsonl): folder, texts, seconds to each phase, total. `--code DIR` runs another
checkout's bot package (e.g. `git archive 694dff0 | tar -x -C /tmp/base`: the uncapped training before
#26 item 5). Folders: demo (intents/ without calibration.yaml), f150 (make_folders.py f150), hwu64
(scripts/bench/hwu64/intents), sNxK (N synthetic intents of K examples). `plot` draws seconds against
texts: the cost model of bot/tuning/recipe.py (the capped job) and the pre-cap job's at its own costs
(UNCAPPED_*), the pre-cap job's idle times and the runs (dated runs filled, older ones hollow), with the
goals (90 s, 5 min). Timings on a shared machine are noisy:
the load average and the job's CPU seconds (all its processes, less sensitive to other work) are recorded
with each run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import make_folders  # beside this script
import numpy as np

from bot.content.intents import load_intents
from bot.routing.state import intent_texts

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "plots" / "training_time.jsonl"


def folder(name: str, scratch: Path) -> Path:
    """The intents folder called `name` (made under `scratch` when it is generated)."""
    if name == "hwu64":
        return ROOT / "scripts" / "bench" / "hwu64" / "intents"
    out = scratch / name
    if name == "demo":
        make_folders.demo(out)
    elif name == "f150":
        make_folders.f150(out)
    elif match := re.fullmatch(r"s(\d+)x(\d+)", name):
        make_folders.synthetic(out, int(match.group(1)), int(match.group(2)))
    else:
        raise SystemExit(f"unknown folder {name!r}: demo, f150, hwu64 or sNxK")
    return out


def time_job(path: Path, threads: int, code: Path | None) -> dict[str, object]:
    """One run of the child job in a fresh cache: seconds to each phase and in all."""
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    with tempfile.TemporaryDirectory(prefix="train-time-") as cache:
        command = [
            sys.executable,
            "-m",
            "bot.tuning.self_training",
            str(path),
            "bundled",
            cache,
            str(threads),
        ]
        command += ["--progress-json", "--export", "onnx-int8"]
        started = time.monotonic()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        phases: dict[str, float] = {}
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=code or ROOT) as child:
            assert child.stdout is not None
            for line in child.stdout:
                phase = str(json.loads(line)["phase"])
                phases.setdefault(phase, round(time.monotonic() - started, 1))
        if child.returncode != 0:
            raise SystemExit(f"training {path} failed (exit {child.returncode})")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        return {
            "phases": phases,
            "seconds": round(time.monotonic() - started, 1),
            "cpu_seconds": round(cpu, 1),
        }


def run(args: argparse.Namespace) -> None:
    """Time each folder `--runs` times and append the results."""
    scratch = Path(tempfile.mkdtemp(prefix="train-folders-"))
    for name in args.folders:
        path = folder(name, scratch)
        intents = load_intents(path)
        texts = len(intent_texts(intents)[0])
        for number in range(args.runs):
            load = os.getloadavg()[0]
            result = time_job(path, args.threads, args.code)
            row = {"label": args.label, "folder": name, "intents": len(intents.intents), "texts": texts}
            row |= {"threads": args.threads, "run": number, "load": round(load, 2), **result}
            row["date"] = time.strftime("%Y-%m-%d")
            print(json.dumps(row), flush=True)
            with args.results.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")


# The job before the cap on 2 idle cores (docs/evaluation.md, docs/cold-start.md): demo 63 + 67 s and the
# export, HWU64 38 + 60 s and the export, a 150-intent folder about 8 minutes.
IDLE_UNCAPPED = {410: 150.0, 320: 118.0, 1394: 480.0}


# The pre-cap job's own costs on 2 idle cores (its measured phases: start-up and export, a step, a text
# encoded); the capped job's are in bot.tuning.recipe
UNCAPPED_JOB_SECONDS, UNCAPPED_STEP_SECONDS, UNCAPPED_ENCODE_SECONDS = 30.0, 1.6, 0.004


def uncapped_estimate(texts: int) -> float:
    """The recipe before the cap at its own costs: every step, and the folder encoded at each model's start
    and each epoch (5 times), and once more by each fold model."""
    from bot.routing.cross_fit import FOLDS
    from bot.tuning.training import TrainingConfig, planned_steps

    config = TrainingConfig()
    steps = planned_steps(texts, config) + FOLDS * planned_steps(round(texts * 0.7), config)
    encoded = (config.epochs + 1) * (texts + FOLDS * round(texts * 0.7)) + FOLDS * texts
    return UNCAPPED_JOB_SECONDS + UNCAPPED_STEP_SECONDS * steps + UNCAPPED_ENCODE_SECONDS * encoded


def plot(args: argparse.Namespace) -> None:
    """Seconds against texts: the capped job's cost model and the pre-cap job's (2 idle cores), the pre-cap
    job's idle times, and this script's runs (marked with the machine's load)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bot.tuning.recipe import estimate_seconds

    rows = [json.loads(line) for line in args.results.read_text(encoding="utf-8").splitlines() if line]
    sizes = [int(x) for x in np.geomspace(200, 16_000, 40)]
    figure, axes = plt.subplots(figsize=(7.5, 4.5))
    axes.plot(
        sizes, [uncapped_estimate(x) for x in sizes], color="tab:red", label="before the cap (cost model)"
    )
    axes.plot(
        sizes, [estimate_seconds(x, 2, x // 7) for x in sizes], color="tab:blue", label="capped (cost model)"
    )
    idle = sorted(IDLE_UNCAPPED.items())
    axes.scatter(
        [x for x, _ in idle], [y for _, y in idle], color="tab:red", label="before the cap, measured idle"
    )
    # rows without a date predate the job's serving-side trims (docs/evaluation.md, "Serving while
    # training") and were mostly taken while other work shared the cores: drawn hollow
    for label, color in (("capped", "tab:blue"), ("uncapped", "tab:red")):
        for dated in (False, True):
            runs = [
                r
                for r in rows
                if r["label"] == label and r["threads"] == args.threads and ("date" in r) == dated
            ]
            if not runs:
                continue
            axes.scatter(
                [r["texts"] for r in runs],
                [r["seconds"] for r in runs],
                facecolors=color if dated else "none",
                edgecolors=color,
                label=f"{label}, measured "
                + ("current job (load shown)" if dated else "earlier job, shared machine"),
            )
            for number, r in enumerate(runs):
                axes.annotate(
                    f"{r['folder']} (load {r['load']:.1f})",
                    (r["texts"], r["seconds"]),
                    textcoords="offset points",
                    xytext=(4, 4 if number % 2 else -10),
                    fontsize=7,
                )
    for y, text in ((90, "90 s goal (demo, 150 intents)"), (300, "5 min goal (any folder)")):
        axes.axhline(y, color="grey", linestyle=":", linewidth=1)
        axes.text(210, y * 1.04, text, fontsize=7, color="grey")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("texts in the folder (names, titles, descriptions, examples)")
    axes.set_ylabel("seconds to the trained model")
    axes.set_title(f"Self-training job (model, 2 cross-fit models, ONNX export), {args.threads} threads")
    axes.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    timing = commands.add_parser("run")
    timing.add_argument("folders", nargs="+")
    timing.add_argument("--runs", type=int, default=2)
    timing.add_argument("--threads", type=int, default=2)
    timing.add_argument("--code", type=Path, help="a checkout whose bot package to run instead")
    timing.add_argument("--label", default="capped")
    timing.add_argument("--results", type=Path, default=RESULTS)
    drawing = commands.add_parser("plot")
    drawing.add_argument("--results", type=Path, default=RESULTS)
    drawing.add_argument("--threads", type=int, default=2)
    drawing.add_argument("--out", type=Path, default=ROOT / "docs" / "plots" / "training_time.png")
    args = parser.parse_args()
    run(args) if args.command == "run" else plot(args)


if __name__ == "__main__":
    main()
