"""What a shadow run costs live traffic: /v1/chat throughput and latency with and without one, in one run.

    python scripts/bench/bench_shadow.py [--clients 16] [--seconds 15] [--rounds 3] [--backend onnx-int8]

Starts `bot serve` on the shipped intents (a temporary SQLite database and cache folder, a free localhost
port), then alternates rounds without and with a shadow run (POST /v1/admin/shadow with the shipped
intents, one description changed; DELETE between rounds), so machine drift hits both alike. Each
round: N concurrent clients, each sending its next distinct message (BANKING77 test texts with a
unique suffix) as soon as the last is answered. Prints requests/s and p50/p99 per round, the medians,
and how many messages the shadow decided and dropped. The load generator (Python, httpx) shares the
machine, so the absolute figures are lower than scripts/bench/load_test.py's with wrk; the ratio is the point.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
BANKING77 = ROOT.parent / "shared" / "data" / "banking77" / "test.csv"
OLD = "whether it was sent or how to track it."
NEW = "whether it was sent, how to track it, or how many days the post takes."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def messages() -> list[str]:
    if not BANKING77.is_file():
        sys.exit(f"{BANKING77} is absent: this benchmark reads BANKING77 from the project's shared folder")
    with BANKING77.open(encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


async def load(url: str, texts: list[str], clients: int, seconds: float) -> tuple[float, float, float, int]:
    """requests/s, p50 ms, p99 ms, errors for `clients` closed-loop clients over `seconds`."""
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def client(number: int, http: httpx.AsyncClient) -> None:
        nonlocal errors
        sent = 0
        while time.monotonic() < deadline:
            text = f"{texts[(number * 997 + sent) % len(texts)]} ({uuid.uuid4().hex[:6]})"
            sent += 1
            started = time.perf_counter()
            try:
                response = await http.post(f"{url}/v1/chat", json={"message": text})
                if response.status_code != 200:
                    errors += 1
                    continue
            except httpx.HTTPError:
                errors += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    began = time.monotonic()
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(n, http) for n in range(clients)))
    elapsed = time.monotonic() - began
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    return len(latencies) / elapsed, statistics.median(latencies) if latencies else 0.0, p99, errors


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", default="onnx-int8", choices=["torch", "onnx", "onnx-int8"])
    args = parser.parse_args()
    texts = messages()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        candidate = work / "candidate"
        shutil.copytree(ROOT / "intents", candidate)
        cards = candidate / "cards.yaml"
        if OLD not in cards.read_text(encoding="utf-8"):
            sys.exit(f"{cards}: the card_arrival description this benchmark changes is not there any more")
        cards.write_text(cards.read_text(encoding="utf-8").replace(OLD, NEW), encoding="utf-8")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "BOT_DATABASE_URL": f"sqlite:///{work / 'bench.db'}",
            "BOT_INTENTS_DIR": str(ROOT / "intents"),
            "BOT_CACHE_DIR": str(Path(os.environ.get("BOT_CACHE_DIR", ROOT / ".bot_cache"))),
            "BOT_ENCODER_BACKEND": args.backend,
            "BOT_API_KEYS": "",
            "BOT_RATE_LIMIT_PER_IP": "",
            "BOT_RATE_LIMIT_PER_KEY": "",
            "BOT_LOG_LEVEL": "WARNING",
        }
        log = (work / "serve.log").open("w")
        server = subprocess.Popen(
            [sys.executable, "-c", "from bot.cli import main; main()", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 300
            while True:
                if server.poll() is not None:
                    sys.exit((work / "serve.log").read_text())
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    sys.exit("bot serve did not start within 300 s")
                time.sleep(0.5)
            asyncio.run(load(url, texts, args.clients, 3))  # warm-up, not counted
            results: dict[str, list[tuple[float, float, float, int]]] = {"without": [], "with shadow": []}
            decided = dropped = 0
            for round_ in range(args.rounds):
                for label in ("without", "with shadow"):
                    if label == "with shadow":
                        started = httpx.post(
                            f"{url}/v1/admin/shadow", json={"intents_dir": str(candidate)}, timeout=300
                        )
                        started.raise_for_status()
                    found = asyncio.run(load(url, texts, args.clients, args.seconds))
                    results[label].append(found)
                    if label == "with shadow":
                        stopped = httpx.delete(f"{url}/v1/admin/shadow", timeout=300).json()["run"]
                        decided, dropped = decided + stopped["decided"], dropped + stopped["dropped"]
                    rps, p50, p99, errors = found
                    print(
                        f"round {round_ + 1} {label:12s}: {rps:6.1f} req/s  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"
                        f"  errors {errors}",
                        flush=True,
                    )
            medians = {k: [statistics.median(r[i] for r in v) for i in range(3)] for k, v in results.items()}
            base, shadow = medians["without"], medians["with shadow"]
            print(
                f"median without: {base[0]:.1f} req/s, p50 {base[1]:.1f} ms, p99 {base[2]:.1f} ms; "
                f"with shadow: {shadow[0]:.1f} req/s ({shadow[0] / base[0] - 1:+.1%}), p50 {shadow[1]:.1f} ms, "
                f"p99 {shadow[2]:.1f} ms; the shadow decided {decided} messages and dropped {dropped} "
                f"({args.backend}, {args.clients} clients, {args.seconds:.0f} s rounds)"
            )
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()


if __name__ == "__main__":
    main()
