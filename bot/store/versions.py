"""Intents versions: every folder a server loads, stored whole, and which one is live (newest activation).

A version is the folder's files (intent YAML, knowledge, tone.yaml, calibration.yaml) and the model id it
was loaded with; its `hash` covers both, so loading the same folder again finds the same row. Which
version is live is the newest `IntentsActivation` row: replicas poll it (`activation_marker`) the way
they poll learned examples, so activating a version on one makes all of them route by it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine as Database
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.content.intents import IntentSet, load_intents
from bot.errors import IntentFileError, InvalidInputError, NotFoundError
from bot.routing.calibration import base_model_id
from bot.store.models import IntentsActivation, IntentsVersion
from bot.store.version_files import (
    KNOWLEDGE,
    KNOWLEDGE_SUFFIXES,
    check_names,
    folder_files,
    refuse_links,
    remove_files,
    write_files,
)

__all__ = ["KNOWLEDGE", "KNOWLEDGE_SUFFIXES", "check_names", "folder_files", "write_files"]

# a version's hash (sha256 hex), whose first 16 characters name its cached folder: one plain folder name
_HASH = re.compile(r"[A-Za-z0-9_-]{1,128}")
SPEC_FIELDS = ("description", "title", "examples", "answer", "threshold", "handoff", "tags")


@dataclass(frozen=True)
class Snapshot:
    """A folder's files as read at one moment, with the intents they define."""

    files: dict[str, str]
    model_id: str
    hash: str
    intents_version: str
    specs: dict[str, dict[str, Any]]


def content_hash(files: dict[str, str], model_id: str) -> str:
    """sha256 over the model id and every (path, text), in path order."""
    digest = hashlib.sha256(model_id.encode())
    for name in sorted(files):
        digest.update(b"\0" + name.encode() + b"\0" + files[name].encode())
    return digest.hexdigest()


def parse(files: dict[str, str], where: Path | None = None) -> IntentSet:
    """The intents `files` define (validated like a folder on disk); errors name the file under `where`
    (the folder they were read from), not the scratch copy they were parsed in."""
    with tempfile.TemporaryDirectory(prefix="bot-version-") as tmp:
        write_files(files, Path(tmp))
        try:
            return load_intents(Path(tmp))
        except IntentFileError as exc:
            if where is None:
                raise
            inside = exc.path.relative_to(tmp) if exc.path.is_relative_to(tmp) else Path()
            raise type(exc)(where / inside, exc.line, exc.message) from None


def snapshot(folder: Path, model_id: str) -> Snapshot:
    """Read `folder` now: its files, their hash with `model_id`, and the intents they define."""
    files = folder_files(folder)
    intents = parse(files, Path(folder))
    return Snapshot(
        files=files,
        model_id=model_id,
        hash=content_hash(files, model_id),
        intents_version=intents.version,
        specs={i.name: i.spec.model_dump(mode="json", include=set(SPEC_FIELDS)) for i in intents.intents},
    )


def summarize(before: IntentsVersion | None, after: Snapshot) -> str:
    """One line: intents added, removed and changed (which fields), other files changed, model changed."""
    if before is None:
        return f"first version: {len(after.specs)} intents, {len(after.files)} files"
    old, new = before.specs, after.specs
    parts: list[str] = []
    added = [name for name in new if name not in old]
    removed = [name for name in old if name not in new]
    changed = {
        name: [f for f in SPEC_FIELDS if old[name].get(f) != new[name].get(f)]
        for name in new
        if name in old and old[name] != new[name]
    }
    if added:
        parts.append(f"added {_names(added)}")
    if removed:
        parts.append(f"removed {_names(removed)}")
    if changed:
        parts.append(
            "changed " + _names([f"{name} ({', '.join(fields)})" for name, fields in changed.items()])
        )
    other = sorted(
        name
        for name in {*before.files, *after.files}
        if before.files.get(name) != after.files.get(name)
        and (name.startswith(f"{KNOWLEDGE}/") or name in {"tone.yaml", "calibration.yaml"})
    )
    if other:
        parts.append(f"files {', '.join(other)}")
    if before.model_id != after.model_id:
        parts.append(f"model {before.model_id} -> {after.model_id}")
    return "; ".join(parts) if parts else "no change in intents (formatting or comments only)"


