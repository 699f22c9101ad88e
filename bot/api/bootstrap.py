"""The drafts page of `bot bootstrap` served by `bot serve` (docs/bootstrap.md, "Reviewing on the server").

    GET  /review/bootstrap               the page (public, like the other pages: its data needs a key)
    GET  /v1/admin/bootstrap             drafts.json of BOT_BOOTSTRAP_DIR, re-read on each request
    PUT  /v1/admin/bootstrap/reviewed    the reviewed drafts.yaml, validated, saved into BOT_BOOTSTRAP_DIR

Admin only: the saved file becomes intents once a person points BOT_INTENTS_DIR at the folder; the page
itself never changes what this server routes with (bot/insights/bootstrap_served.py refuses a drafts
folder that is the live or shadow one).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from bot.api.deps import SettingsDep, require
from bot.api.widget import PAGE_HEADERS, page
from bot.insights.bootstrap_served import MAX_REVIEWED_CHARS, read_drafts, save_reviewed

pages = APIRouter(tags=["pages"], include_in_schema=False)
api = APIRouter(prefix="/v1/admin/bootstrap", tags=["admin"], dependencies=[Depends(require())])
router = APIRouter()

PAGE_FILES = {
    "/review/bootstrap": "bootstrap/served.html",
    "/review/bootstrap/review.js": "bootstrap/review.js",
    "/review/bootstrap/served.js": "bootstrap/served.js",
    "/review/bootstrap/bootstrap.css": "bootstrap/bootstrap.css",
}


def _send(relative: str) -> Any:
    def send(request: Request) -> Response:
        return page(request, relative, PAGE_HEADERS)

    return send


for _path, _relative in PAGE_FILES.items():
    pages.add_api_route(_path, _send(_relative), methods=["GET", "HEAD"])


class DraftsOut(BaseModel):
    """The drafts folder's drafts.json and where the reviewed file goes."""

    folder: str
    summary: dict[str, Any]  # drafts.json as `bot bootstrap` wrote it (docs/bootstrap.md)
    saved_to: str
    saved_at: float | None = Field(None, description="When a reviewed drafts.yaml was last saved (Unix time)")


class ReviewedIn(BaseModel):
    """The reviewed drafts.yaml the page made."""

    model_config = ConfigDict(extra="forbid")

    yaml: str = Field(min_length=1, max_length=MAX_REVIEWED_CHARS)


class ReviewedOut(BaseModel):
    """Where the reviewed file was written, and what to run next."""

    saved_to: str
    intents: int
    next: str


@api.get("", response_model=DraftsOut)
def drafts(settings: SettingsDep) -> DraftsOut:
    """The drafts `bot bootstrap` wrote into BOT_BOOTSTRAP_DIR (404 with what to do when there are none)."""
    return DraftsOut.model_validate(read_drafts(settings))


@api.put("/reviewed", response_model=ReviewedOut)
def reviewed(body: ReviewedIn, settings: SettingsDep) -> ReviewedOut:
    """Save the reviewed drafts.yaml into the drafts folder once it loads as intents (422 with its line
    otherwise); nothing is loaded live."""
    path, count = save_reviewed(settings, body.yaml)
    return ReviewedOut(
        saved_to=str(path),
        intents=count,
        next=f"bot check --intents {path.parent}, then point BOT_INTENTS_DIR at it to serve it",
    )


router.include_router(pages)
router.include_router(api)
