"""Keeping one process's engine on the live intents version: record what it loads, follow what others activate.

Every replica holds one `VersionSync`. What it loads from disk (start-up, `/v1/admin/reload`) is stored
and activated; a version activated anywhere (rollback, promotion) is loaded from the database here within
one poll, from the stored files, so replicas need not share a disk.

At start-up the folder on disk wins when it is new (a deploy), but a folder that is a known older version
while the database names another live one does not: that is a replica restarting after a rollback, and
it must not undo it. It serves the live version and says so in the log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine as Database

from bot.config import Settings
from bot.errors import ConflictError
from bot.routing.engine import Engine, ReloadResult
from bot.store import versions
from bot.store.examples import learned_examples
from bot.store.models import IntentsVersion

log = logging.getLogger(__name__)
STEADY_TRIES = 3


@dataclass(frozen=True)
class Loaded:
    """A version made live in this process, and what loading it did."""

    version: IntentsVersion
    result: ReloadResult | None  # None when the version was live already (nothing reloaded)


class ModelPolicy(Protocol):
    """Which model a folder is routed with, and what follows a load (bot.runtime: self-training)."""

    model_id: str  # the id versions are stored under: the configured model's, whatever routes meanwhile

    def model_for(self, folder: Path) -> str | None:
        """The model to load `folder` with (None: the engine's own)."""

    def loaded(self, folder: Path) -> None:
        """`folder` is live now (start a training it needs, cancel one it does not)."""


class VersionSync:
    """Records and follows intents versions for one engine (thread-safe; one per process)."""

    def __init__(
        self, engine: Engine, database: Database, settings: Settings, policy: ModelPolicy | None = None
    ) -> None:
        self.engine = engine
        self.database = database
        self.settings = settings
        self.policy = policy
        self.live_hash: str | None = None
        self.live_id: int | None = None  # the stored version routing here: the id the API and pages show
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        """The model id versions are stored and compared under."""
        return self.policy.model_id if self.policy is not None else self.engine.model_id

    def _load_folder(self, folder: Path) -> ReloadResult:
        """Load `folder` with the model the policy picks and the learned examples (caller holds the lock)."""
        model = self.policy.model_for(folder) if self.policy is not None else None
        result = self.engine.load(folder, self._learned(), model=model)
        if self.policy is not None:
            self.policy.loaded(folder)
        return result

    def open(self, by: str = "server start") -> Loaded:
        """Load the configured folder, then record it or switch to the live version (`start`)."""
        with self._lock:
            self._load_steady(Path(self.settings.intents_dir))
        return self.start(by)

    def _load_steady(self, folder: Path) -> tuple[ReloadResult, versions.Snapshot]:
        """Load `folder` and the snapshot of exactly what was loaded: the files are read before and after
        the load, and an edit saved in between loads again, so the version recorded is the one routing
        (an editor still saving after a few tries is refused: the live set stays)."""
        for _ in range(STEADY_TRIES):
            before = versions.snapshot(folder, self.model_id)
            result = self._load_folder(folder)
            after = versions.snapshot(folder, self.model_id)
            if after.hash == before.hash:
                return result, after
        raise ConflictError(f"the folder {folder} kept changing while it loaded; save it, then reload again")

    def use_model(self, model: str, folder: Path) -> bool:
        """Route the live folder with `model` (a training finished) if `folder` is still the one live;
        False, changing nothing, when another version went live meanwhile."""
        with self._lock:
            if self.engine.intents_dir != folder or self.policy is None:
                return False
            if self.policy.model_for(folder) != model:
                return False
            self.engine.load(folder, self._learned(), model=model)
            self.policy.loaded(folder)
            return True

    def _learned(self) -> Callable[[], Mapping[str, Sequence[str]]]:
        return lambda: learned_examples(self.database)

    def start(self, by: str = "server start") -> Loaded:
        """Record the folder the engine loaded, or switch to the live version (see the module docstring)."""
        with self._lock:
            found = versions.snapshot(self.engine.intents_dir, self.model_id)
            current = versions.live(self.database)
            # the same files stored for this model on another backend count as known: a backend renamed
            # by an upgrade must not make an unchanged folder look like a new deploy
            known = versions.find(self.database, found.hash) or versions.find_same_files(self.database, found)
            if current is not None and known is not None and current.version.id != known.id:
                log.warning(
                    "the folder %s is stored version %s, but version %s was made live by %s at %s; serving "
                    "version %s (`bot versions checkout %s --intents DIR` writes it to disk)",
                    self.engine.intents_dir,
                    known.id,
                    current.version.id,
                    current.activation.activated_by,
                    current.activation.created_at,
                    current.version.id,
                    current.version.id,
                )
                return self._load(current.version)
            version = versions.store(self.database, found, by)
            if current is None or current.version.id != version.id:
                versions.activate(self.database, version, action="start", by=by)
            self.live_hash, self.live_id = version.hash, version.id
            return Loaded(version, None)

    def reload(self, by: str) -> Loaded:
        """Re-read the configured folder from disk, store it as a version and make it live everywhere."""
        with self._lock:
            result, found = self._load_steady(Path(self.settings.intents_dir))
            version = versions.store(self.database, found, by)
            current = versions.live(self.database)
            if current is None or current.version.id != version.id:
                versions.activate(self.database, version, action="reload", by=by)
            self.live_hash, self.live_id = version.hash, version.id
            return Loaded(version, result)

    def activate(self, version_id: int, by: str, action: str = "activate") -> Loaded:
        """Load a stored version here (an invalid one changes nothing), then make it live everywhere."""
        with self._lock:
            version = versions.get(self.database, version_id)
            loaded = self._load(version)
            versions.activate(self.database, version, action=action, by=by)
            return loaded

    def follow(self) -> Loaded | None:
        """Load the live version if another process activated one this process does not route by."""
        with self._lock:
            current = versions.live(self.database)
            if current is None or current.version.hash == self.live_hash:
                return None
            log.info(
                "intents version %s was made live by %s (%s): loading it",
                current.version.id,
                current.activation.activated_by,
                current.activation.action,
            )
            return self._load(current.version)

    def _load(self, version: IntentsVersion) -> Loaded:
        if version.model_id != self.model_id:
            log.warning(
                "intents version %s was stored with model %s; this process routes it with %s",
                version.id,
                version.model_id,
                self.model_id,
            )
        folder = versions.materialize(version, self.settings.cache_dir)
        result = self._load_folder(folder)
        self.live_hash, self.live_id = version.hash, version.id
        return Loaded(version, result)
