"""The drafts page of `bot bootstrap` served by `bot serve` (docs/bootstrap.md, "Reviewing on the server").

    GET  /review/bootstrap               the page (public, served with the others by bot/api/widget.py)
    GET  /v1/admin/bootstrap             drafts.json of BOT_BOOTSTRAP_DIR, re-read on each request
    POST /v1/admin/bootstrap/made        the reviewed drafts.yaml the decisions make (nothing written)
    PUT  /v1/admin/bootstrap/reviewed    the same, saved as BOT_BOOTSTRAP_DIR/drafts.yaml

The page sends the decisions, never a file: the server makes drafts.yaml from drafts.json with
`bot bootstrap`'s writer, and a decisions list fits the request guard's body limit.

Admin only: the saved file becomes intents once a person points BOT_INTENTS_DIR at the folder; the page
itself never changes what this server routes with (bot/insights/bootstrap_served.py refuses a drafts
folder that is the live or shadow one).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from bot.api.deps import SettingsDep, require
from bot.insights.bootstrap_served import (
    MAX_DECISIONS,
    MAX_NAME_CHARS,
    Decision,
    make_reviewed,
    read_drafts,
    save_reviewed,
)

router = APIRouter(prefix="/v1/admin/bootstrap", tags=["admin"], dependencies=[Depends(require())])


class DraftsOut(BaseModel):
    """The drafts folder's drafts.json and where the reviewed file goes."""

    folder: str
    version: str = Field(description="drafts.json's version: send it back with the decisions")
    summary: dict[str, Any]  # drafts.json as `bot bootstrap` wrote it (docs/bootstrap.md)
    saved_to: str
    saved_at: float | None = Field(None, description="When a reviewed drafts.yaml was last saved (Unix time)")


class DecisionIn(BaseModel):
    """One draft's decision; drafts not named are undecided and left out."""

    model_config = ConfigDict(extra="forbid")

    draft: str = Field(min_length=1, max_length=MAX_NAME_CHARS, description="its name in drafts.json")
    decision: Literal["accept", "merge", "drop"]
    name: str | None = Field(None, max_length=MAX_NAME_CHARS, description="accept: the intent's name")
    into: str | None = Field(None, max_length=MAX_NAME_CHARS, description="merge: the draft it joins")


class ReviewedIn(BaseModel):
    """The reviewer's decisions on the drafts of one drafts.json version."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=64, description="`version` from GET /v1/admin/bootstrap")
    decisions: list[DecisionIn] = Field(max_length=MAX_DECISIONS)

    def parsed(self) -> list[Decision]:
        return [Decision(d.draft, d.decision, d.name, d.into) for d in self.decisions]


class MadeOut(BaseModel):
    """The reviewed drafts.yaml the decisions make, not written."""

    yaml: str
    intents: int


class ReviewedOut(BaseModel):
    """Where the reviewed file was written, and what to run next."""

    saved_to: str
    intents: int
    next: str


@router.get("", response_model=DraftsOut)
def drafts(settings: SettingsDep) -> DraftsOut:
    """The drafts `bot bootstrap` wrote into BOT_BOOTSTRAP_DIR (404 with what to do when there are none)."""
    return DraftsOut.model_validate(read_drafts(settings))


@router.post("/made", response_model=MadeOut)
def made(body: ReviewedIn, settings: SettingsDep) -> MadeOut:
    """The reviewed drafts.yaml the decisions make, checked to load as intents (422 with the reason
    otherwise, 409 when drafts.json changed since `version`); nothing is written."""
    text, count = make_reviewed(settings, body.version, body.parsed())
    return MadeOut(yaml=text, intents=count)


@router.put("/reviewed", response_model=ReviewedOut)
def reviewed(body: ReviewedIn, settings: SettingsDep) -> ReviewedOut:
    """Make the reviewed drafts.yaml from the decisions and save it into the drafts folder (409 naming the
    folder when it cannot be written); nothing is loaded live."""
    path, count = save_reviewed(settings, body.version, body.parsed())
    return ReviewedOut(
        saved_to=str(path),
        intents=count,
        next=f"bot check --intents {path.parent}, then point BOT_INTENTS_DIR at it to serve it",
    )
