"""Intents versions: the list, activation (rollback) on every replica, and a routing diff on logged traffic."""

from __future__ import annotations

import hmac
import logging
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import Engine as Database
from starlette.concurrency import run_in_threadpool

from bot.api.deps import DatabaseDep, EngineDep, SettingsDep, require, runtime_of
from bot.chat.shadow import ShadowRun
from bot.config import Settings
from bot.errors import ConflictError, InvalidInputError
from bot.insights.shadow import compare as shadow_compare
from bot.routing.engine import Engine
from bot.store import versions
from bot.store.version_sync import Loaded, VersionSync
from bot.tuning.diff import routing_diff

log = logging.getLogger(__name__)
router = APIRouter(tags=["versions"])
VersionId = Annotated[int, Path(ge=1, le=2**31 - 1)]


# -- schemas ---------------------------------------------------------------------------------------


class VersionOut(BaseModel):
    """A stored intents folder."""

    id: int
    hash: str = Field(description="sha256 of the model id and every file of the folder.")
    intents_version: str = Field(description="The intents' content hash, as decisions record it.")
    model_id: str
    intents: int
    files: list[str] = Field(description="Paths inside the folder.")
    summary: str = Field(description="What changed against the version live before it was stored.")
    loaded_by: str
    created_at: datetime
    live: bool
    last_activated_at: datetime | None
    last_activated_by: str | None


class ActivationOut(BaseModel):
    """A version made live: by a server starting, a reload, a rollback or a promotion."""

    version_id: int
    action: str
    activated_by: str
    at: datetime


class VersionsOut(BaseModel):
    """Stored versions, newest first, and the newest activations (the version live at any moment is the
    newest activation before it, so a logged decision's version can be named)."""

    items: list[VersionOut]
    total: int
    live_id: int | None
    activations: list[ActivationOut]


class VersionDetailOut(VersionOut):
    """A version with its files' text."""

    contents: dict[str, str]


class ActivatedOut(BaseModel):
    """The version now live here (and, within the sync interval, on every replica)."""

    version: VersionOut
    intents: int
    passages: int
    seconds: float
    operating_point: str
    model_id: str = Field(description="The model this server routes the version with.")


class DiffIn(BaseModel):
    """A candidate: a folder on the server, or a stored version."""

    intents_dir: str | None = Field(None, max_length=1000, description="A folder on the server (admin only).")
    version_id: int | None = Field(
        None, ge=1, le=2**31 - 1, description="A stored version (GET /v1/versions)."
    )
    since: datetime | None = Field(None, description="Replay messages logged from then on (with a timezone).")
    limit: int = Field(10_000, ge=1, le=200_000, description="The newest N messages at most.")
    examples: int = Field(5, ge=1, le=50, description="Example messages per group.")

    @model_validator(mode="after")
    def _one_candidate(self) -> DiffIn:
        if (self.intents_dir is None) == (self.version_id is None):
            raise ValueError("give exactly one of intents_dir (a folder on the server) or version_id")
        if self.since is not None and self.since.tzinfo is None:
            raise ValueError("since needs a timezone, e.g. 2026-11-01T00:00:00Z")
        return self


class DiffExampleOut(BaseModel):
    decision_id: int
    text: str
    verdict: str | None
    effect: str | None = Field(description="'fixes' a reviewed error, 'breaks' a reviewed-correct decision.")


class DiffGroupOut(BaseModel):
    before: str
    after: str
    count: int
    fixes: int
    breaks: int
    examples: list[DiffExampleOut]


class DiffOut(BaseModel):
    """Every logged message whose outcome the candidate changes, grouped by (before -> after)."""

    live_version: str
    candidate_version: str
    candidate: str
    summary: str = Field(description="What the candidate changes in the intents, against the live version.")
    messages: int
    distinct_texts: int
    changed: int
    reviewed: int
    fixes: int
    breaks: int
    groups: list[DiffGroupOut]
    seconds: float


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
    return runtime_of(request).versions


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
            ActivationOut(
                version_id=a.version_id, action=a.action, activated_by=a.activated_by, at=a.created_at
            )
            for a in versions.activations(database)
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
async def diff(body: DiffIn, engine: EngineDep, database: DatabaseDep, settings: SettingsDep) -> DiffOut:
    """Replay logged customer messages under the live version and a candidate; nothing is written."""
    return await run_in_threadpool(run_diff, body, engine, database, settings)


