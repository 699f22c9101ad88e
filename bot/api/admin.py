"""Endpoints for administrators and monitoring: intents, reload, health."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from bot.api import versions
from bot.api.deps import DatabaseDep, EngineDep, PipelineDep, ServiceDep, SettingsDep, require, runtime_of
from bot.api.schemas import HealthOut, IntentOut, IntentsOut, QueueOut, ReloadOut, RepeatCacheOut
from bot.routing.engine import Engine
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
    loaded = await run_in_threadpool(runtime_of(request).versions.reload, versions.who(request))
    result = loaded.result
    assert result is not None
    shown = dataclasses.replace(result, seconds=round(result.seconds, 3))
    return ReloadOut.model_validate(shown, from_attributes=True)


@router.get("/healthz", response_model=HealthOut)
def healthz(
    engine: EngineDep,
    database: DatabaseDep,
    settings: SettingsDep,
    service: ServiceDep,
    pipeline: PipelineDep,
) -> HealthOut:
    """Model, intents version, database state, spooled turns and queue depths; no key needed."""
    db_state = ping(database)
    spooled = service.spool.pending() if service.spool is not None else 0
    rejected = service.spool.rejected() if service.spool is not None else 0
    queues = {
        name: QueueOut.model_validate(stats, from_attributes=True) for name, stats in pipeline.stats().items()
    }
    full = any(queue.pending >= queue.capacity for queue in queues.values())
    return HealthOut(
        status="ok" if db_state == "ok" and not spooled and not full else "degraded",
        spooled=spooled,
        spool_rejected=rejected,
        queues=queues,
        model=engine.model_id,
        intents_version=engine.intents.version,
        intents=len(engine.intents.intents),
        database=db_state,
        auth="keys" if settings.api_keys.strip() else "open",
        repeat_cache=repeat_cache_out(engine),
    )


def repeat_cache_out(engine: Engine) -> RepeatCacheOut | None:
    """The encoder's repeated-text cache figures, if its backend has one."""
    cache = getattr(engine.direct_encoder, "repeats", None)
    if cache is None:
        return None
    return RepeatCacheOut(size=cache.size, entries=len(cache), hits=cache.hits, misses=cache.misses)
