"""A throwaway PostgreSQL database, for the tests that need one and for scripts/bench/load_test.py
(which puts the repository root on sys.path to import it): not part of the served package."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text


@contextmanager
def scratch_postgres(admin_url: str, prefix: str) -> Iterator[str]:
    """A URL to a new, empty PostgreSQL database beside `admin_url`'s, dropped (connections and all)
    afterwards: for tests and benchmarks that must not touch a real database."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin_url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
