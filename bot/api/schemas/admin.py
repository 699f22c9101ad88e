"""Operators: health, readiness, the training, the live intents and reloads (bot.api.admin)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class IntentOut(BaseModel):
    """An intent as the router sees it."""

    name: str
    label: str
    description: str
    examples: list[str]
    learned_examples: list[str]
    has_answer: bool
    handoff: bool
    threshold: float | None
    tags: list[str]
    source: str


class IntentsOut(BaseModel):
    """The live intent set."""

    version: str
    model_id: str
    intents: list[IntentOut]


class ReloadOut(BaseModel):
    """The result of a reload."""

    version: str
    intents: int
    passages: int
    embedded_texts: int
    seconds: float


class QueueOut(BaseModel):
    """One of the chat path's batch queues (routing, writing)."""

    pending: int = Field(description="Turns queued or in the batch being handled now.")
    capacity: int = Field(description="Beyond this many pending turns, new requests wait.")
    batches: int
    items: int
    largest_batch: int
    busy_seconds: float = Field(description="Time the worker threads spent handling batches.")
    slowest_batch_ms: float


class RepeatCacheOut(BaseModel):
    """How often a message's vector came from the repeated-text cache instead of the encoder."""

    size: int = Field(description="Most entries kept.")
    entries: int
    hits: int
    misses: int


class TrainingOut(BaseModel):
    """The background training of the live folder version's model (bot serve, self-training)."""

    state: Literal["idle", "running", "ready", "failed", "cancelled"] = Field(
        description="idle: none ran in this process; ready: the last one finished and is live."
    )
    intents_version: str | None
    phase: str = Field(description="starting, model, cross-fit 1/2, cross-fit 2/2, export, done.")
    progress: float = Field(description="0 to 1, of the whole training.")
    seconds: float = Field(description="How long it has run (or ran).")
    eta_seconds: float | None = Field(description="Estimated seconds left, while running.")
    error: str | None


class ReadyOut(BaseModel):
    """Readiness: whether this process routes, with which model and operating point, and the training."""

    ready: bool
    error: str | None = Field(description="Why loading failed; the process then stays unready.")
    model: str | None = Field(description="The id of the model routing now.")
    model_kind: Literal["self-trained", "interim", "configured"] | None = Field(
        description="interim: the stock model until this folder version's trained model is ready."
    )
    model_note: str
    operating_point: str | None = Field(description="Where the threshold and confidences come from.")
    version_id: int | None = Field(
        None, description="The stored intents version routing (GET /v1/versions, `bot versions list`)."
    )
    intents_version: str | None
    intents: int | None
    training: TrainingOut


class HealthOut(BaseModel):
    """Liveness and what is loaded (answers from the first second of a start; `ready` says if it routes)."""

    status: Literal["ok", "degraded", "starting"]
    ready: bool
    model: str | None
    version_id: int | None = Field(
        None, description="The stored intents version routing (GET /v1/versions, `bot versions list`)."
    )
    intents_version: str | None
    intents: int | None
    database: str
    spooled: int
    spool_rejected: int = Field(
        description="Spooled turns the database refused when they were written back, kept in rejected.jsonl."
    )
    queues: dict[str, QueueOut] = Field(description="Routing and decision-writing queues of this process.")
    auth: Literal["keys", "open"]
    repeat_cache: RepeatCacheOut | None = Field(
        None, description="The repeated-text cache of this process (onnx backends; BOT_REPEAT_CACHE)."
    )
    training: TrainingOut
