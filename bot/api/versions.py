"""Intents versions: the list, activation (rollback) on every replica, and a routing diff on logged traffic."""

from __future__ import annotations

import hmac
import logging
from pathlib import Path as FolderPath
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import Engine as Database
from starlette.concurrency import run_in_threadpool

from bot.api.deps import DatabaseDep, EngineDep, ready_runtime, require, runtime_of
from bot.api.schemas import (
    ActivatedOut,
    ActivationOut,
    DiffIn,
    DiffOut,
    ShadowIn,
    ShadowOut,
    VersionDetailOut,
    VersionOut,
    VersionsOut,
)
from bot.chat.shadow import ShadowRun
from bot.errors import ConflictError
from bot.insights.shadow import compare as shadow_compare
from bot.routing.engine import Engine
from bot.runtime import Runtime
from bot.runtime.candidates import candidate_folder, one_diff_at_a_time
from bot.store import versions
from bot.store.models import IntentsVersion
from bot.store.version_sync import Loaded, VersionSync
from bot.tuning.diff import routing_diff

log = logging.getLogger(__name__)
router = APIRouter(tags=["versions"])
VersionId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def version_out(row: versions.VersionRow) -> VersionOut:
    v, last = row.version, row.last_activated
    assert v.id is not None
    return VersionOut(
        id=v.id,
        hash=v.hash,
        intents_version=v.intents_version,
        model_id=v.model_id,
        intents=len(v.specs),
        files=sorted(v.files),
        summary=v.summary,
        loaded_by=v.loaded_by,
        created_at=v.created_at,
        live=row.live,
        last_activated_at=last.created_at if last else None,
        last_activated_by=last.activated_by if last else None,
    )


def who(request: Request) -> str:
    """Who acts, for the version log: the key's owner (`admin@NAME:KEY`), else the kind of access."""
    runtime = runtime_of(request)
    names: dict[str, str] = runtime.key_names
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        presented = token.strip().encode()
        # constant time against every key, like the role check
        owners = [name for key, name in names.items() if hmac.compare_digest(key.encode(), presented)]
        if owners:
            return owners[-1]
    return "admin key" if runtime.keys else "local (no API keys)"


def _sync(request: Request) -> VersionSync:
    return ready_runtime(request).versions


# -- endpoints -------------------------------------------------------------------------------------


