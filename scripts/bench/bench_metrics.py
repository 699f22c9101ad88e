"""What the metrics and request ids cost (#30 items 4, 5), in CPU time, without HTTP or a model.

    python scripts/bench/bench_metrics.py [--requests 20000] [--intents 77]

1. the two pure ASGI middlewares (`RequestIds`, `HttpMetrics`) around a do-nothing app, against the bare
   app: the event-loop CPU each adds to every request;
2. `Metrics.observe_turn`: what the chat endpoint adds to each turn;
3. one scrape (`Metrics.exposition`) with a realistic label population: every intent of a BANKING77-sized
   folder counted, 30 handlers with 3 statuses each, the process collector.

CPU time (`time.process_time`), so a busy machine slows the figures less than wall-clock ones; still, the
machine's load is printed with them. The whole-server figure is `scripts/bench/load_test.py` with
BOT_METRICS=true against false (docs/evaluation.md, "Metrics and request ids (#30)").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot.api.metrics import HttpMetrics
from bot.api.request_id import RequestIds
from bot.routing.policy import Decision
from bot.runtime.metrics import Metrics

Scope = dict[str, Any]


async def bare_app(
    scope: Scope, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


class _Api:
    """Stands in for the FastAPI app `HttpMetrics` reads its path templates from (no route is missed here)."""

    def openapi(self) -> dict[str, Any]:
        return {"paths": {"/v1/chat": {}}}


def per_request_us(app: Any, requests: int) -> float:
    """CPU microseconds per request through `app`, on one event loop."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        return None

    class _Route:
        path = "/v1/chat"

    async def run() -> float:
        started = time.process_time()
        for _ in range(requests):
            scope: Scope = {
                "type": "http",
                "method": "POST",
                "path": "/v1/chat",
                "headers": [],
                "route": _Route,
            }
            await app(scope, receive, send)
        return time.process_time() - started

    return asyncio.run(run()) / requests * 1e6


class _Folder:
    """Stands in for an `IntentSet`: all `observe_turn` reads of it is its names."""

    def __init__(self, names: list[str]) -> None:
        self.names = tuple(names)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--intents", type=int, default=77)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}, {args.requests} requests per figure")
    metrics = Metrics()
    wrapped = RequestIds(HttpMetrics(bare_app, metrics=metrics, api=_Api()))  # type: ignore[arg-type]
    for _ in range(3):  # interleaved rounds: drift hits both alike
        bare = per_request_us(bare_app, args.requests)
        both = per_request_us(wrapped, args.requests)
        print(
            f"  bare app {bare:.2f} us/request, with RequestIds + HttpMetrics {both:.2f}: +{both - bare:.2f} us"
        )
    names = [f"intent_{n}" for n in range(args.intents)]
    folder: Any = _Folder(names)
    decisions = [
        Decision(
            route="answer", intent=name, confidence=0.8, candidates=(), reason="", threshold=0.7, margin=0.02
        )
        for name in names
    ]
    started = time.process_time()
    for n in range(args.requests):
        metrics.observe_turn(decisions[n % len(decisions)], None, 0.01, folder)
    turn_us = (time.process_time() - started) / args.requests * 1e6
    print(f"  observe_turn {turn_us:.2f} us/turn")
    for n in range(30):
        for status in (200, 404, 429):
            metrics.observe_http("GET", f"/v1/handler{n}", status, 0.01)
    scrape = len(metrics.exposition())
    started = time.process_time()
    for _ in range(50):
        metrics.exposition()
    print(f"  one scrape: {(time.process_time() - started) / 50 * 1000:.2f} ms CPU, {scrape} bytes")


if __name__ == "__main__":
    main()
