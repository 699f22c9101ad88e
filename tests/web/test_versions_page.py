"""The versions page in headless Chromium: a routing diff of a stored version against live, then a rollback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from bot.api import create_app
from bot.config import Settings
from bot.routing.engine import Engine
from tests.api_support import make_intents
from tests.browser_support import LiveServer, as_desktop, as_phone, layout_problems, screenshot
from tests.chat.test_shadow import eventually
from tests.tuning.test_diff import ESTIMATE, ESTIMATE_NEW, MESSAGES, RATE, RATE_NEW


@pytest.fixture()
def server(tmp_path: Path, bundled_encoder, cache_dir: Path) -> Iterator[tuple[LiveServer, Path]]:
    folder = make_intents(tmp_path / "intents")
    settings = Settings(
        intents_dir=folder, cache_dir=cache_dir, database_url=f"sqlite:///{tmp_path / 'bot.store.db'}"
    )
    engine = Engine(settings, encoder=bundled_encoder)
    engine.load()
    with LiveServer(create_app(settings, engine=engine)) as live:
        yield live, folder


def test_versions_page_diffs_an_old_version_and_rolls_back_to_it(
    server: tuple[LiveServer, Path], browser: Any
) -> None:
    live, folder = server
    with httpx.Client(base_url=live.url, timeout=60) as http:
        v1 = http.get("/healthz").json()["intents_version"]
        for message in MESSAGES:  # customers talk to version 1
            http.post("/v1/chat", json={"message": message})
        bank = folder / "bank.yaml"
        bank.write_text(bank.read_text().replace(ESTIMATE, ESTIMATE_NEW).replace(RATE, RATE_NEW))
        assert http.post("/v1/admin/reload").status_code == 200  # version 2 goes live
        expected = http.post("/v1/admin/diff", json={"version_id": 1, "examples": 50}).json()
    assert expected["changed"] > 0

    wait = WebDriverWait(browser, 60)
    browser.get(f"{live.url}/review/versions")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#versions tbody tr")) == 2)
    assert "live" in browser.find_element(By.ID, "v-2").get_attribute("class")
    summary = browser.find_element(By.CSS_SELECTOR, "#v-2 td.summary").text
    assert summary == "changed card_delivery_estimate (description), exchange_rate (description)"
    model = browser.find_element(By.ID, "model-panel")
    wait.until(lambda d: model.get_attribute("data-loaded") == "true")
    assert model.get_attribute("data-kind") == "configured"  # a given engine: no self-training
    assert browser.find_element(By.ID, "model-kind").text == "Configured model"

    browser.find_element(By.CSS_SELECTOR, '[data-diff="1"]').click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#diff-groups .group"))
    groups = browser.find_elements(By.CSS_SELECTOR, "#diff-groups .group")
    shown = [g.find_element(By.CSS_SELECTOR, ".move").text for g in groups]
    assert shown == [f"{g['before']} → {g['after']}" for g in expected["groups"]]
    figures = browser.find_element(By.ID, "diff-figures").text
    assert f"{expected['changed']}\ndecided differently" in figures
    assert f"{len(MESSAGES)}\nmessages replayed" in figures
    examples = {
        li.text.split("”")[0].lstrip("“") for li in browser.find_elements(By.CSS_SELECTOR, ".group li")
    }
    assert examples == {e["text"] for g in expected["groups"] for e in g["examples"]}
    assert layout_problems(browser, header=".topbar") == []
    height, chrome = browser.execute_script(
        "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]"
    )
    browser.set_window_size(1280, height + chrome)  # the Model panel, the versions and the whole diff
    screenshot(browser, "versions")
    browser.set_window_size(1280, 900)

    # shadow version 1 behind live version 2: the same messages again, compared on the page
    browser.find_element(By.CSS_SELECTOR, '[data-shadow="1"]').click()
    wait.until(lambda d: not d.find_element(By.ID, "shadow-actions").get_attribute("hidden"))
    with httpx.Client(base_url=live.url, timeout=60) as http:
        for message in MESSAGES:
            http.post("/v1/chat", json={"message": message})
        assert eventually(lambda: http.get("/v1/shadow").json()["run"]["decided"] == len(MESSAGES))
        comparison = http.get("/v1/shadow").json()["comparison"]
    browser.find_element(By.ID, "shadow-refresh").click()
    wait.until(lambda d: "messages both decided" in d.find_element(By.ID, "shadow-figures").text)
    figures = browser.find_element(By.ID, "shadow-figures").text
    assert f"{len(MESSAGES)}\nmessages both decided" in figures
    assert f"{comparison['agreement'] * 100:.1f}%\nagreement" in figures
    moves = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#shadow-disagreements .move")]
    assert moves == [f"live {d['live']} · shadow {d['shadow']}" for d in comparison["disagreements"]]
    assert {(d["live"], d["shadow"]) for d in comparison["disagreements"]} == {
        (g["before"], g["after"]) for g in expected["groups"]
    }  # the shadow disagrees exactly where the diff said version 1 would
    browser.execute_script("document.getElementById('shadow').scrollIntoView()")
    screenshot(browser, "versions-shadow")

    # the stats page compares the same run: agreement and the most frequent disagreements
    browser.get(f"{live.url}/review/stats")
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    card = browser.find_element(By.ID, "shadow-card").text
    assert (
        f"{comparison['agreement'] * 100:.1f}%" in card and f"{len(MESSAGES)} messages both decided" in card
    )
    moves = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".shadow-moves li span:first-child")]
    assert moves == [f"live {d['live']} → shadow {d['shadow']}" for d in comparison["disagreements"]]
    browser.get(f"{live.url}/review/versions")
    wait.until(lambda d: not d.find_element(By.ID, "shadow-actions").get_attribute("hidden"))
    browser.find_element(By.ID, "shadow-stop").click()
    wait.until(lambda d: d.find_element(By.ID, "shadow-actions").get_attribute("hidden") is not None)

    browser.find_element(By.CSS_SELECTOR, '[data-activate="1"]').click()
    browser.switch_to.alert.accept()  # "Make version 1 live on every replica?"
    wait.until(lambda d: "live" in (d.find_element(By.ID, "v-1").get_attribute("class") or ""))
    assert httpx.get(f"{live.url}/healthz").json()["intents_version"] == v1
    assert browser.find_element(By.CSS_SELECTOR, '[data-activate="1"]').get_attribute("disabled") is not None

    as_phone(browser)
    browser.get(f"{live.url}/review/versions")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#versions tbody tr")) == 2)
    assert layout_problems(browser, header=".topbar") == []
    as_desktop(browser)

    # the review page names the version each decision was made by
    browser.get(f"{live.url}/review")
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    pill = wait.until(lambda d: d.find_element(By.ID, "decision-version"))
    # the newest message came while version 2 was live (the shadow round), the oldest under version 1
    assert pill.text == "version 2" and pill.get_attribute("href").endswith("/review/versions#v-2")
    browser.find_elements(By.CSS_SELECTOR, "#queue .row")[-1].click()
    wait.until(lambda d: d.find_element(By.ID, "decision-version").text == "version 1")
