"""Endpoints for administrators and monitoring: intents, reload, health."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bot.api import versions
from bot.api.deps import EngineDep, ready_runtime, require, runtime_of
from bot.api.schemas import (
    HealthOut,
    IntentOut,
    IntentsOut,
    QueueOut,
    ReadyOut,
    ReloadOut,
    RepeatCacheOut,
    TrainingOut,
)
from bot.routing.engine import Engine
from bot.runtime.status import readiness
from bot.store.db import ping

router = APIRouter(tags=["admin"])


@router.get("/v1/intents", response_model=IntentsOut, dependencies=[Depends(require("analyst", "agent"))])
def list_intents(engine: EngineDep) -> IntentsOut:
    """The live intents, with their examples (YAML and learned) and where each is defined."""
    state = engine.state
    return IntentsOut(
        version=state.version,
        model_id=engine.model_id,
        intents=[
            IntentOut(
                name=i.name,
                label=i.spec.label,
                description=i.spec.description,
                examples=list(i.spec.examples),
                learned_examples=list(engine.extra_examples.get(i.name, [])),
                has_answer=i.template is not None,
                handoff=i.spec.handoff,
                threshold=state.rules[i.name].threshold,
                tags=list(i.spec.tags),
                source=f"{i.path.name}:{i.line}",
            )
            for i in state.intents.intents
        ],
    )


@router.post("/v1/admin/reload", response_model=ReloadOut, dependencies=[Depends(require())])
async def reload(request: Request) -> ReloadOut:
    """Re-read the intents folder and learned examples; an invalid folder keeps the old set live (`path:line`).

    The folder is stored as an intents version and made live on every replica (bot.api.versions).
    """
    loaded = await run_in_threadpool(ready_runtime(request).versions.reload, versions.who(request))
    result = loaded.result
    assert result is not None
    shown = dataclasses.replace(result, seconds=round(result.seconds, 3))
    return ReloadOut.model_validate(shown, from_attributes=True)


@router.get("/healthz", response_model=HealthOut)
def healthz(request: Request) -> HealthOut:
    """Liveness, from the first second of a start: model, intents version, database state, spooled turns,
    queue depths and the background training; no key needed. `ready` is false while the folder loads."""
    runtime = runtime_of(request)
    found = readiness(runtime)
    db_state = ping(runtime.database)
    spool = runtime.service.spool
    spooled = spool.pending() if spool is not None else 0
    rejected = spool.rejected() if spool is not None else 0
    stats = runtime.pipeline.stats().items() if found.ready else ()
    queues = {name: QueueOut.model_validate(queue, from_attributes=True) for name, queue in stats}
    full = any(queue.pending >= queue.capacity for queue in queues.values())
    status = "ok" if db_state == "ok" and not spooled and not full else "degraded"
    return HealthOut(
        status=status if found.ready else "starting",
        ready=found.ready,
        spooled=spooled,
        spool_rejected=rejected,
        queues=queues,
        model=found.model,
        version_id=found.version_id,
        intents_version=found.intents_version,
        intents=found.intents,
        database=db_state,
        auth="keys" if runtime.keys else "open",
        repeat_cache=repeat_cache_out(runtime.engine) if found.ready else None,
        training=TrainingOut.model_validate(found.training, from_attributes=True),
    )


@router.get("/readyz", response_model=ReadyOut, responses={503: {"model": ReadyOut}})
def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 once the folder is loaded and routing, 503 before (or when loading failed, with
    why). Says which model and operating point route now and how far the background training is."""
    found = readiness(runtime_of(request))
    body = ReadyOut.model_validate(found, from_attributes=True)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if found.ready else 503)


def repeat_cache_out(engine: Engine) -> RepeatCacheOut | None:
    """The encoder's repeated-text cache figures, if its backend has one."""
    cache = getattr(engine.direct_encoder, "repeats", None)
    if cache is None:
        return None
    return RepeatCacheOut(size=cache.size, entries=len(cache), hits=cache.hits, misses=cache.misses)
