"""A reload records exactly the version it loaded, even when the folder is edited while it loads (#28)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine as Database

from bot.config import Settings
from bot.routing.engine import Engine
from bot.store import versions
from bot.store.db import make_engine, upgrade
from bot.store.version_sync import VersionSync
from tests.conftest import write
from tests.routing.test_self_calibration import HOME


def database_at(tmp_path: Path) -> Database:
    database = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    upgrade(database)
    return database


def test_an_edit_saved_while_a_reload_loads_is_not_recorded_as_what_routes(
    tmp_path: Path, cache_dir: Path, bundled_encoder
) -> None:
    folder = write(tmp_path / "intents" / "home.yaml", HOME).parent
    settings = Settings(intents_dir=folder, cache_dir=cache_dir)
    engine = Engine(settings, encoder=bundled_encoder)
    database = database_at(tmp_path)
    sync = VersionSync(engine, database, settings)
    sync.open()

    load = engine.load
    edits = [HOME.replace("switched on.", "switched on, or brighter.")]

    def load_then_someone_saves(*args: object, **kwargs: object) -> object:
        result = load(*args, **kwargs)  # type: ignore[arg-type]
        if edits:  # the editor saves between the load and the version being recorded
            write(folder / "home.yaml", edits.pop())
        return result

    engine.load = load_then_someone_saves  # type: ignore[method-assign]
    loaded = sync.reload("test")
    recorded = versions.parse(loaded.version.files, folder)
    assert recorded.version == engine.state.intents.version  # what routes is what was recorded
    assert "or brighter" in (folder / "home.yaml").read_text() and "or brighter" in str(loaded.version.files)
    database.dispose()
