"""Intents versions, routing diffs and shadow runs (bot.api.versions)."""

from __future__ import annotations

from datetime import datetime

from pydantic import AliasChoices, BaseModel, Field, model_validator


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
    at: datetime = Field(validation_alias=AliasChoices("at", "created_at"))


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


MAX_DIFF_MESSAGES = 20_000  # a diff re-encodes them all: bounded so that one diff stays a matter of seconds


class DiffIn(BaseModel):
    """A candidate: a folder on the server, or a stored version."""

    intents_dir: str | None = Field(None, max_length=1000, description="A folder on the server (admin only).")
    version_id: int | None = Field(
        None, ge=1, le=2**31 - 1, description="A stored version (GET /v1/versions)."
    )
    since: datetime | None = Field(None, description="Replay messages logged from then on (with a timezone).")
    limit: int = Field(
        10_000,
        ge=1,
        le=MAX_DIFF_MESSAGES,
        description="The newest N messages at most (replayed distinct texts).",
    )
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
    live_id: int | None = Field(None, description="The stored version live here (GET /v1/versions).")
    candidate_id: int | None = Field(
        None, description="The stored version the candidate is (None: a folder not stored as a version yet)."
    )
    candidate: str
    summary: str = Field(description="What the candidate changes in the intents, against the live version.")
    messages: int
    distinct_texts: int
    changed: int
    reviewed: int = Field(
        description="Replayed messages an analyst reviewed (of `messages`, not of `changed`)."
    )
    fixes: int
    breaks: int
    groups: list[DiffGroupOut]
    seconds: float


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
