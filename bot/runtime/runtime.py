"""The life of one serving process: what it starts, in which order, and how it stops.

`open` does the quick part and fails with one clear line on a bad folder, database or model: the
conversation store is found (an install on the old default file is moved) and migrated, the folder is
checked and the model that routes it at once is loaded (its self-trained model if the cache has it,
else the configured one). `start` (on the event loop that will serve) starts the chat pipeline's threads
and loads the folder: embedded, calibrated, with the examples learned in the database, its version
recorded; then the shadow run named by BOT_SHADOW_INTENTS_DIR and the one poller that keeps the process
in step with the others (`bot.runtime.sync`). `bot serve` loads in the background so that `/healthz`
answers from the first second and `/readyz` says when routing is ready; a folder whose trained model is
missing starts training then (`bot.runtime.training`) and switches to it by itself. `stop` undoes it in
reverse: the training is cancelled, no accepted turn is lost and the database closes last.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from sqlalchemy import Engine as Database
from starlette.concurrency import run_in_threadpool

from bot.chat.pipeline import ChatPipeline
from bot.chat.service import ChatService
from bot.chat.spool import Spool
from bot.config import Settings
from bot.content.intents import IntentSet, load_intents
from bot.content.knowledge import load_knowledge
from bot.content.tone import load_tone
from bot.routing.engine import Engine
from bot.runtime.metrics import Metrics
from bot.runtime.model_share import ModelShare
from bot.runtime.models import SelfTrainingPolicy
from bot.runtime.sentiment import SentimentWatch
from bot.runtime.shadow import ShadowControl
from bot.runtime.sync import Poller, SyncTask
from bot.runtime.training import BackgroundTrainer, TrainingRequest, TrainingStatus
from bot.runtime.watch import FolderWatcher
from bot.runtime.webhooks import WebhookDispatcher
from bot.store import versions
from bot.store.db import make_engine, upgrade
from bot.store.examples import learned_examples, learned_fingerprint
from bot.store.version_sync import VersionSync
from bot.store.webhooks import parse_setting
from bot.tuning.self_training import plan

log = logging.getLogger(__name__)

SPOOL_DRAIN_SECONDS = 2.0
SWITCH_INTERVAL_SECONDS = 0.001


def check_folder(folder: Path) -> IntentSet:
    """Read and validate the intents, knowledge and tone files: a typo fails here as `path:line`, before
    any model is exported or trained; returns the intents."""
    intents = load_intents(folder)
    load_knowledge(folder / "knowledge")
    load_tone(folder)
    return intents


def routing_engine(
    settings: Settings,
    *,
    learned: Mapping[str, Sequence[str]] | None = None,
    progress: bool = False,
    say: Callable[[str], None] | None = None,
) -> Engine:
    """The engine a command routes with, never waiting for a training: the folder's self-trained model if
    the cache has it, else the configured model (`say` is told so, with what a server would do)."""
    found = plan(settings)
    if found.interim and say is not None:
        say(
            f"note: this folder version has no trained model yet; routing with the stock model and its own "
            f"self-calibration. `bot serve` trains one in the background ({found.texts} texts)."
        )
    engine = Engine(settings.with_overrides(model=found.model), progress=progress)
    engine.load(extra_examples=learned)
    return engine


class Runtime:
    """Everything one serving process runs; `open`, then `start` on the serving event loop, then `stop`."""

    def __init__(self, settings: Settings, *, engine: Engine | None = None, watch: bool = False) -> None:
        self.settings = settings
        self.watch = watch  # reload the folder when a file of it changes (bot serve --watch)
        self._watcher: FolderWatcher | None = None
        self.keys = settings.keys_by_role()  # a malformed BOT_API_KEYS fails here, before anything listens
        self.key_names = settings.key_names()
        parse_setting(settings.webhooks)  # a malformed BOT_WEBHOOKS fails here too
        self.trainer = BackgroundTrainer(self._training_ended)
        self.share: ModelShare | None = None  # None: the engine was given (tests), no training
        self.policy: SelfTrainingPolicy | None = None
        self.load_error: str | None = None
        # counted by the API; the state is read at each scrape (bot.runtime.metrics); None: BOT_METRICS off
        self.metrics = Metrics() if settings.metrics else None
        self._ready = threading.Event()
        self._given_engine = engine  # tests share one loaded engine between apps
        self._engine: Engine | None = None
        self._database: Database | None = None
        self._versions: VersionSync | None = None
        self._service: ChatService | None = None
        self._pipeline: ChatPipeline | None = None
        self._shadow: ShadowControl | None = None
        self._poller: Poller | None = None
        self._webhooks: WebhookDispatcher | None = None

    # -- what a started runtime serves with (an AssertionError before `open`/`start` is a bug) -----------

    @property
    def ready(self) -> bool:
        """Whether the folder is loaded and routing (`/readyz`)."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    @property
    def engine(self) -> Engine:
        assert self._engine is not None, "Runtime.open() first"
        return self._engine

    @property
    def database(self) -> Database:
        assert self._database is not None, "Runtime.open() first"
        return self._database

    @property
    def versions(self) -> VersionSync:
        assert self._versions is not None, "Runtime.open() first"
        return self._versions

    @property
    def service(self) -> ChatService:
        assert self._service is not None, "Runtime.open() first"
        return self._service

    @property
    def pipeline(self) -> ChatPipeline:
        assert self._pipeline is not None, "Runtime.start() first"
        return self._pipeline

    @property
    def shadow(self) -> ShadowControl:
        assert self._shadow is not None, "Runtime.start() first"
        return self._shadow

    # -- life ----------------------------------------------------------------------------------------------

    def open(self) -> Runtime:
        """The quick, blocking part of a start (see the module docstring); does nothing the second time."""
        if self._service is not None:
            return self
        settings = self.settings
        database = make_engine(settings.database_url)
        upgrade(database)
        self._database = database
        engine = self._given_engine
        if engine is None:
            intents = check_folder(Path(settings.intents_dir))
            self.share = ModelShare(database, settings, self.trainer, self._use_trained)
            self.policy = SelfTrainingPolicy(settings, self.share)
            engine = Engine(settings.with_overrides(model=plan(settings, intents).model))
        self._engine = engine
        self._versions = VersionSync(engine, database, settings, self.policy)
        spool = Spool(settings.spool_dir or settings.cache_dir / "spool")
        self._service = ChatService(engine, database, spool)
        return self

    async def start(self, *, wait_until_ready: bool = True) -> None:
        """`open` (in a worker thread) if not done yet, the chat threads, then the folder's load: waited
        for, or in the background (`bot serve`: requests that route get 503 until `ready`)."""
        await run_in_threadpool(self.open)
        pipeline = ChatPipeline(self.service, self.settings)
        pipeline.start()
        self._pipeline = pipeline
        self._shadow = ShadowControl(self.engine, self.database, self.settings, pipeline)
        if self.metrics is not None:
            self.metrics.watch(self)
        if wait_until_ready:
            await run_in_threadpool(self._load)
        else:
            threading.Thread(target=self._load_in_background, name="runtime-load", daemon=True).start()
        # Four busy threads share the GIL (event loop, two routers, writer); a router coming back from ONNX
        # Runtime waits for the holder's switch interval, so a shorter one serves more (docs/evaluation.md)
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)

    def _load(self) -> None:
        """Load the folder (or the version live elsewhere), then what needs it: the shadow, the poller."""
        engine = self.engine
        if self._given_engine is not None and engine.loaded:
            learned = learned_examples(self.database)
            if learned or engine.extra_examples:
                engine.load(extra_examples=learned)
            self.versions.start()
        else:
            self.versions.open()
        if self.settings.shadow_intents_dir is not None:  # an invalid folder stops the start, with path:line
            folder = str(self.settings.shadow_intents_dir)
            self.shadow.begin(folder, None, "BOT_SHADOW_INTENTS_DIR", confined=False)
        self._poller = Poller(self.sync_tasks()).start()
        self._webhooks = WebhookDispatcher(self.database, self.settings, self.metrics).start()
        if self.watch:
            self._watcher = FolderWatcher(Path(self.settings.intents_dir), self._reload_from_disk).start()
        # the model, intents and libraries live as long as the process: keeping them out of the garbage
        # collector's scans removes pauses that showed up as 100 ms stalls in chat batches under load
        gc.collect()
        gc.freeze()
        self._ready.set()
        log.info("serving %d intents (version %s)", len(engine.intents.intents), engine.intents.version)

    def _reload_from_disk(self) -> str:
        return self.versions.reload("bot serve --watch").version.intents_version

    def _load_in_background(self) -> None:
        try:
            self._load()
        except Exception as exc:  # the process stays up, unready, saying why (/readyz, the log)
            self.load_error = f"{exc.__class__.__name__}: {(str(exc).splitlines() or [''])[0]}"
            log.exception("the intents folder could not be loaded; this process will not become ready")

    def training_status(self) -> TrainingStatus:
        """This process's training, or another replica's of the model this one waits for."""
        return self.share.status() if self.share is not None else self.trainer.status()

    def _training_ended(self, request: TrainingRequest, status: TrainingStatus) -> None:
        if self.share is not None:
            self.share.finished(request, status)

    def _use_trained(self, request: TrainingRequest) -> None:
        """A trained model is in the cache: route the live folder with it if it is still the one trained."""
        if self.versions.use_model(str(request.target), Path(request.settings.intents_dir)):
            log.warning("now routing intents %s with their trained model", request.intents_version)

    async def stop(self) -> None:
        """Stop in reverse: the training is cancelled, every accepted chat turn and shadow decision is
        written before the database closes, and spooled turns get a last chance to be written."""
        if self.metrics is not None:
            await run_in_threadpool(self.metrics.close)
        if self._watcher is not None:
            await run_in_threadpool(self._watcher.stop)
        await run_in_threadpool(self.trainer.close)
        if self._poller is not None:
            await run_in_threadpool(self._poller.stop)
        if self._webhooks is not None:  # a delivery being sent is finished or left to its lease
            await run_in_threadpool(self._webhooks.stop)
        if self._pipeline is not None:
            await self._pipeline.close()
        if self._shadow is not None:
            await run_in_threadpool(self._shadow.end)
        if self._service is not None:
            with contextlib.suppress(Exception):  # a last try: the database may be back
                await run_in_threadpool(self._service.drain_spool)
        if self._database is not None:
            self._database.dispose()

    # -- what the poller keeps in step ----------------------------------------------------------------------

    def sync_tasks(self) -> list[SyncTask]:
        """Spooled turns every few seconds; learned examples and the live version every
        BOT_LEARNED_SYNC_SECONDS (0: this process follows no other); the sentiment surge alert every
        BOT_SENTIMENT_SECONDS."""
        tasks = [SyncTask("spool", SPOOL_DRAIN_SECONDS, self._drain_spool, level=logging.WARNING)]
        seconds = self.settings.learned_sync_seconds
        if seconds > 0:
            tasks.append(SyncTask("learned examples", seconds, _LearnedFollower(self.engine, self.database)))
            tasks.append(SyncTask("intents version", seconds, _VersionFollower(self.versions)))
        if self.share is not None:  # a model another replica trains is looked for even without the above
            tasks.append(SyncTask("trained model", seconds or SPOOL_DRAIN_SECONDS, self.share.step))
        # the sentiment surge alert: here, not in the metrics sampler, because its webhook event must be
        # written with metrics off and under one worker too (bot.runtime.sentiment says more)
        watch = SentimentWatch.from_settings(
            self.database, lambda: frozenset(self.engine.intents.names), self.metrics, self.settings
        )
        tasks.append(SyncTask("sentiment", self.settings.sentiment_seconds, watch, level=logging.WARNING))
        return tasks

    def _drain_spool(self) -> str | None:
        spool = self.service.spool
        if spool is None or not spool.pending():
            return None
        applied = self.service.drain_spool()
        return f"the database is back: wrote {applied} spooled chat turns" if applied else None


class _LearnedFollower:
    """Examples other processes learned from reviews and tickets: a review teaches the process that
    handled it at once; the others see the table's fingerprint move and re-embed only the new texts."""

    def __init__(self, engine: Engine, database: Database) -> None:
        self.engine = engine
        self.database = database
        self.seen: tuple[object, ...] | None = None  # the first round compares: a change may predate start

    def __call__(self) -> str | None:
        now = learned_fingerprint(self.database)
        if now == self.seen:
            return None
        changed = self.engine.use_extra_examples(lambda: learned_examples(self.database))
        self.seen = now
        return f"{len(self.engine.extra_examples)} intents have learned examples now" if changed else None


class _VersionFollower:
    """Versions other replicas activate (rollback, promotion): load one only when the newest activation
    moves."""

    def __init__(self, sync: VersionSync) -> None:
        self.sync = sync
        self.seen: int | None = None

    def __call__(self) -> str | None:
        marker = versions.activation_marker(self.sync.database)
        if marker == self.seen:
            return None
        loaded = self.sync.follow()
        self.seen = marker
        return f"now serving intents version {loaded.version.id}" if loaded is not None else None