def run_diff(body: DiffIn, engine: Engine, database: Database, settings: Settings) -> DiffOut:
    live = engine.state
    if body.version_id is not None:
        version = versions.get(database, body.version_id)
        folder = versions.materialize(version, settings.cache_dir)
        label = f"version {version.id}"
    else:
        folder = FilePath(body.intents_dir or "")
        if not folder.is_dir():
            raise InvalidInputError("intents_dir", f"'{folder}' is not a folder on the server")
        label = str(folder)
    found = versions.snapshot(folder, engine.model_id)
    current = versions.live(database)
    summary = versions.summarize(current.version if current else None, found)
    candidate, _ = engine.candidate(folder)
    report = routing_diff(
        database, engine.encoder, live, candidate, since=body.since, limit=body.limit, examples=body.examples
    )
    return DiffOut(
        live_version=report.live_version,
        candidate_version=report.candidate_version,
        candidate=label,
        summary=summary,
        messages=report.messages,
        distinct_texts=report.distinct_texts,
        changed=report.changed,
        reviewed=report.reviewed,
        fixes=report.fixes,
        breaks=report.breaks,
        groups=[
            DiffGroupOut(
                before=g.before,
                after=g.after,
                count=g.count,
                fixes=g.fixes,
                breaks=g.breaks,
                examples=[DiffExampleOut(**vars(e)) for e in g.examples],
            )
            for g in report.groups
        ],
        seconds=report.seconds,
    )


# -- shadow runs -----------------------------------------------------------------------------------


class ShadowIn(BaseModel):
    """The candidate a shadow run routes by: a folder on the server, or a stored version."""

    intents_dir: str | None = Field(None, max_length=1000, description="A folder on the server.")
    version_id: int | None = Field(None, ge=1, le=2**31 - 1, description="A stored version.")

    @model_validator(mode="after")
    def _one_candidate(self) -> ShadowIn:
        if (self.intents_dir is None) == (self.version_id is None):
            raise ValueError("give exactly one of intents_dir (a folder on the server) or version_id")
        return self


class ShadowRunOut(BaseModel):
    """A shadow run in this process."""

    candidate: str
    version_id: int | None = Field(
        description="The stored version it routes by (POST .../promote makes it live)."
    )
    intents_version: str
    started_at: datetime
    running: bool
    decided: int
    dropped: int = Field(description="Live messages not shadowed because the shadow's queue was full.")
    failed: int
    pending: int
    errors: list[str]


class DisagreementOut(BaseModel):
    live: str
    shadow: str
    count: int
    examples: list[str]


class ComparisonOut(BaseModel):
    """Live against shadow on the same messages."""

    intents_version: str
    messages: int
    agreed: int
    agreement: float | None
    disagreements: list[DisagreementOut]
    reviewed: int = Field(description="Shadowed messages an analyst reviewed.")
    live_correct: int
    shadow_correct: int
    live_accuracy: float | None
    shadow_accuracy: float | None


class ShadowOut(BaseModel):
    """The shadow run (if any) and how it compares with live."""

    run: ShadowRunOut | None
    comparison: ComparisonOut | None


def _shadow(request: Request) -> ShadowRun | None:
    return runtime_of(request).shadow.run


def shadow_out(run: ShadowRun | None, database: Database, intents_version: str | None = None) -> ShadowOut:
    version = intents_version or (run.status.intents_version if run else None)
    found = shadow_compare(database, version) if version else None
    return ShadowOut(
        run=ShadowRunOut(**{k: v for k, v in vars(run.snapshot()).items()}) if run else None,
        comparison=ComparisonOut(
            **{**vars(found), "disagreements": [DisagreementOut(**vars(d)) for d in found.disagreements]}
        )
        if found
        else None,
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
    control = runtime_of(request).shadow
    run = await run_in_threadpool(control.begin, body.intents_dir, body.version_id, who(request))
    return shadow_out(run, database)


@router.delete("/v1/admin/shadow", response_model=ShadowOut, dependencies=[Depends(require())])
async def stop_shadow_run(request: Request, database: DatabaseDep) -> ShadowOut:
    """Stop the shadow run (what it queued is still decided and stored); its comparison stays readable."""
    run = await run_in_threadpool(runtime_of(request).shadow.end)
    return shadow_out(run, database)


@router.post("/v1/admin/shadow/promote", response_model=ActivatedOut, dependencies=[Depends(require())])
async def promote_shadow(request: Request, engine: EngineDep, database: DatabaseDep) -> ActivatedOut:
    """Make the shadow's version live on every replica and stop shadowing it."""
    run = _shadow(request)
    if run is None or run.status.version_id is None:
        raise ConflictError("no shadow run to promote: start one with POST /v1/admin/shadow")
    version_id = run.status.version_id
    await run_in_threadpool(runtime_of(request).shadow.end)
    loaded = await run_in_threadpool(_sync(request).activate, version_id, who(request), "promote")
    return activated_out(loaded, engine, database)
