"""The `bot` command: one module per command group, all registered on the Typer app in `bot.cli.app`."""

from __future__ import annotations

import logging
import sys

from pydantic import ValidationError

from bot.cli import intents, review, serving, tuning, versions  # noqa: F401  (each registers its commands on `app`)
from bot.cli.app import app
from bot.config import get_settings

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the `bot` console script."""
    try:
        level = get_settings().log_level
    except ValidationError:  # a bad BOT_* setting: the command reports it (bot.cli.app.user_errors)
        level = "WARNING"
    logging.basicConfig(level=level, stream=sys.stderr)
    app()
