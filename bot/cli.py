"""The `bot` command: check, route and evaluate intents (and, as the project grows, serve them)."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from bot.config import Settings, get_settings
from bot.errors import BotError
from bot.spool import Spool

if TYPE_CHECKING:
    from bot.engine import Engine

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
    from bot.engine import Engine  # heavy: torch and FAISS load only for commands that route

    engine = Engine(settings, progress=progress)
    engine.load()
    return engine


@command()
def check(intents: IntentsOption = None) -> None:
    """Validate the intent files and knowledge base; exit 0 when valid, 2 otherwise."""
    from bot.intents import load_intents
    from bot.knowledge import load_knowledge

    settings = settings_for(intents)
    intent_set = load_intents(settings.intents_dir)
    passages = load_knowledge(settings.intents_dir / "knowledge")
    handoff = sum(1 for i in intent_set.intents if i.spec.handoff)
    files = len({i.path for i in intent_set.intents})
    out.print(
        f"ok: {len(intent_set.intents)} intents in {files} files ({handoff} always hand off), "
        f"{len(passages)} knowledge passages; version {intent_set.version}"
    )


@command()
def route(
    text: Annotated[str, typer.Argument(help="The customer's message.")],
    intents: IntentsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Route one message and print the decision."""
    engine = engine_for(settings_for(intents))
    decision = engine.route(text)
    if as_json:
        out.print_json(json.dumps(asdict(decision)), indent=None)
        return
    out.print(
        f"[bold]{decision.route}[/bold]  intent={decision.intent}  confidence={decision.confidence:.2f}"
    )
    out.print(f"answer: {decision.answer}", markup=False)
    out.print(f"reason: {decision.reason}", markup=False)
    table = Table("intent", "score", "confidence", title="candidates")
    for candidate in decision.candidates:
        table.add_row(candidate.intent, f"{candidate.score:.3f}", f"{candidate.confidence:.3f}")
    out.print(table)


LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    intents: IntentsOption = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes (each loads the model).")] = 1,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            help="Proxies whose X-Forwarded-For is trusted (comma-separated, or '*'); rate limits per address "
            "need the real client address behind a load balancer."
        ),
    ] = "127.0.0.1,::1",
) -> None:
    """Run the HTTP API under uvicorn; the model and indexes load once at start-up."""
    import uvicorn

    settings = settings_for(intents)
    keys = settings.keys_by_role()
    if not keys and host not in LOCAL_HOSTS:
        raise BotError(
            f"refusing to listen on {host} without API keys: set BOT_API_KEYS='widget:KEY,agent:KEY,...' "
            "or listen on 127.0.0.1"
        )
    # fail fast with one clear line, before uvicorn starts, on a bad folder, model or database
    from bot.db import make_engine, upgrade
    from bot.engine import Engine

    engine = Engine(settings)
    engine.load()
    database = make_engine(settings.database_url)
    upgrade(database)
    database.dispose()
    if not keys:
        sys.stderr.write(
            "warning: no API keys configured (BOT_API_KEYS): every endpoint is open, localhost only\n"
        )
    if workers > 1:
        os.environ["BOT_INTENTS_DIR"] = str(settings.intents_dir)
        uvicorn.run(
            "bot.api.main:app",
            host=host,
            port=port,
            workers=workers,
            log_level="info",
            forwarded_allow_ips=forwarded_allow_ips,
        )
        return
    from bot.api import create_app

    app_ = create_app(settings, engine=engine)  # bad rate-limit settings fail here, as one line
    uvicorn.run(app_, host=host, port=port, log_level="info", forwarded_allow_ips=forwarded_allow_ips)


db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
@user_errors
def db_upgrade() -> None:
    """Apply database migrations up to the newest schema."""
    from bot.db import make_engine, redact, upgrade

    settings = get_settings()
    revision = upgrade(make_engine(settings.database_url))
    out.print(f"database {redact(settings.database_url)} is at revision {revision}")


spool_app = typer.Typer(help="Chat turns written while the database was down.", no_args_is_help=True)
app.add_typer(spool_app, name="spool")


def _spool() -> Spool:
    settings = get_settings()
    return Spool(settings.spool_dir or settings.cache_dir / "spool")


@spool_app.command("status")
@user_errors
def spool_status(as_json: JsonOption = False) -> None:
    """Turns waiting for the database, and turns set aside because it refused them."""
    spool = _spool()
    found = {"pending": spool.pending(), "rejected": spool.rejected(), "folder": str(spool.folder)}
    if as_json:
        sys.stdout.write(json.dumps(found) + "\n")
        return
    out.print(f"{found['pending']} turns waiting, {found['rejected']} set aside (in {spool.rejected_path})")


@spool_app.command("requeue")
@user_errors
def spool_requeue() -> None:
    """Put set-aside turns back in the spool; a running server writes them on its next drain."""
    spool = _spool()
    requeued, kept = spool.requeue_rejected()
    out.print(
        f"requeued {requeued} turns; {kept} torn lines stay in {spool.rejected_path}"
        if kept
        else f"requeued {requeued} turns"
    )


# Commands defined in sibling modules register themselves on `app` when imported.
from bot import cli_eval, cli_review  # noqa: E402, F401


def main() -> None:
    """Entry point of the `bot` console script."""
    logging.basicConfig(level=os.environ.get("BOT_LOG_LEVEL", "WARNING"), stream=sys.stderr)
    app()


if __name__ == "__main__":
    main()
