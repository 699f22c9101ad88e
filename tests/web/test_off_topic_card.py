"""The stats page's off-topic share card (#31 item 3) in Chromium: the estimate, the advice and the refit
button when the traffic's share is far from the one the operating point assumes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By

from bot.api import create_app
from bot.routing.engine import Engine
from tests.api_support import DEMO_INTENTS, seed_confidences
from tests.browser_support import LiveServer, screenshot
from tests.web.test_review_pages import wait


@pytest.fixture()
def served(demo_engine: Engine, tmp_path: Path) -> Iterator[tuple[LiveServer, str]]:
    """The demo folder self-calibrated (its calibration.yaml left out: the folder key refits only a
    self-calibration), on a database of its own, and that database's URL."""
    folder = tmp_path / "intents"
    shutil.copytree(DEMO_INTENTS, folder)
    (folder / "calibration.yaml").unlink()
    settings = demo_engine.settings.with_overrides(
        database_url=f"sqlite:///{tmp_path / 'bot.db'}", intents_dir=folder
    )
    engine = Engine(settings, encoder=demo_engine.query_encoder)
    engine.load()
    with LiveServer(create_app(settings, engine=engine)) as live:
        yield live, settings.database_url


def seed_traffic(url: str, calibration_id: str, off_topic: float = 0.4, n: int = 400) -> None:
    """`n` decisions of today scored with the live confidence map, `off_topic` of them low-confidence."""
    seed_confidences(url, calibration_id, n=n, off_topic=off_topic, seed=2)


def test_the_card_shows_the_estimate_and_a_refit_button(served: tuple[LiveServer, str], browser: Any) -> None:
    server, url = served
    ready = httpx.get(f"{server.url}/v1/stats", params={"days": 14}).json()
    seed_traffic(url, ready["operating_point"]["calibration_id"])
    found = httpx.get(f"{server.url}/v1/stats", params={"days": 14}).json()["off_topic"]
    assert found["enough"] and found["off"] and found["share"] > found["configured"]
    browser.get(f"{server.url}/review/stats")
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true", 60)
    advice = browser.find_element(By.ID, "off-topic-advice").text
    assert advice == found["advice"][0].upper() + found["advice"][1:] + "."
    assert advice.startswith("Traffic looks about ") and f"assumes {found['configured']:.0%}" in advice
    assert browser.find_element(By.ID, "off-topic").get_attribute("data-off") == "true"
    button = browser.find_element(By.ID, "off-topic-set")
    assert button.is_displayed() and button.text == f"Refit at {found['suggested']:.0%} off-topic"
    assert browser.find_element(By.ID, "off-topic-command").text == found["command"]
    assert found["refit"] == "folder" and found["reference"] == "general"
    browser.execute_script("document.getElementById('off-topic').scrollIntoView()")
    screenshot(browser, "stats-off-topic")
