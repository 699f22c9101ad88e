"""The shadow run of a serving process: which candidate version decides live messages too, if any.

At most one runs per process. Starting one stores the candidate as a version first, so what was
shadowed is exactly what a promotion makes live; replacing or stopping one lets it finish what it
queued (`bot.chat.shadow`).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from sqlalchemy import Engine as Database

from bot.chat.pipeline import ChatPipeline
from bot.chat.shadow import ShadowRun
from bot.config import Settings
from bot.routing.engine import Engine
from bot.runtime.candidates import candidate_folder
from bot.store import versions

log = logging.getLogger(__name__)


class ShadowControl:
    """Starts, replaces and stops the one shadow run behind a chat pipeline (thread-safe)."""

    def __init__(
        self, engine: Engine, database: Database, settings: Settings, pipeline: ChatPipeline
    ) -> None:
        self.engine = engine
        self.database = database
        self.settings = settings
        self.pipeline = pipeline
        self.run: ShadowRun | None = None
        self._lock = threading.Lock()

    def begin(
        self, intents_dir: str | None, version_id: int | None, by: str, *, confined: bool = True
    ) -> ShadowRun:
        """Store the candidate (a folder on this server, or a stored version), build its state and put
        it behind the chat pipeline in place of any run before it."""
        if version_id is not None:
            version = versions.get(self.database, version_id)
            label = f"version {version.id}"
        else:
            # a folder an admin names must lie in BOT_CANDIDATE_ROOTS; the operator's own setting need not
            folder = (
                candidate_folder(intents_dir or "", self.settings) if confined else Path(intents_dir or "")
            )
            found = versions.snapshot(folder, self.engine.model_id)
            version = versions.store(self.database, found, f"{by} (shadow)")
            label = f"version {version.id} ({folder})"
        state, _ = self.engine.candidate(versions.materialize(version, self.settings.cache_dir))
        pipeline = self.pipeline

        def live_busy() -> bool:
            return any(queue.pending > 0 for queue in pipeline.stats().values())

        run = ShadowRun(
            self.engine, self.database, state, candidate=label, version_id=version.id, live_busy=live_busy
        ).start()
        with self._lock:
            previous, self.run = self.run, run
            pipeline.shadow = run
        if previous is not None:
            previous.stop()
        log.info("shadow run started: %s (intents %s)", label, state.version)
        return run

    def end(self) -> ShadowRun | None:
        """Detach and stop the run, if any (what it queued is still decided and stored); returns it."""
        with self._lock:
            run, self.run = self.run, None
            if self.pipeline.shadow is run:
                self.pipeline.shadow = None
        if run is not None:
            run.stop()
        return run
