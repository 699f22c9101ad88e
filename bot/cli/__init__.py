"""The `bot` command: one module per command group, all registered on the Typer app in `bot.cli.app`."""

from __future__ import annotations

import logging
import os
import sys

from pydantic import ValidationError

from bot.cli import bootstrap, intents, review, serving, tuning, versions  # noqa: F401  (each registers its commands on `app`)
from bot.cli.app import app
from bot.config import get_settings

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the `bot` console script.

    The one place the process environment is set: the Hugging Face tokenizers' own thread pool is off
    (one thread, like every native pool here; docs/architecture.md), for this process and the server
    workers and children it starts. Encoder constructors leave the environment alone.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        level = get_settings().log_level
    except ValidationError:  # a bad BOT_* setting: the command reports it (bot.cli.app.user_errors)
        level = "WARNING"
    logging.basicConfig(level=level, stream=sys.stderr)
    app()
