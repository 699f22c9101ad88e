"""`bot diff`, `bot versions list` and `bot versions checkout`: change intents safely."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.app import IntentsOption, JsonOption, app, command, err, out, settings_for, user_errors
from bot.errors import InvalidInputError

if TYPE_CHECKING:
    from bot.tuning.diff import DiffReport

versions_app = typer.Typer(
    help="Stored intents versions: list them, write one back to disk.", no_args_is_help=True
)
app.add_typer(versions_app, name="versions")

SinceOption = Annotated[
    datetime | None,
    typer.Option(
        "--since",
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"],
        help="Replay messages logged from this day or time on (UTC).",
    ),
]


@command()
def diff(
    intents: Annotated[Path, typer.Option("--intents", help="The candidate intents folder.")],
    since: SinceOption = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1_000_000, help="The newest N messages at most.")
    ] = 10_000,
    examples: Annotated[
        int, typer.Option("--examples", min=1, max=50, help="Example messages per group.")
    ] = 3,
    as_json: JsonOption = False,
) -> None:
    """Replay logged customer messages under the live version and a candidate folder; show every decision
    that would change, grouped, and what it does to reviewed messages. Nothing is written to the logs.

    The live version is the one the servers route by (the newest activation in BOT_DATABASE_URL), or
    BOT_INTENTS_DIR when no server has recorded one yet.
    """
    if not intents.is_dir():
        raise InvalidInputError("--intents", f"'{intents}' is not a folder")
    where, summary, report = _replay(
        intents, since.replace(tzinfo=UTC) if since is not None else None, limit, examples
    )
    if as_json:
        found_json = {"live": where, "candidate": str(intents), "summary": summary, **asdict(report)}
        sys.stdout.write(json.dumps(found_json, default=str) + "\n")
        return
    _print_diff(where, intents, summary, report)


def _replay(intents: Path, since: datetime | None, limit: int, examples: int) -> tuple[str, str, DiffReport]:
    """Route the logged messages under the live version and the candidate folder: where the live version
    came from, what the candidate changes in the intents, and the routing diff."""
    from bot.runtime import routing_engine
    from bot.store import versions
    from bot.store.db import make_engine, upgrade
    from bot.store.examples import learned_examples
    from bot.tuning.diff import routing_diff

    settings = settings_for(None)
    database = make_engine(settings.database_url)
    try:
        upgrade(database)
        current = versions.live(database)
        folder = (
            versions.materialize(current.version, settings.cache_dir) if current else settings.intents_dir
        )
        where = f"version {current.version.id}" if current else str(folder)
        engine = routing_engine(
            settings.with_overrides(intents_dir=folder),
            learned=learned_examples(database),
            say=lambda line: err.print(line, markup=False),
        )
        found = versions.snapshot(intents, engine.model_id)
        summary = versions.summarize(current.version if current else None, found)
        candidate, _ = engine.candidate(intents)
        report = routing_diff(
            database, engine.encoder, engine.state, candidate, since=since, limit=limit, examples=examples
        )
    finally:
        database.dispose()
    return where, summary, report


def _print_diff(where: str, intents: Path, summary: str, report: DiffReport) -> None:
    """The diff for a reader: totals, then each (before -> after) group with its example messages."""
    # a version is named by its stored id, as everywhere (the routing state's hash also covers learned
    # examples, so beside the id it read as a second, different name for the same version; --json has it)
    out.print(f"live: {where}; candidate: {intents}", markup=False)
    out.print(f"candidate changes: {summary}", markup=False)
    out.print(
        f"replayed {report.messages} messages ({report.distinct_texts} distinct) in {report.seconds:.1f}s: "
        f"{report.changed} would be decided differently",
        markup=False,
    )
    if report.reviewed:
        out.print(
            f"of {report.reviewed} reviewed: fixes {report.fixes} reviewed errors, breaks {report.breaks} "
            "decisions reviewed as correct",
            markup=False,
        )
    for group in report.groups:
        effect = f"  (fixes {group.fixes}, breaks {group.breaks})" if group.fixes or group.breaks else ""
        out.print(f"{group.count:6d}  {group.before} -> {group.after}{effect}", markup=False)
        for example in group.examples:
            mark = f" [{example.effect}]" if example.effect else ""
            out.print(
                f"          #{example.decision_id} {example.text!r}{mark}", markup=False, highlight=False
            )


@versions_app.command("list")
@user_errors
def versions_list(
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 20, as_json: JsonOption = False
) -> None:
    """Stored intents versions, newest first; '*' marks the live one."""
    from bot.store import versions
    from bot.store.db import make_engine, upgrade

    database = make_engine(settings_for(None).database_url)
    try:
        upgrade(database)
        rows, total = versions.listing(database, limit=limit)
    finally:
        database.dispose()
    if as_json:
        items = [
            {
                "id": r.version.id,
                "hash": r.version.hash,
                "intents_version": r.version.intents_version,
                "model_id": r.version.model_id,
                "intents": len(r.version.specs),
                "summary": r.version.summary,
                "loaded_by": r.version.loaded_by,
                "created_at": r.version.created_at.isoformat(),
                "live": r.live,
            }
            for r in rows
        ]
        sys.stdout.write(json.dumps({"items": items, "total": total}) + "\n")
        return
    if not rows:
        err.print("no intents versions stored yet: a server records one when it starts")
        return
    for r in rows:
        v = r.version
        mark = "*" if r.live else " "
        out.print(
            f"{mark} {v.id:4d}  {v.created_at:%Y-%m-%d %H:%M}  intents {v.intents_version}  {len(v.specs)} intents  "
            f"by {v.loaded_by}: {v.summary}",
            markup=False,
            highlight=False,
        )
    if total > len(rows):
        out.print(f"({total - len(rows)} older versions not shown; --limit)", markup=False)


@versions_app.command("checkout")
@user_errors
def versions_checkout(
    version_id: Annotated[int, typer.Argument(min=1, help="The version (bot versions list).")],
    intents: IntentsOption = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite and delete files that differ.")] = False,
) -> None:
    """Write a stored version's files into a folder (BOT_INTENTS_DIR by default), so the folder on disk
    matches what is live after a rollback; files the version lacks are deleted (with --force)."""
    from bot.store import versions
    from bot.store.db import make_engine, upgrade

    settings = settings_for(intents)
    database = make_engine(settings.database_url)
    try:
        upgrade(database)
        version = versions.get(database, version_id)
    finally:
        database.dispose()
    done = versions.checkout(version, Path(settings.intents_dir), force=force)
    for name in done.written:
        out.print(f"wrote {settings.intents_dir / name}", markup=False, highlight=False)
    for name in done.removed:
        out.print(f"deleted {settings.intents_dir / name}", markup=False, highlight=False)
    out.print(
        f"{settings.intents_dir} is version {version.id} (intents {version.intents_version}): "
        f"{len(done.written)} written, {len(done.removed)} deleted, {len(done.unchanged)} unchanged",
        markup=False,
        highlight=False,
    )
