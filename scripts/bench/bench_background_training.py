"""Serving while a folder's model trains (#26): time to first answer and to the trained model, and chat
throughput and latency while a training runs against idle, in one run.

    python scripts/bench/bench_background_training.py [--folder NAME=PATH ...] [--rounds 4] [--seconds 15]
        [--clients 16] [--threads 1] [--skip-start] [--skip-load]

Start-up: for each folder (default: the demo bank without its labelled calibration, and the HWU64 folder)
a `bot serve` starts with a cache that holds only the stock model's ONNX export (what any install has
after its first start), and the script records when /healthz first answers, when the first chat is
answered (routed with the stock model and its own self-calibration) and when /readyz reports the
folder's trained model.

Load: one `bot serve` on the demo folder whose model is trained. Rounds alternate, in one run: `idle`
(no training) and `training` (an edit of the folder, reloaded: the new version routes with the stock
model while its model trains in the background, at the lowest CPU priority). Each round is `wrk` for
`--seconds`; the report gives each kind's median requests/s and p99 and their ratios. Between rounds the
original folder is reloaded, which cancels the training (its model is cached).

Needs `wrk` (apt-get install wrk). Timings on a shared 2-core machine are noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_test import drive_wrk, free_port  # noqa: E402

HWU64 = ROOT / "scripts" / "bench" / "hwu64" / "intents"


def demo_folder(into: Path) -> Path:
    """The demo bank's intents without calibration.yaml: a folder that self-trains."""
    shutil.copytree(ROOT / "intents", into)
    (into / "calibration.yaml").unlink(missing_ok=True)
    return into


def stock_cache(into: Path) -> Path:
    """A cache holding the stock model's export and nothing trained."""
    env = {**os.environ, "BOT_CACHE_DIR": str(into), "BOT_SELF_TRAIN": "false"}
    code = "from bot.config import Settings; from bot.routing.engine import Engine; Engine(Settings())"
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return into


class Server:
    """`bot serve` on a folder with self-training on, its own database, stopped on exit."""

    def __init__(self, folder: Path, cache: Path, work: Path, threads: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "BOT_INTENTS_DIR": str(folder),
            "BOT_CACHE_DIR": str(cache),
            "BOT_DATABASE_URL": f"sqlite:///{work / 'bot.db'}",
            "BOT_SELF_TRAIN": "true",
            "BOT_TORCH_THREADS": str(threads),
            "BOT_RATE_LIMIT_PER_IP": "",
            "BOT_API_KEYS": "",
            "BOT_ACCESS_LOG": "false",
            "BOT_LOG_LEVEL": "INFO",
        }
        self.log = (work / "server.log").open("w")
        self.started = time.monotonic()
        command = [sys.executable, "-m", "bot.cli", "serve", "--port", str(self.port)]
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()

    def until(self, check: str, seconds: float = 900) -> float:
        """Seconds from the start until `check` (healthz, chat, trained) first holds."""
        deadline = self.started + seconds
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the server exited"
            try:
                if self._holds(check):
                    return time.monotonic() - self.started
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"{check} did not happen within {seconds:.0f} s")

    def _holds(self, check: str) -> bool:
        if check == "healthz":
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        if check == "chat":
            reply = httpx.post(f"{self.url}/v1/chat", json={"message": "where is my card?"}, timeout=10)
            return reply.status_code == 200
        return bool(self.ready()["model_kind"] == "self-trained")

    def ready(self) -> dict[str, object]:
        answer: dict[str, object] = httpx.get(f"{self.url}/readyz", timeout=5).json()
        return answer

    def reload(self) -> None:
        httpx.post(f"{self.url}/v1/admin/reload", timeout=120).raise_for_status()


def start_up(name: str, folder: Path, stock: Path, work: Path, threads: int) -> None:
    cache = work / f"cache-{name}"
    shutil.copytree(stock, cache)
    with Server(folder, cache, work, threads) as server:
        health = server.until("healthz")
        chat = server.until("chat")
        trained = server.until("trained")
        texts = server.ready()
    print(
        f"{name}: /healthz {health:.1f} s, first answer {chat:.1f} s (stock model), trained model live "
        f"{trained:.0f} s after start ({texts['intents']} intents)",
        flush=True,
    )


def under_load(folder: Path, stock: Path, work: Path, args: argparse.Namespace) -> None:
    cache = work / "cache-load"
    shutil.copytree(stock, cache)
    yaml = sorted(folder.glob("*.yaml"))[0]
    original = yaml.read_text(encoding="utf-8")
    results: dict[str, list[tuple[float, float]]] = {"idle": [], "training": []}
    with Server(folder, cache, work, args.threads) as server:
        server.until("trained")  # the folder's own model, cached: idle rounds train nothing
        for round_ in range(args.rounds):
            for kind in ("idle", "training") if round_ % 2 == 0 else ("training", "idle"):
                if kind == "training":  # a new version: live at once on the stock model, its model trains
                    edited = original.replace("description: ", f"description: (revision {round_}) ", 1)
                    yaml.write_text(edited, encoding="utf-8")
                    server.reload()
                    time.sleep(1)
                    assert server.ready()["training"]["state"] == "running", server.ready()  # type: ignore[index]
                before = server.ready()["training"]
                result = drive_wrk(server.url, args.clients, args.seconds, f"{kind}{round_}", work)
                after = server.ready()["training"]
                results[kind].append((result.rps, result.p99_ms))
                moved = ""
                if kind == "training":
                    moved = (
                        f", training {before['progress']:.2f} -> {after['progress']:.2f} ({after['phase']})"  # type: ignore[index]
                    )
                    yaml.write_text(original, encoding="utf-8")
                    server.reload()  # the trained version again: its model is cached, the training stops
                print(
                    f"round {round_} {kind}: {result.rps:.0f} requests/s, p99 {result.p99_ms:.1f} ms, "
                    f"{result.errors} errors{moved}",
                    flush=True,
                )
    idle_rps = statistics.median(r for r, _ in results["idle"])
    idle_p99 = statistics.median(p for _, p in results["idle"])
    busy_rps = statistics.median(r for r, _ in results["training"])
    busy_p99 = statistics.median(p for _, p in results["training"])
    print(
        f"medians of {args.rounds} rounds each: idle {idle_rps:.0f} requests/s p99 {idle_p99:.1f} ms; "
        f"during a training {busy_rps:.0f} requests/s p99 {busy_p99:.1f} ms; "
        f"ratio requests/s {busy_rps / idle_rps:.2f}, p99 {busy_p99 / idle_p99:.2f}x (goal: at most 2x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", action="append", default=[], help="NAME=PATH of an intents folder")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="BOT_TORCH_THREADS of the server")
    parser.add_argument("--skip-start", action="store_true")
    parser.add_argument("--skip-load", action="store_true")
    args = parser.parse_args()
    if not args.skip_load and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="bench-bg-") as tmp:
        work = Path(tmp)
        stock = stock_cache(work / "stock-cache")
        demo = demo_folder(work / "demo")
        folders = {"demo": demo, "hwu64": HWU64}
        folders.update(dict(item.split("=", 1) for item in args.folder))  # type: ignore[misc]
        if not args.skip_start:
            for name, folder in folders.items():
                run = work / f"start-{name}"
                run.mkdir()
                start_up(name, Path(folder), stock, run, args.threads)
        if not args.skip_load:
            (work / "load").mkdir()
            under_load(demo, stock, work / "load", args)


if __name__ == "__main__":
    main()
