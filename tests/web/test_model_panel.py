"""The Model panel of the stats and versions pages in headless Chromium, while a training runs, finishes and
fails. The app is real and so is /readyz; only what the trainer and the model policy report is set by the
test (a real training takes minutes), so the pages read the JSON shape the server really sends."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from bot.api import create_app
from bot.config import Settings
from bot.routing.engine import Engine
from bot.runtime.training import TrainingStatus
from bot.tuning.self_training import Plan
from tests.api_support import make_intents
from tests.browser_support import LiveServer, as_desktop, as_phone, layout_problems, screenshot


@dataclass
class Training:
    """What the app's runtime says about its training and its model, changed by the test."""

    status: TrainingStatus
    live_plan: Plan | None
    switched: Callable[[], None] = lambda: None  # the engine routes with the trained model from now on


@pytest.fixture()
def served(
    tmp_path: Path, bundled_encoder: Any, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LiveServer, Training, Path]]:
    folder = make_intents(tmp_path / "intents")
    settings = Settings(
        intents_dir=folder, cache_dir=cache_dir, database_url=f"sqlite:///{tmp_path / 'bot.db'}"
    )
    engine = Engine(settings, encoder=bundled_encoder)
    engine.load()
    app = create_app(settings, engine=engine)
    runtime = app.state.runtime
    version = engine.intents.version
    target = tmp_path / "trained-model"
    started = time.time() - 80
    training = Training(
        TrainingStatus(
            state="running",
            intents_version=version,
            model=str(target),
            phase="cross-fit 1/2",
            progress=0.42,
            started_at=started,
            seconds=80.0,
            eta_seconds=110.0,
        ),
        Plan(settings.model, target, version, 40),  # routed with the stock model until trained
    )
    monkeypatch.setattr(runtime.trainer, "status", lambda: training.status)
    # readiness names the kind from the model the engine routes with: "self-trained" when it is not the
    # configured one; the engine keeps the stock model here, so the configured one is made another name
    training.switched = lambda: monkeypatch.setattr(
        runtime, "settings", runtime.settings.with_overrides(model=str(tmp_path / "configured-model"))
    )
    with LiveServer(app) as live:
        # once started (its version sync keeps the real policy, None): readiness reads `policy.live_plan`
        monkeypatch.setattr(runtime, "policy", training)
        yield live, training, target


def wait(driver: Any, condition: Any, timeout: float = 20) -> Any:
    return WebDriverWait(driver, timeout).until(condition)


def panel(driver: Any) -> Any:
    return driver.find_element(By.ID, "model-panel")


def text(driver: Any, node_id: str) -> str:
    return driver.find_element(By.ID, node_id).text


def test_versions_page_shows_a_running_training_then_the_trained_model(
    served: tuple[LiveServer, Training, Path], browser: Any
) -> None:
    live, training, target = served
    ready = httpx.get(f"{live.url}/readyz").json()
    assert ready["model_kind"] == "interim" and ready["training"]["phase"] == "cross-fit 1/2"

    browser.get(f"{live.url}/review/versions")
    wait(browser, lambda d: panel(d).get_attribute("data-training") == "running")
    assert panel(browser).get_attribute("data-kind") == "interim"
    assert text(browser, "model-kind") == "Interim: stock model until trained"
    assert text(browser, "model-id") == ready["model"]
    assert text(browser, "model-point") == ready["operating_point"]
    assert "until this folder's model is trained" in text(browser, "model-note")
    progress = browser.find_element(By.ID, "training-progress")
    assert float(progress.get_attribute("value")) == pytest.approx(0.42)
    # the bar has a visible label naming the phase, and the figures are written out, not only drawn
    assert progress.get_attribute("id") == browser.find_element(By.ID, "training-phase").get_attribute("for")
    assert text(browser, "training-phase") == "Training this folder's model: cross-fit 1/2"
    assert text(browser, "training-percent") == "42%"
    times = text(browser, "training-times")
    assert times.startswith("1 min 2") and "so far · about 1 min 50 s left" in times
    assert not browser.find_element(By.ID, "training-outcome").is_displayed()
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    assert layout_problems(browser, header=".topbar") == []
    screenshot(browser, "versions-training")

    # the training moves on: the page asks again by itself while one runs
    training.status = replace(training.status, phase="export", progress=0.9)
    wait(browser, lambda d: text(d, "training-phase").endswith("export"))
    assert float(browser.find_element(By.ID, "training-progress").get_attribute("value")) == pytest.approx(
        0.9
    )

    # done: the trained model routes, the bar goes, the outcome says how long it took
    training.status = TrainingStatus(
        state="ready",
        intents_version=training.status.intents_version,
        model=str(target),
        phase="done",
        progress=1.0,
        seconds=251.0,
    )
    assert training.live_plan is not None
    training.live_plan = Plan(str(target), None, training.live_plan.intents_version, 40)
    training.switched()  # the engine now routes with a model that is not the configured one
    wait(browser, lambda d: panel(d).get_attribute("data-training") == "ready")
    assert text(browser, "model-kind") == "Self-trained on this folder"
    assert not browser.find_element(By.ID, "model-training").is_displayed()
    assert text(browser, "training-outcome").startswith("The folder's model was trained in 4 min 11 s")


def test_stats_page_shows_a_failed_training_and_fits_a_phone(
    served: tuple[LiveServer, Training, Path], browser: Any
) -> None:
    live, training, _target = served
    as_phone(browser)
    browser.get(f"{live.url}/review/stats")
    wait(browser, lambda d: panel(d).get_attribute("data-training") == "running")
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true", 60)
    assert browser.find_element(By.ID, "training-progress").is_displayed()
    assert layout_problems(browser, header=".topbar") == []

    training.status = TrainingStatus(
        state="failed",
        intents_version=training.status.intents_version,
        phase="model",
        progress=0.3,
        seconds=42.0,
        error="exit 1: RuntimeError: out of memory",
    )
    wait(browser, lambda d: panel(d).get_attribute("data-training") == "failed")
    outcome = browser.find_element(By.ID, "training-outcome")
    assert outcome.is_displayed() and "error" in outcome.get_attribute("class")
    assert outcome.text == (
        "Training failed after 42 s: exit 1: RuntimeError: out of memory. The stock model keeps routing."
    )
    assert text(browser, "model-kind") == "Interim: stock model until trained"
    assert "training this folder version failed" in text(browser, "model-note")
    assert not browser.find_element(By.ID, "model-training").is_displayed()
    assert layout_problems(browser, header=".topbar") == []
    as_desktop(browser)
