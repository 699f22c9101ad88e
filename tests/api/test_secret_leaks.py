"""Small leaks (#28 item 6): a storage URL's `?password=` in the start-up error, `?k%65y=` in the access log."""

from __future__ import annotations

import pytest

from bot.api.access_log import redact_path
from bot.api.guard import RateLimits
from bot.config import Settings
from bot.errors import ConfigError
from bot.store.db import url_without_password


@pytest.mark.parametrize(
    "uri",
    [
        "memcached://127.0.0.1:11211?password=hunter2",
        "redis://:hunter2@127.0.0.1:6379/0?password=hunter2",
        "redis+sentinel://127.0.0.1:26379/mymaster?sentinel_password=hunter2&db=0",
        "nosuch://127.0.0.1?p%61ssword=hunter2",
        "nosuch://127.0.0.1?token=hunter%32",
    ],
)
def test_a_bad_rate_limit_storage_never_prints_a_query_password(uri: str) -> None:
    try:
        RateLimits(Settings(rate_limit_storage=uri))
    except ConfigError as exc:
        assert "hunter" not in str(exc) and "***" in str(exc), str(exc)
    else:  # the driver is installed: nothing is printed at all
        assert not uri.startswith("nosuch")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://bot@db/bot?password=hunter2&sslmode=require", "?password=***&sslmode=require"),
        ("postgresql+psycopg://bot:hunter2@db/bot", "bot:***@db/bot"),
        ("redis://h:6379?db=1", "redis://h:6379?db=1"),
    ],
)
def test_database_urls_hide_query_passwords_too(url: str, shown: str) -> None:
    assert "hunter2" not in url_without_password(url) and shown in url_without_password(url)


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/demo?k%65y=w-secret", "/demo?k%65y=[redacted]"),
        ("/demo?lang=en&%4B%45%59=w-secret", "/demo?lang=en&%4B%45%59=[redacted]"),
        ("/demo?api%5Fkey=w-secret&x=1", "/demo?api%5Fkey=[redacted]&x=1"),
        ("/v1/conversation%73/0123abcd/messages", "/v1/conversation%73/[conversation]/messages"),
        ("/demo?lang=en", "/demo?lang=en"),
    ],
)
def test_the_access_log_decodes_names_before_redacting(path: str, shown: str) -> None:
    assert redact_path(path) == shown
