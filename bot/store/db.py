"""Database engine, sessions and migrations (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, create_engine

from bot.config import DEFAULT_DATABASE_URL, LEGACY_DATABASE_URL
from bot.errors import ConfigError

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine for `url`; SQLite gets WAL and a busy timeout so concurrent writers wait.

    `hide_parameters`: errors and logs show statements without their values, which are customers' texts.
    The default file is looked for where an older release left it first (`adopt_legacy_database`).
    """
    adopt_legacy_database(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    try:
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise ConfigError(f"BOT_DATABASE_URL '{url_without_password(url)}' cannot be used: {exc}") from None


def url_without_password(url: str) -> str:
    """The URL without its password, for messages and logs: the one in `user:PASSWORD@` and every query
    parameter whose (percent-decoded) name says it holds a secret (`?password=`, `?sentinel_password=`,
    `?p%61ssword=`, `?token=`, ...) shown as `***`."""
    from sqlalchemy.engine import make_url

    url = _SECRET_PARAMETER.sub(lambda m: f"{m.group(1)}***" if _is_secret(m.group(2)) else m.group(), url)
    try:
        return make_url(url).render_as_string(hide_password=True).replace("%2A%2A%2A", "***")
    except Exception:  # not SQLAlchemy's form (e.g. a rate-limit storage URI): replace the password alone
        pass
    try:
        password = urlsplit(url).password
    except ValueError:  # unparsable: shown as its scheme only
        return url.split(":", 1)[0] + "://..."
    return url.replace(f":{password}@", ":***@") if password else url


def url_secrets(url: str) -> list[str]:
    """The secrets `url_without_password` hides, as written and decoded (to scrub them from a driver's
    error message that quotes them), longest first."""
    found = {m.group(3) for m in _SECRET_PARAMETER.finditer(url) if _is_secret(m.group(2)) and m.group(3)}
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        found.add(password)
    found |= {unquote_plus(secret) for secret in found}
    return sorted((s for s in found if s), key=len, reverse=True)


# name=value in a query string; a name is a secret's when its decoded, lower-cased form contains one of these
_SECRET_PARAMETER = re.compile(r"([?&;]([^=&#;]*)=)([^&#;]*)")
_SECRET_WORDS = ("pass", "pwd", "secret", "token", "key", "auth", "credential")


def _is_secret(name: str) -> bool:
    decoded = unquote_plus(name).lower()
    return any(word in decoded for word in _SECRET_WORDS)


def adopt_legacy_database(url: str) -> Path | None:
    """Move the SQLite file of `LEGACY_DATABASE_URL` to the default file when `url` is the default and only
    the legacy file exists: an install that ran while the default was wrong keeps its conversations.

    Its WAL and shared-memory files move with it. Returns the new path when a file was moved (logged).
    """
    if url != DEFAULT_DATABASE_URL:
        return None
    target = Path(DEFAULT_DATABASE_URL.removeprefix("sqlite:///"))
    legacy = Path(LEGACY_DATABASE_URL.removeprefix("sqlite:///"))
    if target.exists() or not legacy.is_file():
        return None
    for suffix in ("-wal", "-shm", "-journal"):  # the main file last: a crash midway leaves it findable
        side = legacy.with_name(legacy.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    legacy.rename(target)
    log.warning(
        "moved the conversation store %s to %s, the default file (%s was the default by mistake in one "
        "release); set BOT_DATABASE_URL to choose another",
        legacy.resolve(),
        target.resolve(),
        LEGACY_DATABASE_URL,
    )
    return target


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


MIGRATION_LOCK = 774_201  # PostgreSQL advisory-lock key: replicas starting together migrate one at a time


def upgrade(engine: Engine) -> str:
    """Bring the schema to the newest migration; returns the revision now in place.

    Several replicas may start at once: on PostgreSQL an advisory lock serialises them; elsewhere a
    replica that loses the race retries and then finds the schema already current.
    """
    config = _alembic_config()
    for attempt in range(3):
        try:
            with engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
            break
        except SQLAlchemyError as exc:
            if attempt == 2 or "already exists" not in str(exc):
                raise ConfigError(
                    f"cannot migrate database {url_without_password(str(engine.url))}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}"
                ) from None
            time.sleep(0.5)
    return ScriptDirectory.from_config(config).get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def ping(engine: Engine) -> str:
    """'ok', or what is wrong with the database connection."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return "ok"
    except (
        SQLAlchemyError
    ) as exc:  # the detail (hosts, users) goes to the log, not to unauthenticated callers
        log.warning("database ping failed: %s", str(exc).splitlines()[0])
        return f"error: {exc.__class__.__name__}"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error, so nothing is half-written."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
