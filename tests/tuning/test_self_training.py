"""Self-training: a folder without calibration.yaml is routed with the bundled encoder fine-tuned on its
own texts, trained once per folder version and cached; self-calibration then uses the trained bias."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings
from bot.routing.cross_fit import CROSS_FIT_FILE
from bot.routing.engine import Engine
from bot.routing.pseudo_queries import (
    CROSS_FIT_BIAS,
    FROZEN_BIAS,
    SELF_TRAINING_FILE,
    TRAINED_BIAS,
    Evidence,
    bias_for,
)
from bot.tuning import self_training
from bot.tuning.self_training import applies, ensure_self_trained
from tests.conftest import INTENTS, write
from tests.routing.test_self_calibration import HOME

pytestmark = pytest.mark.slow


def test_a_new_folder_trains_once_and_routes_with_its_own_model(tmp_path: Path, monkeypatch) -> None:
    folder, cache = tmp_path / "intents", tmp_path / "cache"
    write(folder / "home.yaml", HOME)
    settings = Settings(intents_dir=folder, cache_dir=cache, self_train=True, torch_threads=2)
    assert applies(settings)
    trained = ensure_self_trained(settings)
    model = Path(trained.model)
    assert model.parent == cache / "models" and (model / SELF_TRAINING_FILE).is_file()
    assert (model / CROSS_FIT_FILE).is_file()  # two fold models scored every example unseen
    assert bias_for(trained.model) is TRAINED_BIAS and bias_for("bundled") is FROZEN_BIAS

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("an unchanged folder must not train again")

    monkeypatch.setattr(self_training, "train_in_child", no_training)  # training runs in a child process
    assert ensure_self_trained(settings).model == trained.model  # a restart reuses the cached model
    engine = Engine(trained)  # the default onnx-int8 backend exports the trained model (its pooling
    result = engine.load()  # config is sentence-transformers 5's `pooling_mode: mean`)
    assert engine.model_id.startswith(model.name) and result.operating_point.startswith("self-calibration")
    assert Evidence.of(trained.model, engine.state.intents).bias is CROSS_FIT_BIAS
    assert "cross-fitted" in (engine.state.calibration.data or "")  # the fit used the fold models' scores
    assert engine.route("switch the kitchen lamp on").intent == "lights_on"

    write(folder / "home.yaml", HOME.replace("switched on.", "switched on, or made brighter."))
    with pytest.raises(AssertionError, match="must not train again"):
        ensure_self_trained(settings)  # a changed folder is a new version: it would train


def test_self_training_stays_out_of_the_way_of_pinned_models(tmp_path: Path) -> None:
    folder = tmp_path / "intents"
    write(folder / "home.yaml", HOME)
    assert not applies(Settings(intents_dir=folder, self_train=False))
    assert not applies(Settings(intents_dir=folder, self_train=True, model=str(tmp_path / "my-model")))
    # the demo bank's labelled calibration was fitted on the stock vectors: it keeps them
    demo = Settings(intents_dir=INTENTS, self_train=True)
    assert not applies(demo) and ensure_self_trained(demo) == demo
