"""`GET /metrics` for Prometheus, the middleware timing every request, and what a chat turn records.

The endpoint admits admin keys and `metrics` keys (a scraper's key, refused everywhere else) and, like
every endpoint, anything from this machine when no keys are set. Each scrape reads counters and the
process's in-memory state (`bot.runtime.metrics`): no database query. With `BOT_METRICS=false` neither
the endpoint nor the middleware is mounted.
"""

from __future__ import annotations

import re
import time

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.routing import compile_path

from bot.api.deps import require, runtime_of
from bot.api.guard import ASGIApp, Message, Receive, Scope, Send
from bot.chat.request_context import CURRENT, conversation_ref
from bot.chat.service import ChatReply
from bot.runtime import Runtime
from bot.runtime.metrics import OTHER, Metrics

router = APIRouter(tags=["ops"], include_in_schema=False)


@router.get("/metrics", dependencies=[Depends(require("metrics"))])
def metrics(request: Request) -> Response:
    """Every metric in Prometheus's text format (docs/monitoring.md lists them)."""
    found = runtime_of(request).metrics
    assert found is not None  # the router is mounted only with metrics on
    return Response(found.exposition(), media_type=CONTENT_TYPE_LATEST)


def chat_answered(runtime: Runtime, reply: ChatReply, seconds: float) -> None:
    """What a chat turn leaves beside its reply: its decision in the metrics, and its route, decision id
    and conversation reference (a hash, not the id) on the request's JSON access-log line."""
    decision = reply.decision
    context = CURRENT.get()
    if context is not None:
        context.fields["route"] = decision.route
        context.fields["conversation"] = conversation_ref(reply.conversation_id)
        if reply.decision_id is not None:
            context.fields["decision_id"] = reply.decision_id
    if runtime.metrics is not None:
        runtime.metrics.observe_turn(decision, reply.escalation, seconds, runtime.engine.intents)


class _Handlers:
    """The handler label of a request the router never saw (refused by the request guard, or no route
    matched): the documented path template that matches it, else 'other'. Read from the app's OpenAPI
    document on first use, when every router is mounted (FastAPI keeps included routers nested)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._static: dict[str, str] | None = None
        self._templated: list[tuple[re.Pattern[str], str]] = []

    def of(self, path: str) -> str:
        if self._static is None:
            templates = list(self.app.openapi().get("paths", {}))
            self._templated = [(compile_path(t)[0], t) for t in templates if "{" in t]
            self._static = {t: t for t in templates if "{" not in t}
        found = self._static.get(path)
        if found is not None:
            return found
        return next((template for regex, template in self._templated if regex.match(path)), OTHER)


class HttpMetrics:
    """Pure ASGI middleware: each HTTP request counted and timed by method, handler and status."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, api: FastAPI) -> None:
        self.app = app
        self.metrics = metrics
        self.handlers = _Handlers(api)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an error escaped every handler

        async def send_and_see(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_see)
        finally:
            route = scope.get("route")  # set by the router on the scope it was handed: this one
            handler = getattr(route, "path", None) or self.handlers.of(scope["path"])
            self.metrics.observe_http(scope["method"], handler, status, time.perf_counter() - started)
