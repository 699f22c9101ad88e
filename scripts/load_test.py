"""HTTP load test of `bot serve` on 127.0.0.1: N concurrent clients for T seconds, bounded, then checks.

    python scripts/load_test.py [--db sqlite|postgresql] [--clients 32] [--seconds 20] [--backend onnx-int8]
                                [--workers 1] [--url http://127.0.0.1:PORT --database-url URL]

Without --url it starts `bot serve` itself on a free localhost port with a fresh database (a temporary
SQLite file, or a temporary PostgreSQL database on 127.0.0.1:5432 that is dropped afterwards), waits for
/healthz, drives it, and stops it. Every message is distinct (BANKING77 test texts with a unique suffix),
so no cache stands in for routing. Prints requests/s, p50/p95/p99 latency, errors, and whether the stored
decisions equal the successful requests. Only loopback addresses are contacted; the run stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "banking77" / "test.csv"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fresh_database(kind: str, folder: Path) -> Iterator[str]:
    """A new empty database URL, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'load.db'}"
        return
    name = f"bot_load_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def server(database_url: str, args: argparse.Namespace, folder: Path) -> Iterator[str]:
    """`bot serve` in a subprocess on a free localhost port, stopped afterwards."""
    port = free_port()
    env = {
        **os.environ,
        "BOT_DATABASE_URL": database_url,
        "BOT_ENCODER_BACKEND": args.backend,
        "BOT_RATE_LIMIT_PER_IP": "",  # one load generator on one address is not abuse
        "BOT_RATE_LIMIT_PER_KEY": "",
        "BOT_API_KEYS": "",
        "HF_HUB_OFFLINE": "1",
    }
    command = [sys.executable, "-m", "bot.cli", "serve", "--port", str(port), "--workers", str(args.workers)]
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"bot serve exited: {(folder / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise SystemExit("bot serve did not start within 180 s")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def messages() -> list[str]:
    if DATA.is_file():
        with DATA.open(newline="") as handle:
            return [row["text"] for row in csv.DictReader(handle)]
    return ["my new card still hasn't come", "how do I top up?", "what exchange rate do you use?"]


async def drive(url: str, clients: int, seconds: float) -> tuple[list[float], int, int]:
    """`clients` loops posting distinct messages until `seconds` pass; returns latencies, ok, errors."""
    base = messages()
    counter = iter(range(10**9))
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.monotonic() < stop_at:
            n = next(counter)
            body = {"message": f"{base[n % len(base)]} #{n}"}
            started = time.perf_counter()
            try:
                response = await http.post(f"{url}/v1/chat", json=body)
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1
            except httpx.HTTPError:
                errors += 1

    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return latencies, len(latencies), errors


def main() -> None:
    """Run the load and print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--backend", default="onnx-int8", choices=["torch", "onnx", "onnx-int8"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--url", help="an already running server (then --database-url checks the rows)")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    if not 1 <= args.clients <= 512 or not 0 < args.seconds <= 600:
        raise SystemExit("keep the run bounded: 1-512 clients, at most 600 s")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.url:
            run(args, args.url, args.database_url)
            return
        with fresh_database(args.db, folder) as database_url, server(database_url, args, folder) as url:
            run(args, url, database_url)


def run(args: argparse.Namespace, url: str, database_url: str | None) -> None:
    before = count_decisions(database_url)
    if args.warmup:
        asyncio.run(drive(url, args.clients, args.warmup))
    warm = count_decisions(database_url)
    started = time.perf_counter()
    latencies, ok, errors = asyncio.run(drive(url, args.clients, args.seconds))
    elapsed = time.perf_counter() - started
    time.sleep(1.0)  # let any queued log writes land before counting
    after = count_decisions(database_url)
    ms = np.asarray(latencies) * 1000 if latencies else np.zeros(1)
    print(
        f"target {url} ({args.db}, backend {args.backend}, {args.workers} worker(s)), {args.clients} clients, {elapsed:.1f} s"
    )
    print(f"requests/s {ok / elapsed:.0f}   ok {ok}   errors {errors}")
    print(
        f"latency ms p50 {np.percentile(ms, 50):.1f}   p95 {np.percentile(ms, 95):.1f}   p99 {np.percentile(ms, 99):.1f}"
    )
    if after is not None and warm is not None and before is not None:
        stored = after - warm
        verdict = "equal" if stored == ok else "MISMATCH"
        print(f"stored decisions {stored} vs successful requests {ok}: {verdict}")


def count_decisions(database_url: str | None) -> int | None:
    if not database_url:
        return None
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM decision")).scalar_one())
    except Exception:
        return None
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
