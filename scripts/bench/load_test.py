"""HTTP load test of `bot serve` on 127.0.0.1: N concurrent clients for T seconds, bounded, then checks.

    python scripts/bench/load_test.py [--db sqlite|postgresql] [--clients 32] [--seconds 20] [--runs 3]
                                      [--peer] [--limit] [--cold] [--repeats 0.3]
                                      [--backend onnx-int8] [--workers 1] [--client wrk|httpx]
                                      [--url http://127.0.0.1:PORT --database-url URL]
                                      [--baseline /tmp/before] [--handoffs 0.2]

Without --url it starts `bot serve` itself, as the README's first command does (its default backend,
unless --backend), on a free localhost port with a fresh database (a temporary SQLite file, or a
temporary PostgreSQL database on 127.0.0.1:5432 that is dropped afterwards), waits for /healthz, drives
it, and stops it. Every message is distinct (BANKING77 test texts with a unique suffix), so no cache
stands in for routing. Each client sends its next message as soon as the last is answered. Prints
requests/s, p50/p95/p99 latency, errors, and whether the stored decisions equal the successful
requests, for each run and the median over runs. Only loopback addresses are contacted; it stops by itself.

In the same run, interleaved with bot's runs so machine drift hits all alike:
  --peer   the plain server a user would write (scripts/bench/peer_server.py: sync FastAPI endpoint,
           sentence-transformers encode on one torch thread, FAISS top-1, one SQLModel commit per
           request) on its own fresh database, driven the same way: THE COMPARISON, not the product;
  --limit  the encoder alone: bot's encoder (onnx-int8), one distinct text per call from 2 threads, no
           HTTP, no storage: what the 2 cores can encode at most;
  --limit-per-tensor  with --limit, also the former per-tensor int8 encoder alone (one text per call,
           as the issue first measured the limit), so the ratio can be read against both;
  --baseline DIR  bot served from another checkout too (e.g. `git worktree add --detach /tmp/before
           HEAD~1`), with this checkout's intents folder and cache, on its own fresh database: a code change's
           before/after in one run (rounds alternate A B, B A so neither always goes first);
then each ratio (bot vs limit, bot vs peer, peer's p99 vs bot's, bot vs before).
  --cold     start bot with an empty cache folder, so its resident memory includes a first start
             (the ONNX export, which runs in a child process);
  --repeats R  a share R of messages drawn Zipf-like from 100 common texts ("hi", "thanks", the top
             questions) instead of distinct ones: the repeated-text cache's figure, reported beside the
             all-distinct one, never instead of it;
  --handoffs H  a share H of messages asks for a person ("I want to talk to a person #<unique>"), so each
             opens a ticket and writes a ticket.opened webhook event (wrk client).

scripts/bench/bench_webhook_load.py reuses this module to compare one checkout under two environments
(webhook subscriptions or /metrics on and off).

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
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import bindparam, create_engine, text

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # scratch_postgres is the tests' helper
from tests.scratch_postgres import scratch_postgres  # noqa: E402

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
def server(
    database_url: str,
    args: argparse.Namespace,
    folder: Path,
    *,
    peer: bool = False,
    checkout: Path | None = None,
    name: str | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[tuple[str, int]]:
    """`bot serve` (or, with `peer`, the plain comparison server; with `checkout`, bot from that checkout)
    in a subprocess on a free localhost port, stopped afterwards; prints its resident memory after the load.
    `name` labels its log and lines (two bots of one checkout need two), `extra_env` is set last."""
    port = free_port()
    env = {
        **os.environ,
        "BOT_DATABASE_URL": database_url,
        "BOT_RATE_LIMIT_PER_IP": "",  # one load generator on one address is not abuse
        "BOT_RATE_LIMIT_PER_KEY": "",
        "BOT_API_KEYS": "",
        "HF_HUB_OFFLINE": "1",
        "PEER_DATABASE_URL": database_url,
    }
    if args.backend:
        env["BOT_ENCODER_BACKEND"] = args.backend
    if args.cold and not peer:  # an empty cache: the first start exports the model (in a child process)
        env["BOT_CACHE_DIR"] = str(folder / "cold-cache")
    if checkout is not None:  # only the code differs: this checkout's intents folder and cache
        from bot.config import Settings

        here = Settings()
        env["PYTHONPATH"] = str(checkout)
        env["BOT_INTENTS_DIR"] = str(absolute(here.intents_dir))
        if not args.cold:
            env["BOT_CACHE_DIR"] = str(absolute(here.cache_dir))
    if peer:
        command = [sys.executable, "-m", "uvicorn", "scripts.bench.peer_server:app", "--port", str(port)]
        command += ["--log-level", "warning"]
    else:
        command = [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)]
        command += ["--workers", str(args.workers)]
    env.update(extra_env or {})
    name = name or ("peer" if peer else "before" if checkout is not None else "bot")
    log = (folder / f"{name}-server.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=checkout or ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(
                    f"{name} server exited: {(folder / f'{name}-server.log').read_text()[-2000:]}"
                )
            try:  # bot serve listens while it loads: /readyz says when it routes (older checkouts: /healthz)
                ready = httpx.get(f"{url}/readyz", timeout=1).status_code
                if ready == 200 or (
                    ready == 404 and httpx.get(f"{url}/healthz", timeout=1).status_code == 200
                ):
                    break
                time.sleep(0.3)
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise SystemExit(f"{name} server did not start within 300 s")
        yield url, process.pid
        if args.workers == 1 or peer:  # the server's resident memory after the load (its own process)
            status = Path(f"/proc/{process.pid}/status")
            if status.is_file():
                rss = next(x for x in status.read_text().splitlines() if x.startswith("VmRSS"))
                first = " (first start included: empty cache)" if args.cold and not peer else ""
                print(
                    f"{name} server resident memory after the load: {int(rss.split()[1]) // 1024} MB{first}"
                )
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def absolute(path: Path) -> Path:
    """A path as `bot serve` started here reads it (relative ones from this checkout)."""
    return path if path.is_absolute() else ROOT / path


def common_texts() -> list[str]:
    """100 texts real traffic repeats, most frequent first: greetings, thanks, asking for a person, then
    BANKING77 test questions standing in for a bank's top questions."""
    chat = ["hi", "thanks", "talk to a human", "hello", "thank you", "ok", "can I speak to an agent"]
    return chat + [text for text in dict.fromkeys(messages()) if text not in chat][: 100 - len(chat)]


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
    cpu_ms: float | None = None  # the server process's CPU time per stored decision

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
  math.randomseed(42)
  thread_id = thread_id + 1
  thread:set("id", thread_id)
  table.insert(threads, thread)
