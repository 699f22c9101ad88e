"""HTTP load test of `bot serve` on 127.0.0.1: N concurrent clients for T seconds, bounded, then checks.

    python scripts/load_test.py [--db sqlite|postgresql] [--clients 32] [--seconds 20] [--runs 3]
                                [--backend onnx-int8] [--workers 1] [--client wrk|httpx]
                                [--url http://127.0.0.1:PORT --database-url URL]

Without --url it starts `bot serve` itself on a free localhost port with a fresh database (a temporary
SQLite file, or a temporary PostgreSQL database on 127.0.0.1:5432 that is dropped afterwards), waits for
/healthz, drives it, and stops it. Every message is distinct (BANKING77 test texts with a unique suffix),
so no cache stands in for routing. Each client sends its next message as soon as the last is answered.
Prints requests/s, p50/p95/p99 latency, errors, and whether the stored decisions equal the successful
requests, for each run and the median over runs. Only loopback addresses are contacted; it stops by itself.

The load generator shares the machine with the server, so its own CPU counts against the figures: `wrk`
(Debian package `wrk`, written in C) is used when installed, else an httpx client in Python, which on 2
cores takes a large share of the CPU itself.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import bindparam, create_engine, text

from bot.store.db import scratch_postgres

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
    with scratch_postgres(PG_ADMIN, "bot_load") as url:
        yield url


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
        if args.workers == 1:  # the server's resident memory after the load (its own process only)
            status = Path(f"/proc/{process.pid}/status")
            if status.is_file():
                rss = next(x for x in status.read_text().splitlines() if x.startswith("VmRSS"))
                print(f"server resident memory after the load: {int(rss.split()[1]) // 1024} MB")
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


@dataclass(frozen=True)
class Result:
    """One measured run."""

    seconds: float
    ok: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    stored: int | None = None
    acknowledged: list[str] | None = None  # decision ids in the 200 replies ("none" if not stored)
    missing: int | None = None  # acknowledged decisions not found in the database

    @property
    def rps(self) -> float:
        return self.ok / self.seconds


async def drive_httpx(url: str, clients: int, seconds: float, tag: str) -> Result:
    """`clients` asyncio loops posting distinct messages until `seconds` pass."""
    base = messages()
    counter = iter(range(10**9))
    latencies: list[float] = []
    acknowledged: list[str] = []
    errors = 0
    stop_at = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.monotonic() < stop_at:
            n = next(counter)
            body = {"message": f"{base[n % len(base)]} #{tag}-{n}"}
            started = time.perf_counter()
            try:
                response = await http.post(f"{url}/v1/chat", json=body)
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                    acknowledged.append(str(response.json().get("decision_id") or "none"))
                else:
                    errors += 1
            except httpx.HTTPError:
                errors += 1

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000 if latencies else np.zeros(1)
    p50, p95, p99 = (float(np.percentile(ms, q)) for q in (50, 95, 99))
    return Result(elapsed, len(latencies), errors, p50, p95, p99, acknowledged=acknowledged)


# wrk runs this Lua in each of its threads: distinct messages (thread id + counter), JSON-escaped texts,
# and a summary line the script parses. Latencies are in microseconds.
WRK_SCRIPT = """
local texts = {}
for line in io.lines(os.getenv("LOAD_TEXTS")) do texts[#texts + 1] = line end
local threads, thread_id, counter = {}, 0, 0
function setup(thread)
  thread_id = thread_id + 1
  thread:set("id", thread_id)
  table.insert(threads, thread)
end
function request()
  counter = counter + 1
  local text = texts[(counter * 7 + id) % #texts + 1]
  local body = '{"message": "' .. text .. ' #' .. os.getenv("LOAD_TAG") .. '-' .. id .. '-' .. counter .. '"}'
  return wrk.format("POST", "/v1/chat", {["Content-Type"] = "application/json"}, body)
end
local acknowledged = nil
function response(status, headers, body)
  if status == 200 then  -- remember every decision id the server acknowledged, to look up afterwards
    if acknowledged == nil then
      acknowledged = io.open(os.getenv("LOAD_IDS") .. "-" .. id, "a")
      acknowledged:setvbuf("line")
    end
    acknowledged:write((string.match(body, '"decision_id":(%d+)') or "none") .. "\\n")
  end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d %d %d\\n", summary.duration, summary.requests,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def drive_wrk(url: str, clients: int, seconds: float, tag: str, folder: Path) -> Result:
    """`wrk` with one thread and `clients` connections for `seconds`, posting distinct messages."""
    texts = folder / "texts.txt"
    if not texts.exists():  # one JSON-escaped text per line, spliced into the body by the Lua script
        texts.write_text("\n".join(json.dumps(t)[1:-1] for t in messages()) + "\n")
        (folder / "chat.lua").write_text(WRK_SCRIPT)
    command = ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "30s"]
    command += ["-s", str(folder / "chat.lua"), url]
    env = {**os.environ, "LOAD_TEXTS": str(texts), "LOAD_TAG": tag, "LOAD_IDS": str(folder / f"ids-{tag}")}
    finished = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    output = finished.stdout + finished.stderr
    line = next((x for x in output.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no result:\n{output}")
    duration, requests, connect, read, write, status, timeout, p50, p95, p99 = map(int, line.split()[1:])
    errors = connect + read + write + status + timeout
    # wrk counts every completed response in `requests`, non-2xx ones among them (`status`)
    acknowledged = [line for path in folder.glob(f"ids-{tag}-*") for line in path.read_text().split()]
    return Result(
        duration / 1e6,
        requests - status,
        errors,
        p50 / 1000,
        p95 / 1000,
        p99 / 1000,
        acknowledged=acknowledged,
    )


def main() -> None:
    """Run the load and print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3, help="measured runs; the median is reported")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--backend", default="onnx-int8", choices=["torch", "onnx", "onnx-int8"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--client", choices=["wrk", "httpx"], default="wrk" if shutil.which("wrk") else "httpx"
    )
    parser.add_argument("--url", help="an already running server (then --database-url checks the rows)")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    if not 1 <= args.clients <= 512 or not 0 < args.seconds <= 600 or not 1 <= args.runs <= 20:
        raise SystemExit("keep the run bounded: 1-512 clients, at most 600 s, 1-20 runs")
    if args.client == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk); use --client httpx")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.url:
            run(args, args.url, args.database_url, folder)
            return
        with fresh_database(args.db, folder) as database_url, server(database_url, args, folder) as url:
            run(args, url, database_url, folder)


def drive(args: argparse.Namespace, url: str, seconds: float, tag: str, folder: Path) -> Result:
    if args.client == "wrk":
        return drive_wrk(url, args.clients, seconds, tag, folder)
    return asyncio.run(drive_httpx(url, args.clients, seconds, tag))


def run(args: argparse.Namespace, url: str, database_url: str | None, folder: Path) -> None:
    print(
        f"target {url} ({args.db}, backend {args.backend}, {args.workers} worker(s)), "
        f"{args.clients} clients, {args.client}, {args.runs} x {args.seconds:.0f} s"
    )
    run_tag = uuid.uuid4().hex[:6]
    if args.warmup:
        drive(args, url, args.warmup, f"{run_tag}w", folder)
    results = []
    for number in range(1, args.runs + 1):
        before = count_decisions(database_url)
        result = drive(args, url, args.seconds, f"{run_tag}r{number}", folder)
        time.sleep(0.5)  # requests still in flight when the client stopped are answered and stored too
        after = count_decisions(database_url)
        stored = None if before is None or after is None else after - before
        missing = missing_decisions(database_url, result.acknowledged or [])
        result = dataclasses.replace(result, stored=stored, missing=missing)
        results.append(result)
        print(f"run {number}: {describe(result)}")

    def median(values: list[float]) -> float:
        return float(statistics.median(values))

    print(
        f"median of {len(results)}: requests/s {median([r.rps for r in results]):.0f}   "
        f"errors {median([r.errors for r in results]):.0f}   latency ms "
        f"p50 {median([r.p50_ms for r in results]):.1f}  p95 {median([r.p95_ms for r in results]):.1f}  "
        f"p99 {median([r.p99_ms for r in results]):.1f}"
    )
    if all(r.missing is not None for r in results):
        lost = sum(r.missing or 0 for r in results)
        total = sum(r.ok for r in results)
        verdict = "none lost" if lost == 0 else f"{lost} LOST"
        print(f"decisions of successful requests found in the database: {total - lost} / {total}: {verdict}")


def describe(result: Result) -> str:
    stored = "" if result.stored is None else f"   stored {result.stored} (incl. in flight at the end)"
    return (
        f"requests/s {result.rps:.0f}   ok {result.ok}   errors {result.errors}   "
        f"latency ms p50 {result.p50_ms:.1f}  p95 {result.p95_ms:.1f}  p99 {result.p99_ms:.1f}{stored}"
    )


def missing_decisions(database_url: str | None, acknowledged: list[str]) -> int | None:
    """How many acknowledged decision ids are not in the database (a reply without one counts)."""
    if not database_url:
        return None
    ids = [int(i) for i in acknowledged if i.isdigit()]
    engine = create_engine(database_url)
    found = 0
    try:
        with engine.connect() as connection:
            for start in range(0, len(ids), 5000):
                chunk = ids[start : start + 5000]
                query = text("SELECT count(*) FROM decision WHERE id IN :ids").bindparams(
                    bindparam("ids", expanding=True)
                )
                found += int(connection.execute(query, {"ids": chunk}).scalar_one())
    finally:
        engine.dispose()
    return len(acknowledged) - found


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
