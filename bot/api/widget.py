"""Pages for customers and agents: the embeddable chat widget, its demo page and the agent console."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["pages"], include_in_schema=False)
