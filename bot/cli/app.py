"""The `bot` Typer app and what every command module shares: options, consoles, one-line user errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from typer.core import TyperCommand, TyperGroup, TyperOption

from bot.config import Settings, get_settings
from bot.errors import BotError

if TYPE_CHECKING:
    from bot.routing.engine import Engine


def _quiet_flags(params: list[Any]) -> None:
    """An empty type column for options that take no value: Typer's rich help prints `--help <bool>`."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""


def _clean_help(command: Any, ctx: Any) -> None:
    """`_quiet_flags` for a command, its --help and, for a group, every command under it."""
    if isinstance(command, TyperCommand | TyperGroup):
        _quiet_flags([*command.params, command.get_help_option(ctx)])
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            _clean_help(sub, ctx)


class BotGroup(TyperGroup):
    """The root `bot` group: every command reached through it shows flags without a `<bool>` type."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        _quiet_flags(params)
        return params

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _clean_help(command, ctx)
        return command


app = typer.Typer(
    cls=BotGroup, add_completion=False, no_args_is_help=True, help="Customer-service intent router."
)
out = Console(soft_wrap=True)  # results only: scripts parse stdout
err = Console(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str) -> typer.Exit:
    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(2)


def user_errors(function: F) -> F:
    """Errors a user can act on become one line on stderr and exit code 2, never a traceback."""

    @wraps(function)
    def run(*call_args: Any, **call_kwargs: Any) -> Any:
        try:
            return function(*call_args, **call_kwargs)
        except BotError as exc:
            raise _fail(str(exc)) from None
        except ValidationError as exc:  # a BOT_* setting or option out of range
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise _fail(f"setting '{where}': {first['msg']} (got {first.get('input')!r})") from None

    return run  # type: ignore[return-value]


def command(*args: Any, **kwargs: Any) -> Callable[[F], F]:
    """`app.command` with `user_errors`."""

    def decorate(function: F) -> F:
        app.command(*args, **kwargs)(user_errors(function))
        return function

    return decorate


IntentsOption = Annotated[
    Path | None, typer.Option("--intents", help="Intents folder (default: BOT_INTENTS_DIR or ./intents).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on a single line.")]


LearnedOption = Annotated[
    bool | None,
    typer.Option(
        "--learned/--no-learned",
        help="Route with the examples learned from reviews and resolved tickets, read from BOT_DATABASE_URL, "
        "as `bot serve` does. Default: when BOT_DATABASE_URL is set or the default SQLite file exists.",
        show_default=False,
    ),
]


def settings_for(intents: Path | None, **overrides: object) -> Settings:
    return get_settings().with_overrides(intents_dir=intents, **overrides)


def engine_for(settings: Settings, *, progress: bool = False) -> Engine:
    """The engine `bot serve` routes with now (bot.runtime), without the database's learned examples: a
    folder version whose trained model is not in the cache yet is routed with the stock model, said on
    stderr, never trained here."""
    from bot.runtime import routing_engine  # heavy: torch and FAISS load only for commands that route

    return routing_engine(settings, progress=progress, say=lambda line: err.print(line, markup=False))


def database_configured() -> bool:
    """Whether there is a database to read: BOT_DATABASE_URL set (environment), or the default SQLite file
    that `bot serve` writes exists (reading must not create one)."""
    settings = get_settings()
    if "database_url" in settings.model_fields_set:
        return True
    from bot.store.db import adopt_legacy_database

    url = settings.database_url
    adopt_legacy_database(url)  # an install on the old default file reads it where `bot serve` will
    return url.startswith("sqlite:///") and Path(url.removeprefix("sqlite:///")).is_file()


def add_learned_examples(engine: Engine, settings: Settings, learned: bool | None) -> int:
    """Give `engine` the examples learned in the database, as a server has them; the number added.

    With `learned` None (the default) a database that cannot be read is a warning: routing still works,
    from the YAML alone. With --learned it is an error.
    """
    if learned is False or (learned is None and not database_configured()):
        return 0
    from sqlalchemy.exc import SQLAlchemyError

    from bot.store.db import make_engine, url_without_password
    from bot.store.examples import learned_examples

    where = url_without_password(settings.database_url)
    database = make_engine(settings.database_url)
    try:
        found = learned_examples(database)
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)  # the driver's own words, without SQLAlchemy's statement dump
        reason = (str(orig if orig is not None else exc).strip().splitlines() or ["unknown error"])[0]
        if learned:
            raise BotError(f"cannot read learned examples from {where}: {reason}") from None
        err.print(
            f"warning: learned examples not read from {where} ({reason}); routing with the YAML only",
            markup=False,
        )
        return 0
    finally:
        database.dispose()
    engine.use_extra_examples(lambda: found)
    return sum(len(e) for intent, e in found.items() if engine.state.intents.get(intent) is not None)
