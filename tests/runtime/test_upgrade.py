"""An upgrade with default settings finds what the previous releases left: the conversation store and the
cache folder (issue #29, item 1).

Before the package rename the default store was `./bot.db` at schema revision 0004; the rename moved the
default to `./bot.store.db` by accident. Both kinds of install must come back with their conversations
and learned examples, and with the embedding cache they wrote.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from bot.api import create_app
from bot.config import DEFAULT_DATABASE_URL, LEGACY_DATABASE_URL, Settings
from bot.routing.engine import Engine
from bot.runtime import Runtime
from bot.store.db import _alembic_config, current_revision, make_engine, upgrade
from tests.api_support import make_intents

PREVIOUS_RELEASE_REVISION = "0004"  # the newest migration before the package rename
CONVERSATION = "c0ffee" * 4
LEARNED = "my new card still has not shown up in the post"


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with an intents folder, used with every storage setting at its default."""
    for name in ("BOT_DATABASE_URL", "BOT_CACHE_DIR", "BOT_SPOOL_DIR", "BOT_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    make_intents(tmp_path / "intents")
    return tmp_path


def defaults() -> Settings:
    settings = Settings(intents_dir=Path("intents"))
    assert settings.database_url == DEFAULT_DATABASE_URL == "sqlite:///./bot.db"
    assert settings.cache_dir == Path(".bot_cache")
    return settings


def previous_release_database(url: str) -> None:
    """The store as the previous release left it: migrated to its newest revision, one conversation and
    one learned example in it, written with that revision's columns."""
    database = create_engine(url)
    config = _alembic_config()
    with database.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, PREVIOUS_RELEASE_REVISION)
    now = datetime.now(UTC).isoformat(sep=" ")
    with database.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO conversation (id, channel, metadata, status, fallback_streak, pending_options,"
                " created_at, updated_at) VALUES (:id, 'web', '{}', 'bot', 0, '[]', :now, :now)"
            ),
            {"id": CONVERSATION, "now": now},
        )
        connection.execute(
            text(
                "INSERT INTO learned_example (text_hash, text, intent, source, exported, created_at,"
                " updated_at) VALUES (:hash, :text, 'card_arrival', 'review', 0, :now, :now)"
            ),
            {"hash": hashlib.sha256(LEARNED.encode()).hexdigest(), "text": LEARNED, "now": now},
        )
    database.dispose()


def serves_what_was_there(runtime: Runtime) -> None:
    with TestClient(create_app(runtime=runtime)) as client:
        assert client.get(f"/v1/conversations/{CONVERSATION}/messages").status_code == 200
        assert client.get(f"/v1/conversations/{'f' * 24}/messages").status_code == 404
        intents = {i["name"]: i for i in client.get("/v1/intents").json()["intents"]}
        assert intents["card_arrival"]["learned_examples"] == [LEARNED]
    database = make_engine(DEFAULT_DATABASE_URL)
    try:
        assert current_revision(database) == upgrade(database)  # migrated to the newest schema
    finally:
        database.dispose()


def test_the_previous_release_store_and_cache_are_found_and_used(install: Path, bundled_encoder) -> None:
    previous_release_database("sqlite:///./bot.db")
    # the previous release's start embedded the folder into its default cache folder
    first = Engine(defaults(), encoder=bundled_encoder).load()
    assert first.embedded_texts > 0 and any((install / ".bot_cache").iterdir())

    engine = Engine(defaults(), encoder=bundled_encoder)
    assert engine.load().embedded_texts == 0  # every vector came from the cache it left
    serves_what_was_there(Runtime(defaults(), engine=engine))


def test_a_store_on_the_accidental_default_is_moved_to_the_default_file(
    install: Path, bundled_encoder, caplog: pytest.LogCaptureFixture
) -> None:
    legacy = install / LEGACY_DATABASE_URL.removeprefix("sqlite:///")
    previous_release_database(LEGACY_DATABASE_URL)
    engine = Engine(defaults(), encoder=bundled_encoder)
    engine.load()
    with caplog.at_level(logging.WARNING, logger="bot.store.db"):
        serves_what_was_there(Runtime(defaults(), engine=engine))
    assert not legacy.exists() and (install / "bot.db").is_file()
    assert "moved the conversation store" in caplog.text and "bot.db" in caplog.text


def test_a_store_at_the_default_file_wins_over_a_legacy_one(install: Path) -> None:
    """Both files present: the default one is used and the other left alone (nothing is overwritten)."""
    previous_release_database("sqlite:///./bot.db")
    legacy = install / "bot.store.db"
    legacy.write_bytes(b"not touched")
    database = make_engine(DEFAULT_DATABASE_URL)
    database.dispose()
    assert legacy.read_bytes() == b"not touched"


def test_a_chosen_database_url_is_never_moved(install: Path) -> None:
    legacy = install / "bot.store.db"
    legacy.write_bytes(b"not touched")
    make_engine(f"sqlite:///{install / 'elsewhere.db'}").dispose()
    assert legacy.read_bytes() == b"not touched" and not (install / "bot.db").exists()
