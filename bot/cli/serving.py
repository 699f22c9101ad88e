"""`bot serve`, `bot db` and `bot spool`: running the HTTP API and looking after its storage."""

from __future__ import annotations

import contextlib
import functools
import json
import logging.config
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.chat.spool import Spool
from bot.cli.app import IntentsOption, JsonOption, app, command, out, settings_for, user_errors
from bot.config import Settings, get_settings
from bot.errors import BotError

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
WORKER_PING_SECONDS = 60


@command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    intents: IntentsOption = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes (each loads the model).")] = 1,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Proxies (addresses or networks, comma-separated, or '*') whose X-Forwarded-For names the "
            "client; default BOT_FORWARDED_ALLOW_IPS, empty: trust no proxy. Behind a load balancer, name it "
            "here so limits per client address see the real client.",
            show_default=False,
        ),
    ] = None,
    drafts: Annotated[
        Path | None,
        typer.Option(
            help="A folder `bot bootstrap --out` wrote: review its drafts at /review/bootstrap and save the "
            "reviewed drafts.yaml there (BOT_BOOTSTRAP_DIR; never the intents folder being served).",
            show_default=False,
        ),
    ] = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Reload the intents folder when one of its files changes (development; one worker): a "
            "broken edit is reported and the live intents stay.",
        ),
    ] = False,
) -> None:
    """Run the HTTP API under uvicorn; the model and indexes load once at start-up (bot.runtime)."""
    import uvicorn

    settings = settings_for(intents, forwarded_allow_ips=forwarded_allow_ips, bootstrap_dir=drafts)
    options = _uvicorn_options(settings, host, port)
    if watch and workers > 1:
        raise BotError("--watch reloads one process: leave --workers at 1 (development), or drop --watch")
    if workers == 1:
        from bot.api import create_app
        from bot.runtime import Runtime

        # a bad folder, database or model fails here as one line, before uvicorn starts
        runtime = Runtime(settings, watch=watch).open()
        _warn_if_open(settings)
        # listens at once: the folder loads (and its model trains) in the background, /readyz says when
        uvicorn.run(create_app(runtime=runtime, wait_until_ready=False), **options)
        return
    _serve_workers(settings, workers, options)


def _uvicorn_options(settings: Settings, host: str, port: int) -> dict[str, Any]:
    """uvicorn's options for `serve`; refuses a public address without API keys."""
    if not settings.keys_by_role() and host not in LOCAL_HOSTS:
        raise BotError(
            f"refusing to listen on {host} without API keys: set BOT_API_KEYS='widget:KEY,agent:KEY,...' "
            "or listen on 127.0.0.1"
        )
    # X-Forwarded-For is the app's to read (bot.api.callers: only from BOT_FORWARDED_ALLOW_IPS, addresses
    # validated), so uvicorn's own reading, which trusts 127.0.0.1 by default, is off
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "info",
        "proxy_headers": False,
        "access_log": settings.access_log,
    }
    _use_log_format(settings, options)
    return options


def _use_log_format(settings: Settings, options: dict[str, Any]) -> None:
    """BOT_LOG_FORMAT=json from here on, uvicorn's own lines (in every worker) included (bot.runtime.logs)."""
    from bot.runtime.logs import log_config

    config = log_config(settings.log_level, settings.log_format)
    if config is not None:
        logging.config.dictConfig(config)
        options["log_config"] = config


def _warn_if_open(settings: Settings) -> None:
    if not settings.keys_by_role():
        sys.stderr.write(
            "warning: no API keys configured (BOT_API_KEYS): every endpoint is open, localhost only\n"
        )


def _serve_workers(settings: Settings, workers: int, options: dict[str, Any]) -> None:
    """`workers` processes on one socket, each building the app from these settings (pickled to it by
    uvicorn's supervisor, so nothing goes through the environment); the folder and database are checked
    here first, so a typo is one line, not one traceback per worker."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from bot.api import create_app
    from bot.runtime import check_folder
    from bot.runtime.metrics_workers import multiprocess_folder
    from bot.store.db import make_engine, upgrade

    check_folder(Path(settings.intents_dir))
    database = make_engine(settings.database_url)
    upgrade(database)
    database.dispose()
    create_app(settings)  # bad keys, limits or proxies fail here, as one line
    _warn_if_open(settings)
    # each worker listens at once and loads in the background; a folder's training runs once, in the
    # worker that takes its lock first, and the others pick the model up (bot.runtime.training)
    factory = functools.partial(create_app, settings, wait_until_ready=False)
    # uvicorn kills a worker that does not answer its supervisor's ping within this many seconds (default 5);
    # a worker answers only once it has imported the app, which took 7 s on 2 busy cores: workers were
    # killed and restarted forever
    config = uvicorn.Config(
        factory, factory=True, workers=workers, timeout_worker_healthcheck=WORKER_PING_SECONDS, **options
    )
    # the workers' metrics in files one scrape reads together (prometheus-client's multiprocess mode)
    with multiprocess_folder() if settings.metrics else contextlib.nullcontext():
        Multiprocess(config, sockets=[config.bind_socket()]).run()


db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
@user_errors
def db_upgrade() -> None:
    """Apply database migrations up to the newest schema."""
    from bot.store.db import make_engine, upgrade, url_without_password

    settings = get_settings()
    revision = upgrade(make_engine(settings.database_url))
    out.print(f"database {url_without_password(settings.database_url)} is at revision {revision}")


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