def _names(names: list[str], most: int = 4) -> str:
    shown = ", ".join(names[:most])
    return f"{shown} and {len(names) - most} more" if len(names) > most else shown


@dataclass(frozen=True)
class Live:
    """The live version and the activation that made it live."""

    version: IntentsVersion
    activation: IntentsActivation


def live(database: Database) -> Live | None:
    """The newest activation and its version, or None before any folder was recorded."""
    with Session(database) as session:
        row = session.exec(
            select(IntentsActivation, IntentsVersion)
            .join(IntentsVersion, col(IntentsVersion.id) == col(IntentsActivation.version_id))
            .order_by(col(IntentsActivation.id).desc())
            .limit(1)
        ).first()
    return None if row is None else Live(version=row[1], activation=row[0])


def activation_marker(database: Database) -> int | None:
    """The newest activation's id: changes whenever any process makes a version live (one cheap query)."""
    with Session(database) as session:
        return session.exec(select(func.max(col(IntentsActivation.id)))).one()


def find(database: Database, content: str) -> IntentsVersion | None:
    """The stored version with this content hash."""
    with Session(database) as session:
        return session.exec(select(IntentsVersion).where(IntentsVersion.hash == content)).first()


def find_same_files(database: Database, found: Snapshot) -> IntentsVersion | None:
    """The newest stored version with exactly `found`'s files for the same model on another backend.

    An upgrade that renames a backend (`+onnx-int8` became `+onnx-int8r` when int8 began scaling
    activations per row) changes every folder's hash; without this a restarting replica would take its
    unchanged folder for a new deploy and undo a rollback made before the upgrade.
    """
    base = base_model_id(found.model_id)
    with Session(database) as session:
        rows = session.exec(
            select(IntentsVersion)
            .where(IntentsVersion.intents_version == found.intents_version)
            .order_by(col(IntentsVersion.id).desc())
        ).all()
    return next((r for r in rows if base_model_id(r.model_id) == base and r.files == found.files), None)


def get(database: Database, version_id: int) -> IntentsVersion:
    """A stored version, or NotFoundError naming what exists."""
    with Session(database) as session:
        row = session.get(IntentsVersion, version_id)
        if row is None:
            top = session.exec(select(func.max(col(IntentsVersion.id)))).one()
            known = f"versions are numbered 1 to {top}" if top else "no version is stored yet"
            raise NotFoundError(f"no intents version {version_id}; {known} (see GET /v1/versions)")
        return row


def store(database: Database, found: Snapshot, loaded_by: str) -> IntentsVersion:
    """The stored row for `found`, inserted (with its summary against the live version) if new."""
    check_names(found.files)  # a name that would write outside a folder is never stored
    existing = find(database, found.hash)
    if existing is not None:
        return existing
    current = live(database)
    row = IntentsVersion(
        hash=found.hash,
        intents_version=found.intents_version,
        model_id=found.model_id,
        files=found.files,
        specs=found.specs,
        summary=summarize(current.version if current else None, found),
        loaded_by=loaded_by[:128],
    )
    try:
        with Session(database, expire_on_commit=False) as session:
            session.add(row)
            session.commit()
        return row
    except IntegrityError:  # another replica stored the same folder at the same moment
        stored = find(database, found.hash)
        assert stored is not None
        return stored


def activate(database: Database, version: IntentsVersion, *, action: str, by: str) -> IntentsActivation:
    """Make `version` the live one for every replica (one INSERT: the newest activation wins)."""
    assert version.id is not None
    row = IntentsActivation(version_id=version.id, action=action, activated_by=by[:128])
    with Session(database, expire_on_commit=False) as session:
        session.add(row)
        session.commit()
    return row


