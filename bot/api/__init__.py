"""The FastAPI application: `create_app(settings)` mounts the routers over a `Runtime` that serves them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from bot import __version__
from bot.api import admin, agents, bootstrap, chat, insights, review, versions, widget
from bot.api import chatwoot as chatwoot_connector
from bot.api import webhooks as webhook_admin
from bot.api.access_log import install_access_log_redactor
from bot.api.callers import TrustedProxies
from bot.api.errors import install_error_handlers
from bot.api.guard import RateLimits, RequestGuard
from bot.api.metrics import HttpMetrics
from bot.api.metrics import router as metrics_router
from bot.api.request_id import RequestIds
from bot.config import Settings, get_settings
from bot.routing.engine import Engine
from bot.runtime import Runtime

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    runtime: Runtime | None = None,
    wait_until_ready: bool = True,
) -> FastAPI:
    """The app over a `Runtime` (`bot serve` passes one already opened; else it opens at start-up, with
    `engine` if given: tests share one loaded engine). Its lifespan starts and stops the runtime; with
    `wait_until_ready` False it listens while the folder loads (`/healthz` answers, `/readyz` says 503)."""
    runtime = runtime or Runtime(settings or get_settings(), engine=engine)
    settings = runtime.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start(wait_until_ready=wait_until_ready)
        try:
            yield
        finally:
            await chatwoot_connector.close(app)  # send what the Chatwoot connector still holds
            await runtime.stop()

    app = FastAPI(
        title="Intent router",
        version=__version__,
        description="Routes customer messages to intents: answer, clarify, retrieve or hand off to a person.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime  # the one object endpoints reach the process's parts through
    origins = settings.cors_origin_list()
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    limits = RateLimits.from_settings(settings)  # bad limits or proxies fail here, before anything listens
    app.add_middleware(
        RequestGuard,
        max_body_bytes=settings.max_body_bytes,
        limits=limits,
        keys=runtime.keys,
        names=runtime.key_names,
        proxies=TrustedProxies(settings.forwarded_allow_ips),
    )
    if runtime.metrics is not None:  # outside the guard: its refusals are counted and timed too
        app.add_middleware(HttpMetrics, metrics=runtime.metrics, api=app)
    app.add_middleware(RequestIds)  # outermost: every answer, a refusal too, has an X-Request-Id
    install_access_log_redactor()  # conversation ids and ?key= never reach uvicorn's access log
    install_error_handlers(app)
    for module in (chat, agents, review, admin, insights, versions, widget):
        app.include_router(module.router)
    app.include_router(chatwoot_connector.router)  # POST /v1/connectors/chatwoot (docs/chatwoot.md)
    app.include_router(webhook_admin.router)  # /v1/admin/webhooks (docs/webhooks.md)
    app.include_router(bootstrap.router)  # /v1/admin/bootstrap, the drafts page's data (docs/bootstrap.md)
    if runtime.metrics is not None:
        app.include_router(metrics_router)  # GET /metrics (docs/monitoring.md)
    return app
