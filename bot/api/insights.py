"""The analyst review page, the stats page and their JSON: stats and new-intent discovery."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["analysts"])