@dataclass(frozen=True)
class VersionRow:
    """A stored version with when it was last made live and whether it is live now."""

    version: IntentsVersion
    live: bool
    last_activated: IntentsActivation | None


def listing(database: Database, limit: int = 50, offset: int = 0) -> tuple[list[VersionRow], int]:
    """Versions, newest first, and how many are stored."""
    with Session(database) as session:
        total = session.exec(select(func.count(col(IntentsVersion.id)))).one()
        rows = session.exec(
            select(IntentsVersion).order_by(col(IntentsVersion.id).desc()).offset(offset).limit(limit)
        ).all()
        ids = [r.id for r in rows]
        latest = (
            select(IntentsActivation.version_id, func.max(IntentsActivation.id).label("id"))
            .where(col(IntentsActivation.version_id).in_(ids))
            .group_by(col(IntentsActivation.version_id))
            .subquery()
        )
        activations = {
            a.version_id: a
            for a in session.exec(
                select(IntentsActivation).join(latest, col(latest.c.id) == col(IntentsActivation.id))
            ).all()
        }
    current = live(database)
    live_id = current.version.id if current else None
    return [VersionRow(r, r.id == live_id, activations.get(r.id or 0)) for r in rows], int(total)


def activations(database: Database, limit: int = 500) -> list[IntentsActivation]:
    """The newest activations, newest first: which version was live when (for naming a decision's version)."""
    with Session(database) as session:
        query = select(IntentsActivation).order_by(col(IntentsActivation.id).desc()).limit(limit)
        return list(session.exec(query).all())


def describe(database: Database, version: IntentsVersion) -> VersionRow:
    """One version with whether it is live and its latest activation."""
    with Session(database) as session:
        last = session.exec(
            select(IntentsActivation)
            .where(IntentsActivation.version_id == version.id)
            .order_by(col(IntentsActivation.id).desc())
            .limit(1)
        ).first()
    current = live(database)
    return VersionRow(version, current is not None and current.version.id == version.id, last)


def materialize(version: IntentsVersion, cache_dir: Path) -> Path:
    """The version's folder under `cache_dir/versions/` (written once; content-addressed, so reused)."""
    if not _HASH.fullmatch(version.hash):
        raise InvalidInputError(
            "hash", f"stored version {version.id} has the malformed hash {version.hash!r}"
        )
    check_names(version.files)
    folder = Path(cache_dir) / "versions" / version.hash[:16]
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{version.hash[:16]}-", dir=folder.parent))
    write_files(version.files, tmp)
    try:
        os.rename(tmp, folder)  # atomic: a reader never sees half a folder
    except OSError:  # another process wrote it first
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


@dataclass(frozen=True)
class Checkout:
    """What `checkout` did to a folder."""

    written: list[str]
    removed: list[str]
    unchanged: list[str]


def checkout(version: IntentsVersion, folder: Path, *, force: bool = False) -> Checkout:
    """Make `folder` hold exactly the version's files: write changed ones, delete intent/knowledge files
    the version does not have. A folder whose files differ needs `force` (they would be overwritten)."""
    folder = Path(folder)
    check_names(version.files)  # refused before anything is read or written
    refuse_links(folder, [KNOWLEDGE])
    present = folder_files(folder) if folder.is_dir() else {}
    written = sorted(n for n in version.files if present.get(n) != version.files[n])
    removed = sorted(n for n in present if n not in version.files)
    unchanged = sorted(n for n in version.files if present.get(n) == version.files[n])
    overwritten = [n for n in written if n in present] + removed
    if overwritten and not force:
        raise IntentFileError(
            folder,
            None,
            f"{len(overwritten)} file{'s' if len(overwritten) != 1 else ''} would be overwritten or deleted "
            f"({_names(overwritten)}); "
            "pass --force to replace them with version "
            f"{version.id}, or check out into an empty folder",
        )
    refuse_links(folder, written + removed)
    write_files({n: version.files[n] for n in written}, folder)
    remove_files(removed, folder)
    return Checkout(written=written, removed=removed, unchanged=unchanged)
