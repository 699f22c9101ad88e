"""In-process routing speed: each encoder backend side by side with a plain baseline, in one run.

    python scripts/bench/bench_route.py [--intents intents] [--messages 300] [--repeats 3] [--threads 16]

Baseline: sentence-transformers `encode` of one message + a FAISS search over the intents' vectors
(same model), i.e. what a minimal semantic router does. For each backend (torch, onnx, onnx-int8) the
full `Engine.route` is timed per message (p50/p95/p99, sequential), then throughput of `route_many`
(one batch) and of `--threads` concurrent callers (dynamic micro-batching). Messages are BANKING77 test
texts, each made unique with a suffix, so no cache can stand in for routing. Medians over `--repeats`
runs; ratios are against the baseline's p50 measured in the same run. Prints figures; asserts nothing.
Each backend also times a reload after one description change (median of 5; the rest of the folder
comes from the embedding cache), as `POST /v1/admin/reload` does it.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import faiss
import numpy as np

from bot.config import Settings
from bot.content.intents import load_intents
from bot.routing.encoders.model_folder import bundled_model_path
from bot.routing.encoders.torch_backend import set_torch_threads
from bot.routing.engine import Engine
from bot.routing.state import intent_texts

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "banking77" / "test.csv"


def messages(count: int) -> list[str]:
    """Distinct customer messages: BANKING77 test texts (or a built-in list) with a unique suffix."""
    if DATA.is_file():
        with DATA.open(newline="") as handle:
            base = [row["text"] for row in csv.DictReader(handle)]
    else:
        base = ["my new card still hasn't come", "how do I top up?", "what exchange rate do you use?"]
    return [f"{base[n % len(base)]} (ref {n})" for n in range(count)]


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    """p50, p95, p99 in milliseconds."""
    values = np.asarray(samples) * 1000
    return (
        float(np.percentile(values, 50)),
        float(np.percentile(values, 95)),
        float(np.percentile(values, 99)),
    )


def bench_baseline(intents_dir: Path, texts: list[str]) -> dict[str, float]:
    """sentence-transformers encode + FAISS search, one message at a time."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    vectors = model.encode(intent_texts(load_intents(intents_dir))[0], normalize_embeddings=True)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.asarray(vectors, dtype=np.float32))
    timings = []
    for text in texts:
        started = time.perf_counter()
        query = model.encode([text], normalize_embeddings=True)
        index.search(np.asarray(query, dtype=np.float32), 5)
        timings.append(time.perf_counter() - started)
    started = time.perf_counter()
    index.search(np.asarray(model.encode(texts, normalize_embeddings=True), dtype=np.float32), 5)
    batch = len(texts) / (time.perf_counter() - started)
    p50, p95, p99 = percentiles(timings)
    return {"p50": p50, "p95": p95, "p99": p99, "batch_per_s": batch, "concurrent_per_s": float("nan")}


def bench_engine(
    backend: str, intents_dir: Path, cache: Path, texts: list[str], threads: int
) -> dict[str, float]:
    """Engine.route per message, route_many as one batch, and concurrent callers."""
    # repeat_cache=0: the same distinct texts are routed three ways below; none may hit a cache
    settings = Settings(
        intents_dir=intents_dir, cache_dir=cache, encoder_backend=backend, torch_threads=1, repeat_cache=0
    )
    engine = Engine(settings)
    engine.load()
    engine.route(texts[0])  # warm-up: first-call allocations are not routing
    timings = []
    for text in texts:
        started = time.perf_counter()
        engine.route(text)
        timings.append(time.perf_counter() - started)
    started = time.perf_counter()
    engine.route_many(texts)
    batch = len(texts) / (time.perf_counter() - started)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(engine.route, texts))
    concurrent = len(texts) / (time.perf_counter() - started)
    p50, p95, p99 = percentiles(timings)
    return {
        "p50": p50,
        "p95": p95,
        "p99": p99,
        "batch_per_s": batch,
        "concurrent_per_s": concurrent,
        "reload_s": reload_seconds(engine, intents_dir, cache),
    }


def reload_seconds(engine: Engine, intents_dir: Path, cache: Path, times: int = 5) -> float:
    """Median time of `Engine.load` after one description changed (a new text each time), as `POST
    /v1/admin/reload` does it: the rest of the folder is in the embedding cache."""
    folder = cache / "reload-intents"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(intents_dir, folder)
    engine.load(folder)  # the copy's own texts are already cached: this one only warms up
    spent = []
    for n in range(times):
        changed = sorted(folder.glob("*.yaml"))[0]
        lines = changed.read_text().splitlines(keepends=True)
        row = next(i for i, line in enumerate(lines) if line.strip().startswith("description:"))
        if lines[row].rstrip().endswith((">", ">-", "|", "|-")):  # a block: its text is on the next line
            row += 1
            at = len(lines[row]) - len(lines[row].lstrip())
        else:
            at = lines[row].index("description:") + len("description: ")
        lines[row] = lines[row][:at] + f"(revision {n}) " + lines[row][at:]
        changed.write_text("".join(lines))
        started = time.perf_counter()
        engine.load(folder)
        spent.append(time.perf_counter() - started)
    return statistics.median(spent)


def main() -> None:
    """Run every variant `--repeats` times, interleaved, and print medians and ratios."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--intents", type=Path, default=Path("intents"))
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    set_torch_threads(1)
    texts = messages(args.messages)
    variants = ["baseline", "torch", "onnx", "onnx-int8"]
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        for repeat in range(args.repeats):
            for variant in variants:  # interleaved, so drift in machine load hits every variant alike
                print(f"run {repeat + 1}/{args.repeats}: {variant}", file=sys.stderr)
                result = (
                    bench_baseline(args.intents, texts)
                    if variant == "baseline"
                    else bench_engine(variant, args.intents, cache, texts, args.threads)
                )
                runs[variant].append(result)
    median = {v: {k: statistics.median(r[k] for r in runs[v]) for k in runs[v][0]} for v in variants}
    base = median["baseline"]["p50"]
    print(
        f"{args.messages} distinct messages, {args.repeats} runs, medians; 1 encoder thread; {os.cpu_count()} cores"
    )
    print(
        f"{'variant':<10} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'p50 vs base':>12} {'batch msg/s':>12} "
        f"{'concurrent msg/s':>17} {'reload s':>9}"
    )
    for variant in variants:
        m = median[variant]
        print(
            f"{variant:<10} {m['p50']:8.2f} {m['p95']:8.2f} {m['p99']:8.2f} {m['p50'] / base:11.2f}x "
            f"{m['batch_per_s']:12.0f} {m['concurrent_per_s']:17.0f} "
            + (f"{m['reload_s']:9.2f}" if "reload_s" in m else f"{'':>9}")
        )


if __name__ == "__main__":
    main()
