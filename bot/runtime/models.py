"""Which model routes a folder: its self-trained model once the cache has it, the configured one until then.

`SelfTrainingPolicy` is the `ModelPolicy` a serving process's `VersionSync` asks before every load (start,
reload, rollback, a version another replica activated) and tells after it. A folder version whose trained
model is missing is routed at once with the configured (stock) model, whose self-calibration keeps the
promise honest, while `ModelShare` finds or trains it (once for all replicas); a version that needs no
training cancels a running one. Versions are stored under the configured model's id, so a folder is the same version before and
after its training.
"""

from __future__ import annotations

import threading
from pathlib import Path

from bot.config import Settings
from bot.routing.encoders import configured_model_id
from bot.runtime.model_share import ModelShare
from bot.runtime.training import TrainingRequest
from bot.tuning.self_training import Plan, plan


class SelfTrainingPolicy:
    """Picks each folder's model and keeps the background training on the live folder version."""

    def __init__(self, settings: Settings, share: ModelShare) -> None:
        self.settings = settings
        self.share = share
        self.model_id = configured_model_id(settings.model, settings.encoder_backend)
        self.live_plan: Plan | None = None  # what the live folder is routed with, and what trains for it
        self._plans: dict[Path, Plan] = {}
        self._lock = threading.Lock()

    def settings_for(self, folder: Path) -> Settings:
        return self.settings.with_overrides(intents_dir=folder)

    def model_for(self, folder: Path) -> str:
        found = plan(self.settings_for(folder))
        with self._lock:
            self._plans[folder] = found
        return found.model

    def loaded(self, folder: Path) -> None:
        with self._lock:
            found = self._plans.pop(folder, None)
        found = found or plan(self.settings_for(folder))
        self.live_plan = found
        if found.train_into is None:
            self.share.cancel()
            return
        self.share.want(
            TrainingRequest(
                self.settings_for(folder), found.train_into, found.intents_version, found.expected_seconds
            )
        )
