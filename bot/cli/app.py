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

from bot.config import Settings, get_settings
from bot.errors import BotError

if TYPE_CHECKING:
    from bot.routing.engine import Engine

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Customer-service intent router.")
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


def settings_for(intents: Path | None, **overrides: object) -> Settings:
    return get_settings().with_overrides(intents_dir=intents, **overrides)


def engine_for(settings: Settings, *, progress: bool = False) -> Engine:
    from bot.routing.engine import Engine  # heavy: torch and FAISS load only for commands that route
    from bot.tuning.self_training import ensure_self_trained

    engine = Engine(ensure_self_trained(settings), progress=progress)
    engine.load()
    return engine
