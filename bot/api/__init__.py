"""The FastAPI application: `create_app(settings)` loads the model once, migrates, and mounts the routers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import Engine as Database
from starlette.concurrency import run_in_threadpool

from bot import __version__
from bot.api import admin, agents, chat, insights, review, versions, widget
from bot.api.access_log import install_access_log_redactor
from bot.api.callers import TrustedProxies
from bot.api.chat import ChatFastPath
from bot.api.errors import install_error_handlers
from bot.api.guard import RateLimits, RequestGuard
from bot.chat.pipeline import ChatPipeline
from bot.chat.service import ChatService
from bot.chat.spool import Spool
from bot.config import Settings, get_settings
from bot.routing.engine import Engine
from bot.store.db import make_engine, upgrade
from bot.store.examples import learned_examples, learned_fingerprint
from bot.tuning.self_training import ensure_self_trained

log = logging.getLogger(__name__)


SPOOL_DRAIN_SECONDS = 2.0
SWITCH_INTERVAL_SECONDS = 0.001


async def _drain_forever(service: ChatService) -> None:
    """Write spooled chat turns back whenever the database answers again."""
    while True:
        await asyncio.sleep(SPOOL_DRAIN_SECONDS)
        if service.spool is None or not service.spool.pending():
            continue
        try:
            applied = await run_in_threadpool(service.drain_spool)
            log.warning("database is back: wrote %d spooled chat turns", applied)
        except Exception as exc:  # still down: keep the spool and try again later
            log.info("spool not drained yet: %s", exc.__class__.__name__)


async def _follow_learned_examples(engine: Engine, database: Database, seconds: float) -> None:
    """Pick up examples that other processes (replicas, workers) learned from reviews and tickets.

    A review teaches the process that handled it at once; the others see the learned-example table
    change here within `seconds` and re-embed only the new texts.
    """
    seen: tuple[object, ...] | None = None  # first round always compares: a change may predate start-up
    while True:
        await asyncio.sleep(seconds)
        try:
            now = await run_in_threadpool(learned_fingerprint, database)
            if now != seen:
                changed = await run_in_threadpool(
                    engine.use_extra_examples, lambda: learned_examples(database)
                )
                seen = now
                if changed:
                    log.info(
                        "learned examples changed in the database: %d intents have some now",
                        len(engine.extra_examples),
                    )
        except Exception as exc:  # database down or a bad row: keep routing with what we have
            log.info("learned examples not checked: %s", exc.__class__.__name__)


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """The app; `engine` may be passed in already loaded (tests share one), else it loads at start-up."""
    settings = settings or get_settings()
    keys = settings.keys_by_role()  # a malformed BOT_API_KEYS fails here, before anything listens

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        routing = engine
        if routing is None:
            routing = Engine(ensure_self_trained(settings))
            routing.load()
        database = make_engine(settings.database_url)
        upgrade(database)
        learned = learned_examples(database)
        if learned or routing.extra_examples:
            routing.load(extra_examples=learned)
        app.state.engine = routing
        app.state.database = database
        version_follower = await versions.start(app, routing, database, settings)
        spool = Spool(settings.spool_dir or settings.cache_dir / "spool")
        service = ChatService(routing, database, spool)
        app.state.service = service
        pipeline = ChatPipeline(service, settings)
        pipeline.start()
        app.state.pipeline = pipeline
        await versions.start_shadow(app, settings)  # BOT_SHADOW_INTENTS_DIR, if set
        # the model, intents and libraries live as long as the process: keeping them out of the garbage
        # collector's scans removes pauses that showed up as 100 ms stalls in chat batches under load
        gc.collect()
        gc.freeze()
        # Four busy threads share the GIL (event loop, two routers, writer); a router coming back from
        # ONNX Runtime waits for the holder's switch interval. 1 ms instead of 5 ms: +3-6% requests/s
        # and 4 ms off p99 in an interleaved A/B under HTTP load on 2 cores.
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        drainer = asyncio.create_task(_drain_forever(service))
        follower = (
            asyncio.create_task(_follow_learned_examples(routing, database, settings.learned_sync_seconds))
            if settings.learned_sync_seconds > 0
            else None
        )
        log.info("serving %d intents (version %s)", len(routing.intents.intents), routing.intents.version)
        try:
            yield
        finally:
            await pipeline.close()  # every accepted chat turn is written before the database closes
            await versions.stop_shadow(app)  # what the shadow queued is stored too
            drainer.cancel()
            for task in (follower, version_follower):
                if task is not None:
                    task.cancel()
            with contextlib.suppress(Exception):  # a last try: the database may be back
                await run_in_threadpool(service.drain_spool)
            database.dispose()

    app = FastAPI(
        title="Intent router",
        version=__version__,
        description="Routes customer messages to intents: answer, clarify, retrieve or hand off to a person.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.keys = keys
    app.state.key_names = settings.key_names()
    app.add_middleware(ChatFastPath)  # innermost: inside CORS and the guard, whose parsed body it reads
    origins = settings.cors_origin_list()
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    limits = RateLimits.from_settings(settings)  # bad limits or proxies fail here, before anything listens
    app.state.limits = limits
    app.add_middleware(
        RequestGuard,
        max_body_bytes=settings.max_body_bytes,
        limits=limits,
        keys=keys,
        names=app.state.key_names,
        proxies=TrustedProxies(settings.forwarded_allow_ips),
    )
    install_access_log_redactor()  # conversation ids and ?key= never reach uvicorn's access log
    install_error_handlers(app)
    for module in (chat, agents, review, admin, insights, versions, widget):
        app.include_router(module.router)
    return app
