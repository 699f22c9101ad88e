"""Self-training's recipe, capped so that its cost stops growing with the folder, and what it costs.

`bot train`'s recipe (bot.tuning.training) with a cap (issue #26 item 5; chosen on BANKING77 train, the
times and HWU64's figures in docs/evaluation.md "Bounded self-training (#26)"): at most MODEL_STEPS steps
for the model (uncapped, its steps grow with the folder's texts) and FOLD_STEPS for each cross-fit fold model (they only score the examples they did not
see, for self-calibration); prototypes (the intent vectors' start, the first epoch's hard negatives) from
each intent's first texts (name, title, description: an intent's own words, whatever its examples);
neighbours re-mined from the learned intent vectors rather than by encoding the whole folder once per
epoch. What is left grows with the folder is encoding: the prototypes and each fold model's pass over
every text, bounded by the folder limits (bot.content.intents).
"""

from __future__ import annotations

from dataclasses import asdict, replace

from bot.routing.cross_fit import FOLDS
from bot.tuning.training import TrainingConfig, planned_steps

MODEL_STEPS = 20
FOLD_STEPS = 8
SELF_TRAINING = TrainingConfig(max_steps=MODEL_STEPS, prototype_texts=3, mine_from_vectors=True)

# What the background job costs on 2 idle cores with 2 threads, fitted to whole jobs' times so that the
# estimate `bot check` and /readyz announce holds from small folders to the limits: starting up, loading
# the models and exporting; one training step; one text encoded without training (docs/evaluation.md,
# Bounded self-training (#26)).
JOB_SECONDS = 20.0
STEP_SECONDS = 0.8
ENCODE_SECONDS = 0.0019
# Fewer threads take longer, but less than in proportion: not all of the job is parallel (docs/evaluation.md,
# Bounded self-training (#26)).
THREAD_EXPONENT = 0.6


def training_config(threads: int, *, progress: bool) -> TrainingConfig:
    """The self-training recipe for a process with `threads` threads."""
    return replace(SELF_TRAINING, threads=threads, progress=progress)


def fold_config(config: TrainingConfig) -> TrainingConfig:
    """A cross-fit fold model's recipe: the model's, with at most FOLD_STEPS steps."""
    steps = min(config.max_steps, FOLD_STEPS) if config.max_steps > 0 else FOLD_STEPS
    return replace(config, max_steps=steps)


def recipe_key(name: str) -> dict[str, object]:
    """What makes a different model, for the cache key: the recipe's name and its settings (not threads or
    the progress bar), so an experiment that changes SELF_TRAINING or FOLD_STEPS caches its models apart."""
    fields = {k: v for k, v in asdict(SELF_TRAINING).items() if k not in ("threads", "progress")}
    return {"recipe": name, "config": fields, "fold_steps": FOLD_STEPS}


def estimate_seconds(texts: int, threads: int, intents: int = 0) -> float:
    """About how long the background job (model, cross-fit models, ONNX export) takes on a folder of
    `texts` texts (`intent_texts`) and `intents` intents (0: unknown, prototypes from every text) with
    `threads` threads; what `bot check` and /readyz announce."""
    config = training_config(2, progress=False)
    fold_texts = round(texts * 0.7)  # a fold model trains on every text but half the examples
    steps = planned_steps(texts, config) + FOLDS * planned_steps(fold_texts, fold_config(config))
    prototypes = texts if intents <= 0 else min(texts, intents * config.prototype_texts)
    encoded = (1 + FOLDS) * prototypes + FOLDS * texts  # each model's start, each fold model's encoding
    if not config.mine_from_vectors:
        encoded += (config.epochs - 1) * (1 + FOLDS) * prototypes
    seconds = JOB_SECONDS + STEP_SECONDS * steps + ENCODE_SECONDS * encoded
    return float(seconds * (2 / max(1, threads)) ** THREAD_EXPONENT)