@router.get("/v1/versions", response_model=VersionsOut, dependencies=[Depends(require("analyst"))])
def list_versions(
    database: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> VersionsOut:
    """Every intents folder the servers loaded, newest first, with what each changed and which is live."""
    rows, total = versions.listing(database, limit=limit, offset=offset)
    current = versions.live(database)
    return VersionsOut(
        items=[version_out(r) for r in rows],
        total=total,
        live_id=current.version.id if current else None,
        activations=[
            ActivationOut.model_validate(a, from_attributes=True) for a in versions.activations(database)
        ],
    )


@router.get(
    "/v1/versions/{version_id}", response_model=VersionDetailOut, dependencies=[Depends(require("analyst"))]
)
def show_version(version_id: VersionId, database: DatabaseDep) -> VersionDetailOut:
    """One version with the text of each file."""
    version = versions.get(database, version_id)
    base = version_out(versions.describe(database, version))
    return VersionDetailOut(**base.model_dump(), contents=version.files)


@router.post(
    "/v1/admin/versions/{version_id}/activate", response_model=ActivatedOut, dependencies=[Depends(require())]
)
async def activate_version(
    version_id: VersionId, request: Request, engine: EngineDep, database: DatabaseDep
) -> ActivatedOut:
    """Make a stored version live: here at once (an invalid one changes nothing), on every replica within
    BOT_LEARNED_SYNC_SECONDS. The folder on disk is not touched (`bot versions checkout` writes it)."""
    loaded = await run_in_threadpool(_sync(request).activate, version_id, who(request))
    return activated_out(loaded, engine, database)


def activated_out(loaded: Loaded, engine: Engine, database: Database) -> ActivatedOut:
    result = loaded.result
    state = engine.state
    return ActivatedOut(
        version=version_out(versions.describe(database, loaded.version)),
        intents=len(state.intents.intents),
        passages=len(state.passages),
        seconds=round(result.seconds, 3) if result else 0.0,
        operating_point=result.operating_point if result else "unchanged",
        model_id=engine.model_id,
    )


@router.post("/v1/admin/diff", response_model=DiffOut, dependencies=[Depends(require())])
async def diff(body: DiffIn, request: Request) -> DiffOut:
    """Replay logged customer messages under the live version and a candidate; nothing is written. One
    diff runs at a time per server (429 meanwhile); a candidate folder must lie in BOT_CANDIDATE_ROOTS."""
    return await run_in_threadpool(run_diff, body, ready_runtime(request))


def _diff_candidate(
    body: DiffIn, runtime: Runtime
) -> tuple[FolderPath, versions.Snapshot, IntentsVersion | None]:
    """The candidate's folder, what it holds, and the stored version it is: a folder holding a stored
    version's very files is that version, named by its id like everywhere else (None: never stored)."""
    database = runtime.database
    if body.version_id is not None:
        version = versions.get(database, body.version_id)
        folder = versions.materialize(version, runtime.settings.cache_dir)
        return folder, versions.snapshot(folder, runtime.versions.model_id), version
    folder = candidate_folder(body.intents_dir or "", runtime.settings)
    found = versions.snapshot(folder, runtime.versions.model_id)
    return folder, found, versions.find(database, found.hash)


def run_diff(body: DiffIn, runtime: Runtime) -> DiffOut:
    engine, database = runtime.engine, runtime.database
    with one_diff_at_a_time():
        folder, found, version = _diff_candidate(body, runtime)
        label = f"version {version.id}" if version else str(folder)
        if version and body.intents_dir is not None:
            label += f" ({folder})"
        current = versions.live(database)
        summary = versions.summarize(current.version if current else None, found)
        live = engine.live  # the model and the state it built, read together
        candidate, _ = engine.candidate(folder)
        report = routing_diff(
            database,
            live.model.encoder,
            live.state,
            candidate,
            since=body.since,
            limit=body.limit,
            examples=body.examples,
        )
        shown = {
            **vars(report),
            "candidate": label,
            "summary": summary,
            "live_id": runtime.versions.live_id,
            "candidate_id": version.id if version else None,
        }
        return DiffOut.model_validate(shown, from_attributes=True)


# -- shadow runs -----------------------------------------------------------------------------------


def _shadow(request: Request) -> ShadowRun | None:
    return ready_runtime(request).shadow.run


def shadow_out(run: ShadowRun | None, database: Database, intents_version: str | None = None) -> ShadowOut:
    version = intents_version or (run.status.intents_version if run else None)
    found = shadow_compare(database, version) if version else None
    return ShadowOut.model_validate(
        {"run": run.snapshot() if run else None, "comparison": found}, from_attributes=True
    )


@router.get("/v1/shadow", response_model=ShadowOut, dependencies=[Depends(require("analyst"))])
def get_shadow(
    request: Request,
    database: DatabaseDep,
    intents_version: Annotated[
        str | None, Query(max_length=64, description="An earlier shadow run's intents version.")
    ] = None,
) -> ShadowOut:
    """This process's shadow run and live against shadow on the same messages."""
    return shadow_out(_shadow(request), database, intents_version)


@router.post("/v1/admin/shadow", response_model=ShadowOut, dependencies=[Depends(require())])
async def start_shadow_run(body: ShadowIn, request: Request, database: DatabaseDep) -> ShadowOut:
    """Route every live message of this process through a candidate too (replacing any shadow run); its
    decisions are stored as shadow decisions and never shown to customers. The candidate is stored as a
    version (not made live), so what was shadowed is exactly what `promote` makes live."""
    control = ready_runtime(request).shadow
    run = await run_in_threadpool(control.begin, body.intents_dir, body.version_id, who(request))
    return shadow_out(run, database)


@router.delete("/v1/admin/shadow", response_model=ShadowOut, dependencies=[Depends(require())])
async def stop_shadow_run(request: Request, database: DatabaseDep) -> ShadowOut:
    """Stop the shadow run (what it queued is still decided and stored); its comparison stays readable."""
    run = await run_in_threadpool(ready_runtime(request).shadow.end)
    return shadow_out(run, database)


@router.post("/v1/admin/shadow/promote", response_model=ActivatedOut, dependencies=[Depends(require())])
async def promote_shadow(request: Request, engine: EngineDep, database: DatabaseDep) -> ActivatedOut:
    """Make the shadow's version live on every replica and stop shadowing it."""
    run = _shadow(request)
    if run is None or run.status.version_id is None:
        raise ConflictError("no shadow run to promote: start one with POST /v1/admin/shadow")
    version_id = run.status.version_id
    await run_in_threadpool(ready_runtime(request).shadow.end)
    loaded = await run_in_threadpool(_sync(request).activate, version_id, who(request), "promote")
    return activated_out(loaded, engine, database)
