"""Self-training: the encoder fine-tuned on the intents folder's own texts, once per folder version.

With zero labelled data the folder still says which texts belong together. `bot train` on those texts
alone lifts what the router can do at a given precision (BANKING77 test: top-1 0.825 -> 0.842; on a
held-back 150-intent domain the best any threshold reaches at precision 0.90 goes from 0.56 to 0.78). So
when `BOT_SELF_TRAIN` is on, the stock model is not routed with a new folder's intents: a copy trained
on them is, made the first time the folder (in this version) is loaded and cached in
`BOT_CACHE_DIR/models/`. It applies only where it cannot undo a choice: the model is the bundled one and
the folder has no `calibration.yaml` for it (a labelled calibration was fitted on the stock vectors).
The model saw every example, so self-calibration would find them too easy: two more models, each trained
without half the examples, score each example unseen (`cross_fit`, stored in the model folder), and
self-calibration fits on those scores.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from bot.config import Settings
from bot.content.intents import IntentSet, load_intents
from bot.routing.calibration import content_id, load_calibration
from bot.routing.cross_fit import FOLDS, CrossFit, example_folds, texts_key
from bot.routing.encoders.model_folder import FINGERPRINT_FILE, model_fingerprint
from bot.routing.pseudo_queries import SELF_TRAINING_FILE
from bot.routing.self_calibration import can_fit
from bot.routing.state import intent_texts
from bot.tuning.recipe import estimate_seconds, fold_config, recipe_key, training_config
from bot.tuning.training import (
    TrainingConfig,
    TrainingError,
    fine_tune,
    intent_groups,
    planned_steps,
    train_network,
)

__all__ = ["estimate_seconds"]  # the job's expected duration (bot check, /readyz), in bot.tuning.recipe

log = logging.getLogger(__name__)

# part of the cache key: a changed recipe trains every folder once more (2: with a cross-fit; 3: capped)
RECIPE = "self-train-3"


def self_trained_path(settings: Settings, intents: IntentSet) -> Path:
    """Where the model trained on exactly these texts (names, titles, descriptions, examples) lives."""
    texts, owners = intent_texts(intents)
    key = content_id({**recipe_key(RECIPE), "base": settings.model, "texts": texts, "owners": owners})
    return Path(settings.cache_dir) / "models" / f"self-{key}"


def applies(settings: Settings) -> bool:
    """Whether this folder is routed with a self-trained model (see the module docstring)."""
    from bot.routing.encoders.model_folder import BUNDLED, bundled_model_path, model_fingerprint

    if not settings.self_train or settings.model != BUNDLED:
        return False

    # a labelled calibration fitted on the stock vectors pins them; one for another model does not
    stock = model_fingerprint(bundled_model_path())
    return load_calibration(Path(settings.intents_dir), stock) is None


def is_trained(path: Path) -> bool:
    """Whether `path` holds a complete self-trained model (its marker is written last, and the folder
    only gets this name once complete)."""
    return (path / SELF_TRAINING_FILE).is_file()


def trainable(intents: IntentSet) -> bool:
    """Whether the folder has enough texts to train on (at least two intents with two texts each)."""
    return sum(len(group) >= 2 for group in intent_groups(intents)) >= 2


@dataclass(frozen=True)
class Plan:
    """What a folder version is routed with now, and what to train for it (None: nothing to train)."""

    model: str  # a model folder or 'bundled'
    train_into: Path | None
    intents_version: str
    texts: int
    intents: int = 0
    threads: int = 1  # BOT_TORCH_THREADS, what the training runs with

    @property
    def expected_seconds(self) -> float | None:
        """About how long training it takes here (None when nothing is to train)."""
        if self.train_into is None:
            return None
        return estimate_seconds(self.texts, self.threads, self.intents)

    @property
    def interim(self) -> bool:
        """Whether the folder is routed with the stock model until its trained model is ready."""
        return self.train_into is not None


def plan(settings: Settings, intents: IntentSet | None = None) -> Plan:
    """The model to route `settings.intents_dir` with at once: its trained model if the cache has it, else
    the configured (stock) model, with the training to run in the background where self-training
    applies and the folder is large enough."""
    intents = intents or load_intents(settings.intents_dir)
    texts = len(intent_texts(intents)[0])
    if not applies(settings) or not trainable(intents):
        return Plan(
            settings.model, None, intents.version, texts, len(intents.intents), settings.training_threads
        )
    path = self_trained_path(settings, intents)
    if is_trained(path):
        return Plan(str(path), None, intents.version, texts, len(intents.intents), settings.training_threads)
    return Plan(settings.model, path, intents.version, texts, len(intents.intents), settings.training_threads)


def ensure_self_trained(settings: Settings, intents: IntentSet | None = None) -> Settings:
    """`settings` with the folder's self-trained model, trained now (blocking, in a child process) if
    missing; unchanged when self-training does not apply or the folder is too small to train on."""
    found = plan(settings, intents)
    if found.train_into is not None:
        train_in_child(settings)
    path = found.train_into or Path(found.model)
    return settings.with_overrides(model=str(path)) if is_trained(path) else settings


def train_in_child(settings: Settings) -> None:
    """`self_trained_model` in a child process: training imports torch (several hundred MB a process
    never gives back), and a server that trained on its first start must not keep it."""
    command = [sys.executable, "-m", __name__, str(settings.intents_dir), settings.model]
    command += [str(settings.cache_dir), str(settings.training_threads)]
    finished = subprocess.run(command, check=False)  # progress goes to our stderr as it happens
    if finished.returncode != 0:
        raise TrainingError(
            f"self-training on '{settings.intents_dir}' failed (exit {finished.returncode}); see the output "
            "above, or set BOT_SELF_TRAIN=false to route with the stock model"
        )


class JobProgress:
    """Steps done out of the whole job's (the model's and each cross-fit model's), told to `emit` as
    {"phase", "progress"} at most every `every` seconds and at each phase change."""

    def __init__(
        self, total_steps: int, emit: Callable[[dict[str, object]], None] | None, every: float = 1.0
    ):
        self.total = max(1, total_steps)
        self.done = 0
        self.phase_name = "starting"
        self._emit = emit
        self._every = every
        self._last = 0.0

    def phase(self, name: str) -> None:
        self.phase_name = name
        self._send(force=True)

    def step(self) -> None:
        self.done += 1
        self._send(force=False)

    def _send(self, *, force: bool) -> None:
        now = time.monotonic()
        if self._emit is None or (not force and now - self._last < self._every):
            return
        self._last = now
        self._emit({"phase": self.phase_name, "progress": round(min(0.99, self.done / self.total), 4)})


def job_steps(intents: IntentSet, config: TrainingConfig) -> int:
    """Training steps of the whole job: the model on every text, and each cross-fit model on every text
    but its fold's examples (none when the folder is too small to self-calibrate)."""
    texts, owners = intent_texts(intents)
    folds = example_folds(intents)
    steps = planned_steps(len(texts), config)
    if can_fit(len(intents.intents), np.asarray(owners)[folds >= 0]):
        steps += sum(planned_steps(int(np.sum(folds != fold)), fold_config(config)) for fold in range(FOLDS))
    return steps


