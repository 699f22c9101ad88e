"""Chat requests/s of one checkout under two environments, rounds interleaved (issue #30's load figures).

    python scripts/bench/bench_webhook_load.py --compare webhooks [--rounds 4] [--seconds 15] [--clients 16]
                                               [--handoffs 0.2] [--db sqlite|postgresql]
    python scripts/bench/bench_webhook_load.py --compare metrics
    python scripts/bench/bench_webhook_load.py --env-a BOT_X=1 --env-b BOT_X=2   # any two environments

Two `bot serve` processes of this checkout run side by side, each on its own fresh database, and wrk
drives them in turn: rounds alternate A B, B A, so neither always goes first and drift on a shared
machine hits both alike. A share of the messages asks for a person (`--handoffs`), so every such turn opens
a ticket and, where subscriptions exist, writes a `ticket.opened` event to the outbox in its transaction.

  --compare webhooks   A: no subscriptions; B: two (BOT_WEBHOOKS), one to a fast local sink (204 at once),
                       one to a sink that answers 503 after 1 s, retried every second or so (the dispatcher
                       keeps failing on it for the whole run). The issue's goal: B at most 5% below A.
                       `--second-sink fast` points the second at a fast sink too (every event delivered).
  --compare metrics    A: BOT_METRICS=true (the default: every request and decision counted); B: false.

Prints each round, the medians, the ratio B/A of the medians and the median of the per-round ratios, the
same for the server's CPU time per request (which moves far less with other load on the machine), and
(webhooks) how many events each sink received and what the outbox held at the end. The sinks run in this process, on loopback; their CPU is
counted against the machine, not the server. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_test import Result, Target, describe, fresh_database, measure, server

SECRET = "whsec_bench_0123456789abcdef"


class Sink:
    """A webhook receiver on a free loopback port: answers `status` after `delay` seconds, counts requests."""

    def __init__(self, status: int, delay: float = 0.0) -> None:
        self.received = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if delay:
                    time.sleep(delay)
                sink.received += 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.1,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def sinks(second: str) -> Iterator[tuple[Sink, Sink]]:
    """The fast sink and the second one (slow and failing, or fast too), closed afterwards."""
    fast, other = Sink(204), Sink(503, delay=1.0) if second == "slow" else Sink(204)
    try:
        yield fast, other
    finally:
        fast.close()
        other.close()


def webhook_env(fast: Sink, second: Sink) -> dict[str, str]:
    """Two subscriptions to every event; a failing one is retried about every second (10 tries)."""
    subscriptions = [
        {"url": fast.url, "secret": SECRET, "events": []},
        {"url": second.url, "secret": SECRET, "events": []},
    ]
    return {
        "BOT_WEBHOOKS": json.dumps(subscriptions),
        "BOT_WEBHOOK_RETRY_SECONDS": "1",
        "BOT_WEBHOOK_TIMEOUT_SECONDS": "2",
    }


def scalar_rows(database_url: str, query: str) -> list[tuple[Any, ...]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query)).all()]
    finally:
        engine.dispose()


def outbox_state(database_url: str) -> str:
    """The turns, the tickets they opened, and the outbox's rows by status: how many events the run wrote
    and how far the dispatcher kept up with them."""
    ((turns, tickets),) = scalar_rows(
        database_url, "SELECT (SELECT count(*) FROM decision), (SELECT count(*) FROM handoff_ticket)"
    )
    rows = scalar_rows(
        database_url, "SELECT status, count(*) FROM webhook_delivery GROUP BY status ORDER BY status"
    )
    outbox = ", ".join(f"{status} {count}" for status, count in rows) or "empty"
    return f"{turns} turns, {tickets} tickets opened (a ticket.opened each); outbox rows: {outbox}"


def parse_env(pairs: list[str], option: str) -> dict[str, str]:
    """`K=V` pairs as a dict; a pair without `=` is a usage error naming the option."""
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"{option} takes KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--compare", choices=["webhooks", "metrics"])
    parser.add_argument("--env-a", action="append", default=[], metavar="K=V", help="side A's environment")
    parser.add_argument("--env-b", action="append", default=[], metavar="K=V", help="side B's environment")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--handoffs", type=float, default=0.2, help="share of messages asking for a person")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--second-sink",
        choices=["slow", "fast"],
        default="slow",
        help="webhooks: the second subscription's sink",
    )
    args = parser.parse_args()
    if args.compare is None and not (args.env_a or args.env_b):
        raise SystemExit("say what to compare: --compare webhooks|metrics, or --env-a/--env-b K=V")
    if not 1 <= args.clients <= 512 or not 0 < args.seconds <= 600 or not 1 <= args.rounds <= 20:
        raise SystemExit("keep the run bounded: 1-512 clients, at most 600 s, 1-20 rounds")
    if not 0 <= args.handoffs <= 1:
        raise SystemExit("--handoffs is a share of messages: 0 to 1")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    # what load_test's server() and measure() read
    args.client, args.repeats, args.backend, args.workers, args.cold = "wrk", 0.0, None, 1, False
    return args


def sides(args: argparse.Namespace, fast: Sink, slow: Sink) -> list[tuple[str, dict[str, str]]]:
    """(name, environment) of side A and side B."""
    a, b = parse_env(args.env_a, "--env-a"), parse_env(args.env_b, "--env-b")
    if args.compare == "webhooks":
        return [
            ("no-webhooks", {"BOT_WEBHOOKS": "", **a}),
            ("two-webhooks", {**webhook_env(fast, slow), **b}),
        ]
    if args.compare == "metrics":
        return [("metrics-on", {"BOT_METRICS": "true", **a}), ("metrics-off", {"BOT_METRICS": "false", **b})]
    return [("A", a), ("B", b)]


def run_rounds(args: argparse.Namespace, targets: list[Target], folder: Path) -> dict[str, list[Result]]:
    """Warm each up, then `rounds` rounds alternating A B, B A; each round's figures printed."""
    tag = uuid.uuid4().hex[:6]
    for target in targets:
        measure(args, target, args.warmup, f"{tag}{target.name}w", folder)
    results: dict[str, list[Result]] = {t.name: [] for t in targets}
    for number in range(1, args.rounds + 1):
        for target in targets if number % 2 else targets[::-1]:
            result = measure(args, target, args.seconds, f"{tag}{target.name}{number}", folder)
            results[target.name].append(result)
            print(f"round {number} {target.name}: {describe(result)}", flush=True)
    return results


