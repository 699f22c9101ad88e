"""`bot check`'s reading of the intent files: every error in one run, not the first one only."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bot.errors import IntentFileError

if TYPE_CHECKING:
    from bot.content.intents import IntentSet


def load_checked(folder: Path) -> IntentSet:
    """The folder's intents; or, when they do not load, every error of its intent files on stderr, one
    `error: path:line: ...` line each, and exit code 2, so one run shows all there is to fix."""
    from bot.content.intent_errors import folder_errors
    from bot.content.intents import load_intents

    try:
        return load_intents(folder)
    except IntentFileError as first:
        errors = folder_errors(folder)
        if not any((e.path, e.line) == (first.path, first.line) for e in errors):
            errors.insert(0, first)  # one the files alone do not show (a folder limit, no intent files)
    for error in errors:
        sys.stderr.write(f"error: {error}\n")
    if len(errors) > 1:
        files = len({e.path for e in errors})
        sys.stderr.write(f"{len(errors)} errors in {files} file{'s' if files != 1 else ''} of {folder}\n")
    raise typer.Exit(2)