end
-- --repeats: a share of messages is drawn Zipf-like (weight 1/rank) from the common texts, verbatim
local common, cumulative = {}, {}
local repeat_share = tonumber(os.getenv("LOAD_REPEATS") or "0")
if repeat_share > 0 then
  local total = 0
  for line in io.lines(os.getenv("LOAD_COMMON")) do
    common[#common + 1] = line
    total = total + 1 / #common
    cumulative[#common] = total
  end
  for rank = 1, #common do cumulative[rank] = cumulative[rank] / total end
end
local function zipf_text()
  local u = math.random()
  for rank = 1, #common do if u <= cumulative[rank] then return common[rank] end end
  return common[#common]
end
-- --handoffs: a share of messages asks for a person (distinct texts: each opens a ticket)
local handoff_share = tonumber(os.getenv("LOAD_HANDOFFS") or "0")
function request()
  counter = counter + 1
  local body
  if handoff_share > 0 and math.random() < handoff_share then
    body = '{"message": "I want to talk to a person #' .. os.getenv("LOAD_TAG") .. '-' .. id .. '-' .. counter .. '"}'
  elseif repeat_share > 0 and math.random() < repeat_share then
    body = '{"message": "' .. zipf_text() .. '"}'
  else
    local text = texts[(counter * 7 + id) % #texts + 1]
    body = '{"message": "' .. text .. ' #' .. os.getenv("LOAD_TAG") .. '-' .. id .. '-' .. counter .. '"}'
  end
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


def drive_wrk(
    url: str,
    clients: int,
    seconds: float,
    tag: str,
    folder: Path,
    repeats: float = 0.0,
    handoffs: float = 0.0,
) -> Result:
    """`wrk` with one thread and `clients` connections for `seconds`, posting distinct messages (and a
    share `repeats` of common ones, a share `handoffs` asking for a person)."""
    texts = folder / "texts.txt"
    common = folder / "common.txt"
    if not texts.exists():  # one JSON-escaped text per line, spliced into the body by the Lua script
        texts.write_text("\n".join(json.dumps(t)[1:-1] for t in messages()) + "\n")
        common.write_text("\n".join(json.dumps(t)[1:-1] for t in common_texts()) + "\n")
        (folder / "chat.lua").write_text(WRK_SCRIPT)
    command = ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "30s"]
    command += ["-s", str(folder / "chat.lua"), url]
    env = {
        **os.environ,
        "LOAD_TEXTS": str(texts),
        "LOAD_COMMON": str(common),
        "LOAD_REPEATS": str(repeats),
        "LOAD_HANDOFFS": str(handoffs),
        "LOAD_TAG": tag,
        "LOAD_IDS": str(folder / f"ids-{tag}"),
    }
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
    parser.add_argument(
        "--backend", choices=["torch", "onnx", "onnx-int8"], help="default: bot serve's own default"
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--client", choices=["wrk", "httpx"], default="wrk" if shutil.which("wrk") else "httpx"
    )
    parser.add_argument("--peer", action="store_true", help="also drive the plain comparison server")
    parser.add_argument("--limit", action="store_true", help="also measure the encoder alone")
    parser.add_argument(
        "--limit-per-tensor",
        action="store_true",
        help="with --limit, also measure the former per-tensor int8 encoder alone (the issue's first limit)",
    )
    parser.add_argument("--cold", action="store_true", help="start bot with an empty cache folder")
    parser.add_argument("--repeats", type=float, default=0.0, help="share of Zipf-drawn common texts")
    parser.add_argument(
        "--handoffs", type=float, default=0.0, help="share of messages asking for a person (a ticket each)"
    )
    parser.add_argument("--url", help="an already running server (then --database-url checks the rows)")
    parser.add_argument("--database-url")
    parser.add_argument(
        "--baseline", type=Path, help="also serve bot from this checkout (a worktree of an earlier commit)"
    )
    args = parser.parse_args()
    if not 1 <= args.clients <= 512 or not 0 < args.seconds <= 600 or not 1 <= args.runs <= 20:
        raise SystemExit("keep the run bounded: 1-512 clients, at most 600 s, 1-20 runs")
    if not 0 <= args.repeats <= 0.9:
        raise SystemExit("--repeats is a share of messages: 0 to 0.9")
    if args.limit_per_tensor and not args.limit:
        raise SystemExit("--limit-per-tensor measures beside --limit; give both")
    if args.client == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk); use --client httpx")
    if not 0 <= args.handoffs <= 1:
        raise SystemExit("--handoffs is a share of messages: 0 to 1")
    if (args.repeats or args.handoffs) and args.client != "wrk":
        raise SystemExit("--repeats and --handoffs need the wrk client")
    if args.baseline is not None and not (args.baseline / "bot" / "cli").is_dir():
        raise SystemExit(f"--baseline {args.baseline} is not a checkout of bot (no bot/cli there)")

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        if args.url:
            bot = Target("bot", args.url, args.database_url, None)
        else:
            database_url = stack.enter_context(fresh_database(args.db, folder))
            bot_url, bot_pid = stack.enter_context(server(database_url, args, folder))
            bot = Target("bot", bot_url, database_url, bot_pid)
        peer = None
        if args.peer:
            peer_folder = folder / "peer"
            peer_folder.mkdir()
            peer_database = stack.enter_context(fresh_database(args.db, peer_folder))
            peer_url, peer_pid = stack.enter_context(server(peer_database, args, peer_folder, peer=True))
            peer = Target("peer", peer_url, peer_database, peer_pid)
        before = None
        if args.baseline is not None:
            before_folder = folder / "before"
            before_folder.mkdir()
            before_database = stack.enter_context(fresh_database(args.db, before_folder))
            before_url, before_pid = stack.enter_context(
                server(before_database, args, before_folder, checkout=args.baseline.resolve())
            )
            before = Target("before", before_url, before_database, before_pid)
        limits = [EncoderLimit()] if args.limit else []
        if args.limit and args.limit_per_tensor:
            limits.append(EncoderLimit(per_tensor=True))
        compare(args, bot, peer, limits, folder, before=before)


@dataclass(frozen=True)
class Target:
    """A server under test and the database it stores decisions in."""

    name: str
    url: str
    database_url: str | None
    pid: int | None  # the server process (for CPU time per request), when started here


class EncoderLimit:
    """The encoder alone: bot's int8 encoder, one distinct text per call from 2 threads (the cores).

    With `per_tensor`, the int8 encoder as it was before activations were scaled per row: ONNX Runtime's
    `quantize_dynamic` of the same fp32 export (made here once if missing), so the ratio can also be read
    against the limit the issue first measured, not only against today's encoder run one text per call.
    """

    def __init__(self, *, per_tensor: bool = False) -> None:
        from bot.config import Settings
        from bot.routing.encoders import make_encoder

        cache = Settings().cache_dir
        cache = cache if cache.is_absolute() else ROOT / cache
        self.encoder = make_encoder("bundled", backend="onnx-int8", threads=1, cache_dir=cache)
        self.base = messages()
        if per_tensor:
            self._use_per_tensor(cache)

    def _use_per_tensor(self, cache: Path) -> None:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic

        from bot.routing.encoders.model_folder import bundled_model_path, model_fingerprint

        inner: Any = getattr(self.encoder, "inner", self.encoder)  # under the embedding cache wrapper, if any
        # the folder the encoder exported to (`OnnxEncoder`: cache/onnx/<model id with / and @ replaced>)
        model_id = model_fingerprint(bundled_model_path())
        fp32 = cache / "onnx" / model_id.replace("/", "_").replace("@", "-") / "model.onnx"
        int8 = fp32.with_name("model_int8.onnx")
        if not int8.is_file():  # written aside and renamed: an interrupted run leaves no truncated model
            partial = int8.with_suffix(f".partial-{os.getpid()}")
            quantize_dynamic(str(fp32), str(partial), weight_type=QuantType.QInt8, per_channel=True)
            partial.replace(int8)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        inner._session = ort.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"])
        inner._group_size = 1

    def measure(self, seconds: float, tag: str, threads: int = 2) -> float:
        """Texts per second over `seconds`."""
        counter = iter(range(10**9))
        stop_at = time.monotonic() + seconds
        done = [0] * threads

        def work(slot: int) -> None:
            while time.monotonic() < stop_at:
                n = next(counter)
                self.encoder.encode([f"{self.base[n % len(self.base)]} #{tag}-{n}"])
                done[slot] += 1

        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, range(threads)))
        return sum(done) / (time.perf_counter() - started)


