"""Self-training's cap (#26 item 5): the steps of a job stop growing with the folder; small folders train
as before; a changed recipe is a different cache key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.content.intents import load_intents
from bot.tuning import recipe
from bot.tuning.recipe import FOLD_STEPS, MODEL_STEPS, SELF_TRAINING, fold_config, recipe_key, training_config
from bot.tuning.self_training import job_steps
from bot.tuning.training import TrainingConfig, _prototypes, planned_steps
from tests.conftest import write


def test_the_cap_binds_only_on_big_folders() -> None:
    assert planned_steps(320, SELF_TRAINING) == planned_steps(320, TrainingConfig()) == 20  # HWU64's folder
    assert planned_steps(410, TrainingConfig()) == 28  # the demo folder, uncapped
    assert planned_steps(1394, TrainingConfig()) == 88  # 150 intents with 7 examples, uncapped
    assert planned_steps(1394, SELF_TRAINING) == planned_steps(1_000_000, SELF_TRAINING) == MODEL_STEPS
    assert planned_steps(1_000_000, fold_config(SELF_TRAINING)) == FOLD_STEPS
    assert planned_steps(10, SELF_TRAINING) == SELF_TRAINING.epochs  # at least a step per epoch


def test_a_big_folders_job_is_bounded(tmp_path: Path) -> None:
    intents = "intents:\n" + "".join(
        f"  - name: t{i}\n    description: topic {i}\n    examples: [a {i}, b {i}, c {i}, d {i}]\n"
        for i in range(1500)
    )
    folder = load_intents(write(tmp_path / "a.yaml", intents).parent)
    config = training_config(2, progress=False)
    assert job_steps(folder, config) == MODEL_STEPS + 2 * FOLD_STEPS
    assert job_steps(folder, TrainingConfig()) > 500  # the model uncapped: 4 epochs of 141 steps


def test_another_recipe_caches_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = recipe_key("r")
    monkeypatch.setattr(recipe, "FOLD_STEPS", FOLD_STEPS + 1)
    assert recipe_key("r") != shipped
    monkeypatch.setattr(recipe, "FOLD_STEPS", FOLD_STEPS)
    assert recipe_key("r") == shipped
    assert "threads" not in shipped["config"]  # type: ignore[operator]  # the same model on any thread count


def test_prototypes_from_each_intents_first_texts() -> None:
    seen: list[str] = []

    class Network:
        def encode(self, texts: list[str], **_: object) -> np.ndarray:
            seen.extend(texts)
            return np.eye(len(texts), 8, dtype=np.float32)

    groups = [["a1", "a2", "a3"], ["b1"]]
    prototypes = _prototypes(Network(), groups, per_intent=2)
    assert seen == ["a1", "a2", "b1"] and prototypes.shape == (2, 8)
    assert np.allclose(np.linalg.norm(prototypes, axis=1), 1.0)
