"""Self-training: the encoder fine-tuned on the intents folder's own texts, once per folder version.

With zero labelled data the folder still says which texts belong together. `bot train` on those texts
alone lifts what the router can do at a given precision (BANKING77 test: top-1 0.825 -> 0.842; on a
held-back 150-intent domain the best any threshold reaches at precision 0.90 goes from 0.56 to 0.78). So
when `BOT_SELF_TRAIN` is on, the stock model is not routed with a new folder's intents: a copy trained
on them is, made the first time the folder (in this version) is loaded and cached in
`BOT_CACHE_DIR/models/`. It applies only where it cannot undo a choice: the model is the bundled one and
the folder has no `calibration.yaml` for it (a labelled calibration was fitted on the stock vectors).
Self-calibration then knows the model saw every example (`SELF_TRAINING_FILE`) and corrects for that.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from bot.config import Settings
from bot.content.intents import IntentSet, load_intents
from bot.routing.calibration import content_id, load_calibration
from bot.routing.self_calibration import SELF_TRAINING_FILE
from bot.routing.state import intent_texts
from bot.tuning.training import TrainingConfig, TrainingError, fine_tune

log = logging.getLogger(__name__)

RECIPE = "self-train-1"  # part of the cache key: a changed recipe trains every folder once more
STOCK_MODEL = "bundled"


def self_trained_path(settings: Settings, intents: IntentSet) -> Path:
    """Where the model trained on exactly these texts (names, titles, descriptions, examples) lives."""
    texts, owners = intent_texts(intents)
    key = content_id({"recipe": RECIPE, "base": settings.model, "texts": texts, "owners": owners})
    return Path(settings.cache_dir) / "models" / f"self-{key}"


def applies(settings: Settings) -> bool:
    """Whether this folder is routed with a self-trained model (see the module docstring)."""
    if not settings.self_train or settings.model != STOCK_MODEL:
        return False
    from bot.routing.encoder import bundled_model_path, model_fingerprint

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

    Training takes about 0.25 s per text on 2 idle cores (105 s for the 410 texts of the 82 demo intents);
    progress goes to stderr.
    """
    path = self_trained_path(settings, intents)
    if (path / SELF_TRAINING_FILE).is_file():
        return path
    texts, _ = intent_texts(intents)
    sys.stderr.write(
        f"training the encoder on the folder's own {len(texts)} texts (once per folder version; "
        "BOT_SELF_TRAIN=false skips it)\n"
    )
    config = TrainingConfig(threads=settings.torch_threads, progress=True)
    try:
        result = fine_tune(settings.model, intents, path, config)
    except TrainingError as exc:  # too few texts: route with the stock model
        log.warning("self-training skipped (%s); routing with the stock model", exc)
        return None
    # written last: a crash mid-training leaves no marker, so the next start trains again
    marker = {"recipe": RECIPE, "base": settings.model, "intents": intents.version, "texts": result.texts}
    (path / SELF_TRAINING_FILE).write_text(json.dumps(marker), encoding="utf-8")
    log.info("self-trained %s in %.0f s (%d steps)", path, result.seconds, result.steps)
    return path


if __name__ == "__main__":  # `train_in_child`: python -m bot.tuning.self_training DIR MODEL CACHE THREADS
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    folder, model, cache, threads = sys.argv[1:5]
    child = Settings(intents_dir=Path(folder), model=model, cache_dir=Path(cache), torch_threads=int(threads))
    self_trained_model(child, load_intents(child.intents_dir))