def drive(args: argparse.Namespace, url: str, seconds: float, tag: str, folder: Path) -> Result:
    if args.client == "wrk":
        return drive_wrk(url, args.clients, seconds, tag, folder, args.repeats, args.handoffs)
    return asyncio.run(drive_httpx(url, args.clients, seconds, tag))


def measure(args: argparse.Namespace, target: Target, seconds: float, tag: str, folder: Path) -> Result:
    """One run against one server, with its stored decisions checked."""
    before = count_decisions(target.database_url)
    cpu_before = process_cpu_seconds(target.pid)
    result = drive(args, target.url, seconds, tag, folder)
    time.sleep(0.5)  # requests still in flight when the client stopped are answered and stored too
    cpu_after = process_cpu_seconds(target.pid)
    after = count_decisions(target.database_url)
    stored = None if before is None or after is None else after - before
    missing = missing_decisions(target.database_url, result.acknowledged or [])
    cpu_ms = None
    if cpu_before is not None and cpu_after is not None and stored:
        cpu_ms = (cpu_after - cpu_before) * 1000 / stored
    return dataclasses.replace(result, stored=stored, missing=missing, cpu_ms=cpu_ms)


def process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time a process (all its threads) has used: robust to what else runs, unlike
    wall-clock rates."""
    stat = Path(f"/proc/{pid}/stat")
    if pid is None or not stat.is_file():
        return None
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def compare(
    args: argparse.Namespace,
    bot: Target,
    peer: Target | None,
    encoders: list[EncoderLimit],
    folder: Path,
    *,
    before: Target | None = None,
) -> None:
    """Interleaved runs of bot, the baseline checkout, the peer and the encoder limit; medians and ratios."""
    mix = f", {args.repeats:.0%} repeated texts (Zipf)" if args.repeats else ", every message distinct"
    print(
        f"target {bot.url} ({args.db}, backend {args.backend or 'default'}, {args.workers} worker(s)), "
        f"{args.clients} clients, {args.client}, {args.runs} x {args.seconds:.0f} s{mix}"
    )
    run_tag = uuid.uuid4().hex[:6]
    targets = [t for t in (bot, before, peer) if t is not None]
    if args.warmup:
        for target in targets:
            drive(args, target.url, args.warmup, f"{run_tag}{target.name}w", folder)
    results: dict[str, list[Result]] = {t.name: [] for t in targets}
    limits: list[float] = []
    former: list[float] = []  # the per-tensor int8 encoder alone, with --limit-per-tensor
    for number in range(1, args.runs + 1):
        for target in targets if number % 2 else targets[::-1]:  # A B, B A, ...: neither always first
            result = measure(args, target, args.seconds, f"{run_tag}{target.name}{number}", folder)
            results[target.name].append(result)
            print(f"run {number} {target.name}: {describe(result)}")
        if encoders:
            limits.append(encoders[0].measure(args.seconds, f"{run_tag}l{number}"))
            print(f"run {number} encoder alone: {limits[-1]:.0f} texts/s")
        if len(encoders) > 1:
            former.append(encoders[1].measure(args.seconds, f"{run_tag}t{number}"))
            print(f"run {number} former per-tensor int8 encoder alone: {former[-1]:.0f} texts/s")

    def median(values: list[float]) -> float:
        return float(statistics.median(values))

    for target in targets:
        runs = results[target.name]
        print(
            f"{target.name}: median of {len(runs)}: requests/s {median([r.rps for r in runs]):.0f}   "
            f"errors {median([r.errors for r in runs]):.0f}   latency ms "
            f"p50 {median([r.p50_ms for r in runs]):.1f}  p95 {median([r.p95_ms for r in runs]):.1f}  "
            f"p99 {median([r.p99_ms for r in runs]):.1f}"
            + (
                f"   server CPU {median([r.cpu_ms for r in runs if r.cpu_ms]):.2f} ms/request"
                if all(r.cpu_ms for r in runs)
                else ""
            )
        )
        if all(r.missing is not None for r in runs):
            lost = sum(r.missing or 0 for r in runs)
            total = sum(r.ok for r in runs)
            verdict = "none lost" if lost == 0 else f"{lost} LOST"
            print(
                f"  decisions of successful requests found in the database: {total - lost} / {total}: {verdict}"
            )
    bot_rps = median([r.rps for r in results["bot"]])
    if limits:
        print(
            f"encoder alone: median {median(limits):.0f} texts/s; bot reaches {bot_rps / median(limits):.2f} of it"
        )
    if former:
        print(
            f"former per-tensor int8 encoder alone: median {median(former):.0f} texts/s; bot reaches "
            f"{bot_rps / median(former):.2f} of it"
        )
    if peer is not None:
        peer_runs = results["peer"]
        peer_rps = median([r.rps for r in peer_runs])
        bot_p99 = median([r.p99_ms for r in results["bot"]])
        peer_p99 = median([r.p99_ms for r in peer_runs])
        print(
            f"bot vs peer: {bot_rps / peer_rps:.1f}x the requests/s; p99 {bot_p99 / peer_p99:.2f} of the peer's "
            f"(1/{peer_p99 / bot_p99:.1f})"
        )
    if before is not None:
        paired = [a.rps / b.rps for a, b in zip(results["bot"], results["before"], strict=True)]
        before_rps = median([r.rps for r in results["before"]])
        bot_p99 = median([r.p99_ms for r in results["bot"]])
        before_p99 = median([r.p99_ms for r in results["before"]])
        print(
            f"bot vs before ({args.baseline}): requests/s {bot_rps:.0f} vs {before_rps:.0f}, ratio of medians "
            f"{bot_rps / before_rps:.3f}, median of the {len(paired)} per-round ratios {median(paired):.3f} "
            f"(each round's: {' '.join(f'{r:.3f}' for r in paired)}); p99 {bot_p99:.1f} vs {before_p99:.1f} ms"
        )


def describe(result: Result) -> str:
    stored = "" if result.stored is None else f"   stored {result.stored} (incl. in flight at the end)"
    if result.cpu_ms is not None:
        stored += f"   server CPU {result.cpu_ms:.2f} ms/request"
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
