"""The `bot` command: one module per command group, all registered on the Typer app in `bot.cli.app`."""

from __future__ import annotations

import logging
import os
import sys

from bot.cli import intents, review, serving, tuning, versions  # noqa: F401  (each registers its commands on `app`)
from bot.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the `bot` console script."""
    logging.basicConfig(level=os.environ.get("BOT_LOG_LEVEL", "WARNING"), stream=sys.stderr)
    app()
