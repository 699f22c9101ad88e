"""`bot review export` and `bot logs export`: analysts' command-line tools."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.app import IntentsOption, app, err, out, settings_for, user_errors
from bot.errors import InvalidInputError

review_app = typer.Typer(
    help="Analyst reviews: write corrections back into the intent YAML.", no_args_is_help=True
)
logs_app = typer.Typer(help="Routing logs.", no_args_is_help=True)
app.add_typer(review_app, name="review")
app.add_typer(logs_app, name="logs")


@review_app.command("export")
@user_errors
def review_export(intents: IntentsOption = None) -> None:
    """Append learned examples (reviews, resolved tickets) to the YAML file defining each intent."""
    from bot.insights.review_export import export_learned
    from bot.store.db import make_engine, upgrade

    settings = settings_for(intents)
    database = make_engine(settings.database_url)
    try:
        upgrade(database)
        result = export_learned(database, Path(settings.intents_dir))
    finally:
        database.dispose()
    for path, added in result.written.items():
        for intent, text in added:
            out.print(f"{path}: {intent}: + {text!r}", markup=False, highlight=False)
    if result.unknown_intents:
        _warn_unknown(result.unknown_intents, Path(settings.intents_dir))
    for intent, count in sorted(result.built_in.items()):
        err.print(
            f"note: {count} learned example(s) of the built-in '{intent}' stay in the database (it has no "
            f"file); define an intent named '{intent}' in the folder to export them into it",
            markup=False,
        )
    files = len(result.written)
    out.print(
        f"exported {result.count} example(s) into {files} file(s); "
        f"{result.already_present} already in the YAML",
        markup=False,
    )


def _warn_unknown(unknown: dict[str, int], folder: Path) -> None:
    """One warning per intent the examples were learned for that the folder no longer defines, with the
    names near it: usually an intent renamed since, whose examples belong to the new name."""
    from bot.content.intents import load_intents
    from bot.content.suggest import did_you_mean

    names = load_intents(folder).names
    for intent, count in sorted(unknown.items()):
        err.print(
            f"warning: {count} learned example(s) of '{intent}' not exported: no intent file defines it"
            f"{did_you_mean(intent, names)}",
            markup=False,
        )


class LogFormat(StrEnum):
    """Output formats of `bot logs export`."""

    csv = "csv"
    jsonl = "jsonl"


def parse_since(value: str | None) -> datetime | None:
    """A date or ISO datetime; without a zone it is read as UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(
            "--since", f"'{value}' is not a date like 2026-11-01 or 2026-11-01T08:00Z"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@logs_app.command("export")
@user_errors
def logs_export(
    format: Annotated[LogFormat, typer.Option("--format", help="csv or jsonl (one JSON object per line).")],
    since: Annotated[
        str | None, typer.Option(help="Only decisions from this date or time on (UTC if no zone).")
    ] = None,
    route: Annotated[
        str | None, typer.Option(help="Only this route: answer, clarify, retrieve, handoff.")
    ] = None,
    output: Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout.")] = None,
) -> None:
    """Decisions with their latest review, oldest first, for notebooks and spreadsheets."""
    from bot.config import get_settings
    from bot.insights.log_export import write_logs
    from bot.routing.policy import ROUTES
    from bot.store.db import make_engine

    if route is not None and route not in ROUTES:
        raise InvalidInputError("--route", f"'{route}' is not a route; allowed: {', '.join(ROUTES)}")
    database = make_engine(get_settings().database_url)
    try:
        if output is None:
            count = write_logs(database, sys.stdout, fmt=format.value, since=parse_since(since), route=route)
        else:
            with output.open("w", encoding="utf-8", newline="") as handle:
                count = write_logs(database, handle, fmt=format.value, since=parse_since(since), route=route)
    except OSError as exc:
        raise InvalidInputError("--out", f"cannot write {output}: {exc.strerror}") from None
    finally:
        database.dispose()
    err.print(f"{count} decision(s) exported", markup=False)
