"""The versions page in headless Chromium: a routing diff of a stored version against live, then a rollback."""

from __future__ import annotations

import shutil
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


def edit_and_reload(http: httpx.Client, folder: Path) -> None:
    """Customers talk to version 1, the folder is edited and reloaded: version 2 is live."""
    for message in MESSAGES:
        http.post("/v1/chat", json={"message": message})
    bank = folder / "bank.yaml"
    bank.write_text(bank.read_text().replace(ESTIMATE, ESTIMATE_NEW).replace(RATE, RATE_NEW))
    assert http.post("/v1/admin/reload").status_code == 200


def test_one_version_id_everywhere_and_the_reviewed_figure_counts_what_it_says(
    server: tuple[LiveServer, Path], browser: Any
) -> None:
    """#27 item 9: the header, list, diff, shadow, Model panel and /healthz//readyz all say "version N"
    (never an intents hash), and "of them reviewed" follows the replayed messages it counts."""
    live, folder = server
    with httpx.Client(base_url=live.url, timeout=60) as http:
        edit_and_reload(http, folder)
        hashes = {v["intents_version"] for v in http.get("/v1/versions").json()["items"]}
        assert http.get("/healthz").json()["version_id"] == http.get("/readyz").json()["version_id"] == 2
        unchanged = next(i for i in http.get("/v1/logs").json()["items"] if "weather" in i["text"])
        http.post(f"/v1/logs/{unchanged['id']}/review", json={"verdict": "correct"})
    wait = WebDriverWait(browser, 60)
    browser.get(f"{live.url}/review/versions")
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    browser.find_element(By.CSS_SELECTOR, '[data-diff="1"]').click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#diff-groups .group"))
    browser.find_element(By.CSS_SELECTOR, '[data-shadow="1"]').click()
    wait.until(lambda d: "Shadowing" in d.find_element(By.ID, "shadow-caption").text)
    wait.until(lambda d: "Version 2 (" in d.find_element(By.ID, "model-note").text)

    assert browser.find_element(By.ID, "live-line").text == "Live: version 2"
    assert browser.find_element(By.CSS_SELECTOR, "#v-2 td").text.startswith("version 2")
    assert browser.find_element(By.ID, "diff-caption").text.startswith("Live version 2 against version 1: ")
    assert browser.find_element(By.ID, "shadow-caption").text.startswith("Shadowing version 1 since ")
    page = browser.find_element(By.TAG_NAME, "body").text
    assert not [h for h in hashes if h in page]  # no second id for the same version
    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#diff-figures .label")]
    values = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#diff-figures .value")]
    assert labels[:3] == ["messages replayed", "of them reviewed", "decided differently"]
    assert values[:2] == [str(len(MESSAGES)), "1"]


def test_a_folder_shadowed_from_the_page_and_the_activation_history(
    server: tuple[LiveServer, Path], browser: Any
) -> None:
    """#27 item 9: a shadow run started on a candidate folder from the page (the API's refusal shown), the
    activation history (start, reload, rollback), and the table usable on a phone."""
    live, folder = server
    candidate = folder.parent / "intents-next"
    shutil.copytree(folder, candidate)
    with httpx.Client(base_url=live.url, timeout=60) as http:
        edit_and_reload(http, folder)
    wait = WebDriverWait(browser, 60)
    browser.get(f"{live.url}/review/versions")
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    browser.find_element(By.ID, "shadow-folder").send_keys("/etc")
    browser.find_element(By.ID, "shadow-start").click()
    wait.until(lambda d: "candidate roots" in d.find_element(By.ID, "shadow-error").text)
    field = browser.find_element(By.ID, "shadow-folder")
    field.clear()
    field.send_keys(str(candidate))
    browser.find_element(By.ID, "shadow-start").click()
    # the folder holds version 1's very files: it is named as version 1, with its folder
    wait.until(lambda d: f"Shadowing version 1 ({candidate})" in d.find_element(By.ID, "shadow-caption").text)
    assert browser.find_element(By.ID, "shadow-error").text == ""
    browser.find_element(By.ID, "shadow-stop").click()
    browser.find_element(By.CSS_SELECTOR, '[data-activate="1"]').click()
    browser.switch_to.alert.accept()
    wait.until(lambda d: "live" in (d.find_element(By.ID, "v-1").get_attribute("class") or ""))

    def history() -> list[list[str]]:
        found = browser.find_elements(By.CSS_SELECTOR, "#history-table tbody tr")
        return [[r.get_attribute("data-version"), r.find_element(By.CLASS_NAME, "how").text] for r in found]

    wait.until(lambda d: len(history()) == 3)
    assert history() == [["1", "rollback"], ["2", "reload of the folder"], ["1", "server start"]]

    as_phone(browser)
    browser.refresh()
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    assert layout_problems(browser, header=".topbar") == []
    outside = browser.execute_script(
        """const width = document.documentElement.clientWidth;
        return [...document.querySelectorAll('#versions button, #history-table td')].filter((node) => {
          const r = node.getBoundingClientRect(), size = parseFloat(getComputedStyle(node).fontSize);
          return r.left < 0 || r.right > width || size < 11;
        }).map((node) => node.outerHTML.slice(0, 60));"""
    )
    assert outside == []
    screenshot(browser, "versions-phone")
    as_desktop(browser)
