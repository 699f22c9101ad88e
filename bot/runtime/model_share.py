"""One training per folder version for all replicas: a lease in the database, the model stored beside it.

When a folder version needs its model, each replica first looks for it: in its own cache (another process
on the same disk may have trained it), then in the database (another replica may have). If neither has
it, the replica that takes the version's lease (bot.store.trained_models) trains it and, once complete,
stores it (bot.runtime.model_archive) and gives the lease up; the others keep routing with the stock
model and look again at every sync (BOT_LEARNED_SYNC_SECONDS), so they switch within one interval of the
model being stored. A replica that dies while training stops renewing its lease; when it expires another
one takes over. Only the ONNX backends share models (a torch backend would need the weights): with the
torch backend each replica trains for itself.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

from sqlalchemy import Engine as Database

from bot.config import Settings
from bot.runtime.model_archive import pack, unpack
from bot.runtime.training import BackgroundTrainer, TrainingRequest, TrainingStatus
from bot.store import trained_models
from bot.tuning.self_training import is_trained

log = logging.getLogger(__name__)

MIN_LEASE_SECONDS = 60.0  # renewed every sync; long enough that a slow sync never loses it


class ModelShare:
    """Finds, trains (holding the lease) or waits for the live folder version's model."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        trainer: BackgroundTrainer,
        use: Callable[[TrainingRequest], None],
    ) -> None:
        self.database = database
        self.settings = settings
        self.trainer = trainer
        self.use = use  # put a model that is now in the cache live
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self.shared = settings.encoder_backend != "torch"
        self.lease_seconds = max(MIN_LEASE_SECONDS, 6 * settings.learned_sync_seconds)
        self.wanted: TrainingRequest | None = None
        self.elsewhere: str | None = None  # the replica holding the wanted model's lease
        self._failed: set[str] = set()  # keys whose training failed here: not retried by this process
        self._held: set[str] = set()
        # models trained here and being packed and stored: their leases outlive a `cancel` (the switch to
        # the model itself cancels, as the live version then needs no training), or another replica takes
        # the lease while the upload runs and trains the same model again
        self._storing: set[str] = set()
        self._lock = threading.Lock()
        self._stepping = threading.Lock()

    # -- what the runtime asks ---------------------------------------------------------------------------

    def want(self, request: TrainingRequest) -> None:
        """The live folder version needs `request`'s model: find it, train it, or wait for another replica."""
        with self._lock:
            self.wanted = request
            self.elsewhere = None
        self._release_all(but=request.target.name)
        # at once, but not on the caller's thread: it holds the version lock that putting a model live
        # takes, and unpacking a stored model takes a moment
        threading.Thread(target=self._step_now, name="model-share", daemon=True).start()

    def cancel(self) -> None:
        """The live folder version needs no training: stop any, give leases up."""
        with self._lock:
            self.wanted = None
            self.elsewhere = None
        self.trainer.cancel()
        self._release_all()

    def status(self) -> TrainingStatus:
        """The trainer's status for the wanted model; while another replica trains it, that; and between
        an edit and the first look (a moment, on its own thread), the wanted version being looked for, so
        that /readyz never shows a cancelled older training as the live version's."""
        own = self.trainer.status()
        wanted, elsewhere = self.wanted, self.elsewhere
        if (
            wanted is None
            or own.intents_version == wanted.intents_version
            or wanted.target.name in self._failed
        ):
            return own
        phase = f"trained by another replica ({elsewhere})" if elsewhere else "looking for its trained model"
        return TrainingStatus(
            state="running", intents_version=wanted.intents_version, model=str(wanted.target), phase=phase
        )

    # -- the sync task -------------------------------------------------------------------------------------

    def _step_now(self) -> None:
        try:
            done = self.step()
        except Exception as exc:  # the poller tries again at the next sync
            log.warning("looking for the trained model failed: %s: %s", exc.__class__.__name__, exc)
            return
        if done:
            log.info("%s", done)

    def step(self) -> str | None:
        """Look for the wanted model once (the runtime's poller runs this every sync interval)."""
        if not self._stepping.acquire(blocking=False):
            return None  # a look is under way already
        try:
            self._renew_storing()
            return self._look()
        finally:
            self._stepping.release()

    def _look(self) -> str | None:
        request = self.wanted
        if request is None:
            return None
        key = request.target.name
        if self.trainer.training(request.target):
            # its folder may be complete before its export is: the job's end (`finished`) puts it live
            if self.shared:
                trained_models.take_lease(self.database, key, self.holder, self.lease_seconds)  # renewed
            return None
        if is_trained(request.target):
            self._done(request)
            return f"model {key} found in the cache"
        if self.shared:
            stored = trained_models.fetch(self.database, key)
            if stored is not None:
                unpack(stored.archive, request.target, self.settings.cache_dir, stored.backend)
                log.info("model %s trained by %s unpacked from the database", key, stored.trained_by)
                self._done(request)
                return None
        if key in self._failed:
            return None
        if not self.shared or trained_models.take_lease(self.database, key, self.holder, self.lease_seconds):
            with self._lock:
                self._held.add(key)
                self.elsewhere = None
            self.trainer.request(request)
            return f"training model {key} here"
        found = trained_models.lease_holder(self.database, key)
        with self._lock:
            self.elsewhere = found[0] if found is not None else None
        return None

    # -- what the trainer reports ----------------------------------------------------------------------------

    def finished(self, request: TrainingRequest, status: TrainingStatus) -> None:
        """The trainer's job for `request` ended: a complete model is used here, then stored for the others
        (this replica's switch need not wait the seconds packing and uploading take; the lease is held until
        the model is stored, so no other replica trains it meanwhile)."""
        key = request.target.name
        if status.state == "ready":
            with self._lock:
                self._storing.add(key)
            try:
                self._done(request)
            finally:
                try:
                    if self.shared:
                        self._store(request)
                finally:
                    with self._lock:
                        self._storing.discard(key)
                    self._release(key)
        elif status.state == "failed":
            self._failed.add(key)
            self._release(key)

    def _renew_storing(self) -> None:
        """Renew the leases of models being switched to and stored here: the switch reloads the folder
        (embedding, self-calibration) and the upload follows, which together may outlast a lease that
        nothing else renews once the training has ended."""
        with self._lock:
            keys = list(self._storing) if self.shared else []
        for key in keys:
            trained_models.take_lease(self.database, key, self.holder, self.lease_seconds)

    def _store(self, request: TrainingRequest) -> None:
        key = request.target.name
        try:
            self._renew_storing()  # the switch before this may have taken a while
            archive, fingerprint = pack(
                request.target, self.settings.cache_dir, self.settings.encoder_backend
            )
            stored = trained_models.StoredModel(
                key, fingerprint, self.settings.encoder_backend, archive, self.holder
            )
            if trained_models.store(self.database, stored, request.intents_version):
                log.info("stored model %s (%d bytes) for the other replicas", key, len(archive))
        except Exception as exc:  # the others train it themselves once the lease expires
            log.warning("model %s not stored for the other replicas: %s", key, exc)

    def _done(self, request: TrainingRequest) -> None:
        with self._lock:
            if self.wanted is not request:
                return
            self.wanted = None
            self.elsewhere = None
        self.use(request)

    def _release(self, key: str) -> None:
        with self._lock:
            held = key in self._held
            self._held.discard(key)
        if held and self.shared:
            try:
                trained_models.release_lease(self.database, key, self.holder)
            except Exception as exc:  # it expires by itself
                log.info("lease on %s not released: %s", key, exc.__class__.__name__)

    def _release_all(self, but: str | None = None) -> None:
        with self._lock:
            keys = [key for key in self._held if key != but and key not in self._storing]
        for key in keys:
            self._release(key)