def self_trained_model(
    settings: Settings, intents: IntentSet, emit: Callable[[dict[str, object]], None] | None = None
) -> Path | None:
    """The model fine-tuned on `intents`' texts, trained now if it is not cached; None if too few texts.

    It is written under a temporary name and renamed into place once the model, its cross-fit and its
    marker are all on disk: a crash or a kill at any moment leaves no folder under the final name, so no
    reader ever loads half a model, and the next start trains again. Progress goes to stderr, or as JSON
    to `emit`. Time: docs/evaluation.md (self-training).
    """
    path = self_trained_path(settings, intents)
    if is_trained(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # processes sharing a cache (workers, replicas on one disk) train a folder version once: the others
    # wait here and find the model; the lock is the kernel's, so a killed trainer never leaves it held
    lock = FileLock(str(path.parent / f"{path.name}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if emit is not None:
            emit({"phase": "waiting for another process's training", "progress": 0.0})
        lock.acquire()
    try:
        return path if is_trained(path) else _train(settings, intents, path, emit)
    finally:
        lock.release()


def _train(
    settings: Settings, intents: IntentSet, path: Path, emit: Callable[[dict[str, object]], None] | None
) -> Path | None:
    texts, _ = intent_texts(intents)
    config = training_config(settings.training_threads, progress=emit is None)
    progress = JobProgress(job_steps(intents, config), emit)
    if emit is None:
        sys.stderr.write(
            f"training the encoder on the folder's own {len(texts)} texts, then {FOLDS} cross-fit models "
            "that self-calibration scores the examples with (once per folder version; BOT_SELF_TRAIN=false "
            "skips it)\n"
        )
    remove_stale_partials(path.parent)
    partial = path.with_name(f"{path.name}{PARTIAL}{os.getpid()}")
    progress.phase("model")
    try:
        result = fine_tune(settings.model, intents, partial, config, on_step=progress.step)
    except TrainingError as exc:  # too few texts: route with the stock model
        log.warning("self-training skipped (%s); routing with the stock model", exc)
        return None
    folds = cross_fit(settings, intents, config, progress)
    if folds is not None:
        folds.save(partial)
    marker = {
        "recipe": RECIPE,
        "base": settings.model,
        "intents": intents.version,
        "texts": result.texts,
        "cross_fit": folds is not None,
    }
    (partial / SELF_TRAINING_FILE).write_text(json.dumps(marker), encoding="utf-8")
    # the id it has under its final name, recorded: replicas that unpack it without the weights say the same
    fingerprint = model_fingerprint(partial, name=path.name)
    (partial / FINGERPRINT_FILE).write_text(fingerprint, encoding="utf-8")
    if path.exists() and not is_trained(path):  # left by a release that trained in place and crashed
        shutil.rmtree(path, ignore_errors=True)
    try:
        partial.rename(path)  # atomic; a finished twin (another process) is kept and ours dropped
    except OSError:
        if not is_trained(path):
            raise
        shutil.rmtree(partial, ignore_errors=True)
    log.info("self-trained %s in %.0f s (%d steps)", path, result.seconds, result.steps)
    return path


PARTIAL = ".partial-"  # a model being written: `<final name>.partial-<pid>`


def remove_stale_partials(models: Path) -> None:
    """Delete models that a training killed midway left under a temporary name (its process is gone)."""
    if not models.is_dir():
        return
    for folder in models.glob(f"*{PARTIAL}*"):
        pid = folder.name.rsplit(PARTIAL, 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cross_fit(
    settings: Settings, intents: IntentSet, config: TrainingConfig, progress: JobProgress | None = None
) -> CrossFit | None:
    """Train one model per fold of the examples, each on every text but that fold's examples, and encode
    the folder with each (`bot.routing.cross_fit`): self-calibration scores every example with a model
    that never saw it. None when the folder has too few examples to self-calibrate anyway."""
    from bot.routing.encoders.torch_backend import SentenceTransformerEncoder

    texts, owners = intent_texts(intents)
    folds = example_folds(intents)
    if not can_fit(len(intents.intents), np.asarray(owners)[folds >= 0]):
        return None  # self-calibration keeps the defaults for this folder: two trainings for nothing
    vectors = []
    for fold in range(FOLDS):
        groups: list[list[str]] = [[] for _ in intents.intents]
        for text, owner, text_fold in zip(texts, owners, folds, strict=True):
            if text_fold != fold:
                groups[owner].append(text)
        if progress is not None:
            progress.phase(f"cross-fit {fold + 1}/{FOLDS}")
        encoder = SentenceTransformerEncoder(settings.model, threads=config.threads)
        train_network(
            encoder.model,
            groups,
            fold_config(config),
            description=f"cross-fit model {fold + 1}/{FOLDS}",
            on_step=progress.step if progress is not None else None,
        )
        vectors.append(
            encoder.model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        )
    return CrossFit(vectors=np.stack(vectors).astype(np.float32), folds=folds, key=texts_key(intents))


def main(argv: list[str] | None = None) -> None:
    """`python -m bot.tuning.self_training DIR MODEL CACHE THREADS [--progress-json] [--nice N]`: the
    child process `train_in_child` and the server's background training (bot.runtime.training) run."""
    parser = argparse.ArgumentParser(prog="python -m bot.tuning.self_training")
    parser.add_argument("folder", type=Path)
    parser.add_argument("model")
    parser.add_argument("cache", type=Path)
    parser.add_argument("threads", type=int)
    parser.add_argument("--progress-json", action="store_true", help="progress as JSON lines on stdout")
    parser.add_argument("--nice", type=int, default=0, help="lower this process's CPU priority first")
    parser.add_argument(
        "--export", choices=["onnx", "onnx-int8"], help="also export the trained model for this backend"
    )
    parser.add_argument("--parent", type=int, help="exit when the process with this id is gone")
    parser.add_argument(
        "--into", type=Path, help="the model folder to write (the caller's `self_trained_path`); checked"
    )
    args = parser.parse_args(argv)
    if args.parent:
        follow_parent(args.parent)
    if args.nice:
        os.nice(args.nice)  # before torch starts its threads: they inherit it
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    threads = {"training_threads": args.threads, "torch_threads": args.threads}  # training and encoding
    child = Settings(intents_dir=args.folder, model=args.model, cache_dir=args.cache, **threads)

    def emit(event: dict[str, object]) -> None:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()

    progress = emit if args.progress_json else None
    intents = load_intents(child.intents_dir)
    if args.into is not None and args.into != self_trained_path(child, intents):
        # the caller runs other code (an upgrade between its start and ours): its model would never appear
        sys.exit(f"the caller expects {args.into}, this code trains {self_trained_path(child, intents)}")
    path = self_trained_model(child, intents, progress)
    if path is not None and args.export:
        export_for_serving(path, child.with_overrides(encoder_backend=args.export), progress)


def follow_parent(parent: int, every: float = 1.0) -> None:
    """End this process when `parent` is gone (a server killed with -9 must not leave its training
    running): what it wrote stays under its temporary name and the next training clears it away."""

    def watch() -> None:
        while True:
            time.sleep(every)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def export_for_serving(
    path: Path, settings: Settings, emit: Callable[[dict[str, object]], None] | None
) -> None:
    """The trained model's ONNX export (`settings.encoder_backend`), made here, off the server, under
    temporary names (bot.routing.encoders.onnx_files); then the folder encoded with it into the cache's
    embeddings as the server's load will, so the server's switch reads vectors instead of encoding on its
    one serving thread (docs/evaluation.md "Serving while training (#26)")."""
    from bot.routing.encoders.model_folder import model_fingerprint
    from bot.routing.encoders.onnx_files import export_onnx, onnx_folder
    from bot.routing.engine import Engine

    if emit is not None:
        emit({"phase": "export", "progress": 0.99})
    target = onnx_folder(settings.cache_dir, model_fingerprint(path))
    export_onnx(path, target, quantized=settings.encoder_backend == "onnx-int8", in_process=True)
    Engine(settings.with_overrides(model=str(path))).load()


if __name__ == "__main__":
    main()
