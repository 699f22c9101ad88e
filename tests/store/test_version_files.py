"""Stored version file names stay inside their folder (#28 item 2): refused when a version is stored and
again when one is written (`bot versions checkout`, activation's materialised copy), never through links."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from bot.errors import BotError, InvalidInputError
from bot.store import versions
from bot.store.db import make_engine, upgrade
from bot.store.models import IntentsVersion
from tests.api_support import temporary_database

BANK = "intents:\n  - name: card_arrival\n    description: Where my card is.\n"
BAD_NAMES = [
    "../../x.yaml",
    "/tmp/absolute-x.yaml",
    "knowledge/../../../x.md",
    "knowledge/../x.yaml",
    "..\\x.yaml",
    "knowledge/sub/x.md",
    "./bank.yaml",
    "bank.yaml\u200b/../x.yaml",
    "bank.py",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with temporary_database(request.param, tmp_path) as url:
        yield url


def raw_version(url: str, files: dict[str, str], hash: str = "ab" * 32) -> int:
    """A version row inserted as it is, past `versions.store` (as an older release or a hand edit might)."""
    database = make_engine(url)
    try:
        upgrade(database)
        row = IntentsVersion(
            hash=hash,
            intents_version="v",
            model_id="m",
            files=files,
            specs={},
            summary="raw",
            loaded_by="test",
        )
        with Session(database, expire_on_commit=False) as session:
            session.add(row)
            session.commit()
        assert row.id is not None
        return row.id
    finally:
        database.dispose()


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_a_bad_name_is_refused_when_a_version_is_stored(database_url: str, tmp_path: Path, bad: str) -> None:
    files = {"bank.yaml": BANK, bad: BANK}
    found = versions.Snapshot(
        files=files, model_id="m", hash=versions.content_hash(files, "m"), intents_version="v", specs={}
    )
    database = make_engine(database_url)
    try:
        upgrade(database)
        with pytest.raises(InvalidInputError) as refused:
            versions.store(database, found, "test")
        assert repr(bad) in str(refused.value)
        assert versions.listing(database)[1] == 0
    finally:
        database.dispose()


def test_a_stored_bad_name_is_refused_on_checkout_and_materialise(database_url: str, tmp_path: Path) -> None:
    work = tmp_path / "deep" / "er" / "work"
    folder = work / "intents"
    cache = work / "cache"
    version_id = raw_version(
        database_url,
        {
            "bank.yaml": BANK,
            "../../escaped.yaml": "x",
            f"{tmp_path / 'absolute.yaml'}": "x",
            "knowledge/../../../escaped.md": "x",
        },
    )
    database = make_engine(database_url)
    try:
        version = versions.get(database, version_id)
    finally:
        database.dispose()
    for write in (
        lambda: versions.checkout(version, folder, force=True),
        lambda: versions.materialize(version, cache),
    ):
        with pytest.raises(InvalidInputError, match=r"escaped|absolute"):
            write()
    assert not list(tmp_path.rglob("escaped*")) and not (tmp_path / "absolute.yaml").exists()
    assert files_under(folder) == [] and not list(cache.rglob("*.yaml"))


def test_a_malformed_hash_never_names_the_cache_folder(tmp_path: Path) -> None:
    version = IntentsVersion(
        id=7, hash="../../../out", intents_version="v", model_id="m", files={"bank.yaml": BANK}
    )
    with pytest.raises(InvalidInputError, match="malformed hash"):
        versions.materialize(version, tmp_path / "cache")
    assert files_under(tmp_path) == []


def test_checkout_never_writes_through_a_link_in_the_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "knowledge").mkdir(parents=True)
    (outside / "knowledge" / "theirs.md").write_text("keep me", encoding="utf-8")
    (outside / "bank.yaml").write_text("keep me too", encoding="utf-8")
    version = IntentsVersion(
        id=1,
        hash="cd" * 32,
        intents_version="v",
        model_id="m",
        files={"bank.yaml": BANK, "knowledge/faq.md": "# faq"},
    )
    # knowledge/ is a link to another folder: neither written into nor deleted from
    folder = tmp_path / "linked-knowledge"
    folder.mkdir()
    (folder / "knowledge").symlink_to(outside / "knowledge", target_is_directory=True)
    with pytest.raises(BotError, match="symbolic link"):
        versions.checkout(version, folder, force=True)
    assert files_under(outside) == ["bank.yaml", "knowledge", "knowledge/theirs.md"]
    assert (outside / "knowledge" / "theirs.md").read_text(encoding="utf-8") == "keep me"
    assert not (folder / "bank.yaml").exists()  # refused before anything was written
    # bank.yaml is a link to a file outside: never overwritten
    folder = tmp_path / "linked-file"
    folder.mkdir()
    (folder / "bank.yaml").symlink_to(outside / "bank.yaml")
    with pytest.raises(BotError, match="symbolic link"):
        versions.checkout(version, folder, force=True)
    assert (outside / "bank.yaml").read_text(encoding="utf-8") == "keep me too"
    # a plain folder is written as before
    plain = versions.checkout(version, tmp_path / "plain")
    assert plain.written == ["bank.yaml", "knowledge/faq.md"]
    assert versions.folder_files(tmp_path / "plain") == version.files


def test_bot_versions_checkout_refuses_a_stored_bad_name(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    version_id = raw_version(
        url, {"bank.yaml": BANK, "../../escaped.yaml": "x", "knowledge/../../../escaped.md": "x"}
    )
    folder = tmp_path / "a" / "b" / "intents"
    done = subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", "versions", "checkout", str(version_id),
         "--intents", str(folder), "--force"],
        capture_output=True,
        text=True,
        env={**os.environ, "BOT_DATABASE_URL": url, "BOT_CACHE_DIR": str(tmp_path / "cache")},
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "escaped" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not list(tmp_path.rglob("escaped*")) and files_under(folder) == []