def report(results: dict[str, list[Result]], names: list[str]) -> None:
    """Medians of each side, and B against A."""
    median = statistics.median
    for name in names:
        runs = results[name]
        lost = sum(r.missing or 0 for r in runs)
        print(
            f"{name}: median of {len(runs)}: requests/s {median([r.rps for r in runs]):.1f}   "
            f"p50 {median([r.p50_ms for r in runs]):.1f} ms  p99 {median([r.p99_ms for r in runs]):.1f} ms   "
            f"errors {sum(r.errors for r in runs)}   acknowledged decisions missing from the database: {lost}"
            f"   server CPU {median([r.cpu_ms or 0.0 for r in runs]):.2f} ms/request"
        )
    a, b = (results[name] for name in names)
    paired = [y.rps / x.rps for x, y in zip(a, b, strict=True)]
    ratio = median([r.rps for r in b]) / median([r.rps for r in a])
    print(
        f"{names[1]} vs {names[0]}: requests/s ratio of medians {ratio:.3f} ({(ratio - 1) * 100:+.1f}%), "
        f"median of per-round ratios {median(paired):.3f} (rounds: {' '.join(f'{r:.3f}' for r in paired)}); "
        f"p99 {median([r.p99_ms for r in b]):.1f} vs {median([r.p99_ms for r in a]):.1f} ms"
    )
    # CPU time per request moves far less with the machine's other load than requests/s does
    cpu = median([(y.cpu_ms or 0.0) / (x.cpu_ms or 1.0) for x, y in zip(a, b, strict=True)])
    print(f"{names[1]} vs {names[0]}: server CPU per request, median of per-round ratios {cpu:.3f}")


def main() -> None:
    args = arguments()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        fast, slow = stack.enter_context(sinks(args.second_sink))
        targets = []
        for name, env in sides(args, fast, slow):
            side = folder / name
            side.mkdir()
            database_url = stack.enter_context(fresh_database(args.db, side))
            url, pid = stack.enter_context(server(database_url, args, side, name=name, extra_env=env))
            targets.append(Target(name, url, database_url, pid))
            shown = {k: ("<2 subscriptions>" if k == "BOT_WEBHOOKS" and v else v) for k, v in env.items()}
            print(f"{name}: {url} with {shown}", flush=True)
        print(
            f"{args.db}, {args.clients} clients (wrk), {args.rounds} rounds x {args.seconds:.0f} s interleaved, "
            f"{args.handoffs:.0%} of messages ask for a person (a ticket each)",
            flush=True,
        )
        results = run_rounds(args, targets, folder)
        report(results, [t.name for t in targets])
        if args.compare == "webhooks":
            time.sleep(2)  # the last events of the last round reach the fast sink
            second = "failing sink (attempts)" if args.second_sink == "slow" else "second fast sink"
            print(f"events received: fast sink {fast.received}, {second} {slow.received}")
            print(f"{targets[1].name} at the end: {outbox_state(targets[1].database_url or '')}")


if __name__ == "__main__":
    main()
