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

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np

from bot.config import Settings
from bot.content.intents import IntentSet, load_intents
from bot.routing.calibration import content_id, load_calibration
from bot.routing.cross_fit import FOLDS, CrossFit, example_folds, texts_key
from bot.routing.pseudo_queries import SELF_TRAINING_FILE
from bot.routing.self_calibration import can_fit
from bot.routing.state import intent_texts
from bot.tuning.training import TrainingConfig, TrainingError, fine_tune, train_network

log = logging.getLogger(__name__)

# part of the cache key: a changed recipe trains every folder once more (2: with a cross-fit)
RECIPE = "self-train-2"


def self_trained_path(settings: Settings, intents: IntentSet) -> Path:
    """Where the model trained on exactly these texts (names, titles, descriptions, examples) lives."""
    texts, owners = intent_texts(intents)
    key = content_id({"recipe": RECIPE, "base": settings.model, "texts": texts, "owners": owners})
    return Path(settings.cache_dir) / "models" / f"self-{key}"


def applies(settings: Settings) -> bool:
    """Whether this folder is routed with a self-trained model (see the module docstring)."""
    from bot.routing.encoders.model_folder import BUNDLED, bundled_model_path, model_fingerprint

    if not settings.self_train or settings.model != BUNDLED:
        return False

    # a labelled calibration fitted on the stock vectors pins them; one for another model does not
    stock = model_fingerprint(bundled_model_path())
    return load_calibration(Path(settings.intents_dir), stock) is None


def ensure_self_trained(settings: Settings, intents: IntentSet | None = None) -> Settings:
    """`settings` with the folder's self-trained model (trained now if missing), or unchanged when self-
    training does not apply or the folder is too small to train on."""
    if not applies(settings):
        return settings
    intents = intents or load_intents(settings.intents_dir)
    path = self_trained_path(settings, intents)
    if not (path / SELF_TRAINING_FILE).is_file():
        train_in_child(settings)
    trained = (path / SELF_TRAINING_FILE).is_file()  # absent: too few texts, the stock model routes
    return settings.with_overrides(model=str(path)) if trained else settings


def train_in_child(settings: Settings) -> None:
    """`self_trained_model` in a child process: training imports torch (several hundred MB a process
    never gives back), and a server that trained on its first start must not keep it."""
    command = [
        sys.executable,
        "-m",
        __name__,
        str(settings.intents_dir),
        settings.model,
        str(settings.cache_dir),
    ]
    command.append(str(settings.torch_threads))
    finished = subprocess.run(command, check=False)  # progress goes to our stderr as it happens
    if finished.returncode != 0:
        raise TrainingError(
            f"self-training on '{settings.intents_dir}' failed (exit {finished.returncode}); see the output "
            "above, or set BOT_SELF_TRAIN=false to route with the stock model"
        )


def self_trained_model(settings: Settings, intents: IntentSet) -> Path | None:
    """The model fine-tuned on `intents`' texts, trained now if it is not cached; None if too few texts.

    The model itself takes 0.12-0.25 s per text on 2 cores (63 s for the 410 texts of the 82 demo intents
    on an idle machine); its cross-fit (`cross_fit`, two more models without half the examples each)
    about as long again (67 s). Progress goes to stderr.
    """
    path = self_trained_path(settings, intents)
    if (path / SELF_TRAINING_FILE).is_file():
        return path
    texts, _ = intent_texts(intents)
    sys.stderr.write(
        f"training the encoder on the folder's own {len(texts)} texts, then {FOLDS} cross-fit models that "
        "self-calibration scores the examples with (once per folder version; BOT_SELF_TRAIN=false skips it)\n"
    )
    config = TrainingConfig(threads=settings.torch_threads, progress=True)
    try:
        result = fine_tune(settings.model, intents, path, config)
    except TrainingError as exc:  # too few texts: route with the stock model
        log.warning("self-training skipped (%s); routing with the stock model", exc)
        return None
    folds = cross_fit(settings, intents, config)
    if folds is not None:
        folds.save(path)
    # written last: a crash mid-training leaves no marker, so the next start trains again
    marker = {
        "recipe": RECIPE,
        "base": settings.model,
        "intents": intents.version,
        "texts": result.texts,
        "cross_fit": folds is not None,
    }
    (path / SELF_TRAINING_FILE).write_text(json.dumps(marker), encoding="utf-8")
    log.info("self-trained %s in %.0f s (%d steps)", path, result.seconds, result.steps)
    return path


def cross_fit(settings: Settings, intents: IntentSet, config: TrainingConfig) -> CrossFit | None:
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
        encoder = SentenceTransformerEncoder(settings.model, threads=config.threads)
        train_network(encoder.model, groups, config, description=f"cross-fit model {fold + 1}/{FOLDS}")
        vectors.append(
            encoder.model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        )
    return CrossFit(vectors=np.stack(vectors).astype(np.float32), folds=folds, key=texts_key(intents))


if __name__ == "__main__":  # `train_in_child`: python -m bot.tuning.self_training DIR MODEL CACHE THREADS
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    folder, model, cache, threads = sys.argv[1:5]
    child = Settings(intents_dir=Path(folder), model=model, cache_dir=Path(cache), torch_threads=int(threads))
    self_trained_model(child, load_intents(child.intents_dir))
