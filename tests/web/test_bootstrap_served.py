"""The drafts page served by `bot serve` (/review/bootstrap, BOT_BOOTSTRAP_DIR) in real Chromium: an admin key
opens it, a person decides the drafts, and Save writes the reviewed drafts.yaml into the drafts folder, where
it loads as intents; the folder the server routes with is never touched. The API behind it is checked too:
keys, a missing or live drafts folder, and a reviewed file that does not load."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from bot.api import create_app
from bot.config import Settings
from bot.content.intents import load_intents
from bot.errors import InvalidInputError
from bot.insights.bootstrap import Result
from bot.insights.bootstrap_folder import Source, prepare, write_folder
from bot.insights.bootstrap_served import save_reviewed
from bot.routing.engine import Engine
from tests.api_support import make_intents
from tests.browser_support import LiveServer, as_desktop, as_phone, layout_problems, screenshot
from tests.web.test_bootstrap_page import DRAFTS, decide
from tests.web.test_webhooks_page import give_key

ADMIN = {"Authorization": "Bearer admin-key"}
KEYS = "admin:admin-key,analyst:an-key"


def drafted(folder: Path) -> Path:
    result = Result(
        drafts=DRAFTS, knowledge=(), messages=1000, distinct=(), counts=(), sampled=800, unassigned=198
    )
    prepare(folder, force=False)
    write_folder(result, folder, Source("history.csv", 1000, 3))
    return folder


@pytest.fixture()
def live(tmp_path: Path, bundled_encoder, cache_dir: Path) -> Iterator[tuple[LiveServer, Settings]]:
    settings = Settings(
        intents_dir=make_intents(tmp_path / "intents"),
        cache_dir=cache_dir,
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        api_keys=KEYS,
        bootstrap_dir=drafted(tmp_path / "drafts"),
    )
    engine = Engine(settings, encoder=bundled_encoder)
    engine.load()
    with LiveServer(create_app(settings, engine=engine)) as server:
        yield server, settings


def test_the_served_page_saves_the_reviewed_drafts_into_the_drafts_folder(
    browser: Any, live: tuple[LiveServer, Settings]
) -> None:
    server, settings = live
    assert settings.bootstrap_dir is not None
    live_files = {p: p.read_bytes() for p in settings.intents_dir.rglob("*") if p.is_file()}
    browser.get(f"{server.url}/review/bootstrap")
    wait = WebDriverWait(browser, 20)
    give_key(browser, wait, "admin-key")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#rows tr")) == 4)
    assert "4 drafts covering 80% of 1,000 questions" in browser.find_element(By.ID, "summary-line").text
    assert str(settings.bootstrap_dir) in browser.find_element(By.ID, "explain").text
    assert "A reviewed file was saved" not in browser.find_element(By.ID, "explain").text  # only drafted
    decide(browser, 0, "accept")
    decide(browser, 1, "accept")
    decide(browser, 2, "merge", into="card_arrival")
    decide(browser, 3, "drop")
    assert not browser.find_element(By.ID, "save").is_displayed()  # nothing made yet, nothing to save
    browser.find_element(By.ID, "make").click()
    save = browser.find_element(By.ID, "save")
    assert save.is_displayed()
    screenshot(browser, "bootstrap-served")
    save.click()
    note = browser.find_element(By.ID, "result-note")
    wait.until(lambda d: note.text.startswith("Saved") or note.text.startswith("Not saved"))
    assert note.text.startswith(f"Saved 2 intents to {settings.bootstrap_dir / 'drafts.yaml'}"), note.text
    intents = {i.name: i for i in load_intents(settings.bootstrap_dir).intents}
    assert {"card_arrival", "exchange_rate"} <= set(intents) and "hello_there" not in intents
    assert intents["card_arrival"].spec.examples == DRAFTS[0].examples + DRAFTS[2].examples
    # the history's messages in no kept draft: 198 never drafted and the 40 of the dropped draft
    assert load_intents(settings.bootstrap_dir).off_topic_share == 0.24
    # the live folder is as it was, and the server still routes with it
    assert {p: p.read_bytes() for p in settings.intents_dir.rglob("*") if p.is_file()} == live_files
    browser.refresh()  # the key stays in the tab; the page now says a review was saved
    explain = browser.find_element(By.ID, "explain")
    wait.until(lambda d: "A reviewed file was saved there" in explain.text)
    # the one failed request is the first, without a key, that opened the key dialog
    severe = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert [m for m in severe if "/v1/admin/bootstrap - " not in m or "401" not in m] == [], severe


def test_the_served_page_fits_a_phone(browser: Any, live: tuple[LiveServer, Settings]) -> None:
    server, _ = live
    as_phone(browser)
    try:
        browser.get(f"{server.url}/review/bootstrap")
        give_key(browser, WebDriverWait(browser, 20), "admin-key")
        WebDriverWait(browser, 20).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#rows tr")) == 4)
        assert layout_problems(browser, ".topbar") == []
    finally:
        as_desktop(browser)


def test_the_drafts_need_an_admin_key(live: tuple[LiveServer, Settings]) -> None:
    server, _ = live
    assert httpx.get(f"{server.url}/review/bootstrap").status_code == 200  # the page; its data needs a key
    assert httpx.get(f"{server.url}/v1/admin/bootstrap").status_code == 401
    analyst = {"Authorization": "Bearer an-key"}
    assert httpx.get(f"{server.url}/v1/admin/bootstrap", headers=analyst).status_code == 403
    body = {"yaml": "intents: []"}
    assert (
        httpx.put(f"{server.url}/v1/admin/bootstrap/reviewed", json=body, headers=analyst).status_code == 403
    )
    got = httpx.get(f"{server.url}/v1/admin/bootstrap", headers=ADMIN).json()
    assert [d["name"] for d in got["summary"]["drafts"]] == [d.name for d in DRAFTS]


def test_a_reviewed_file_that_does_not_load_is_refused_and_nothing_is_written(
    live: tuple[LiveServer, Settings],
) -> None:
    server, settings = live
    assert settings.bootstrap_dir is not None
    before = (settings.bootstrap_dir / "drafts.yaml").read_bytes()
    bad = (
        "intents:\n  - name: card\n    description: x\n    examples: ['a']\n"
        "  - name: card\n    description: y\n    examples: ['b']\n"
    )
    answer = httpx.put(f"{server.url}/v1/admin/bootstrap/reviewed", json={"yaml": bad}, headers=ADMIN)
    assert answer.status_code == 422
    message = answer.json()["error"]["message"]
    assert message == (
        "the reviewed drafts.yaml does not load: line 5: duplicate intent name 'card'; first defined at "
        "drafts.yaml:2"
    ), message
    assert (settings.bootstrap_dir / "drafts.yaml").read_bytes() == before
    assert [p.name for p in settings.bootstrap_dir.iterdir() if p.name.startswith(".")] == []


@contextmanager
def served(tmp_path: Path, bundled_encoder, cache_dir: Path, **overrides: Any) -> Iterator[httpx.Client]:
    settings = Settings(
        intents_dir=make_intents(tmp_path / "intents"),
        cache_dir=cache_dir,
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        api_keys=KEYS,
        **overrides,
    )
    engine = Engine(settings, encoder=bundled_encoder)
    engine.load()
    with (
        LiveServer(create_app(settings, engine=engine)) as server,
        httpx.Client(base_url=server.url, headers=ADMIN) as client,
    ):
        yield client


def test_without_a_drafts_folder_the_page_says_what_to_set(
    tmp_path: Path, bundled_encoder, cache_dir: Path
) -> None:
    with served(tmp_path, bundled_encoder, cache_dir) as client:
        answer = client.get("/v1/admin/bootstrap")
        assert answer.status_code == 404 and "set BOT_BOOTSTRAP_DIR" in answer.json()["error"]["message"]


def test_an_empty_drafts_folder_says_to_run_bootstrap(
    tmp_path: Path, bundled_encoder, cache_dir: Path
) -> None:
    (tmp_path / "empty").mkdir()
    with served(tmp_path, bundled_encoder, cache_dir, bootstrap_dir=tmp_path / "empty") as client:
        answer = client.get("/v1/admin/bootstrap")
        assert answer.status_code == 404 and "run `bot bootstrap" in answer.json()["error"]["message"]


def test_the_live_folder_is_never_a_drafts_folder(tmp_path: Path, bundled_encoder, cache_dir: Path) -> None:
    with served(tmp_path, bundled_encoder, cache_dir, bootstrap_dir=tmp_path / "intents") as client:
        before = {p: p.read_bytes() for p in (tmp_path / "intents").rglob("*") if p.is_file()}
        for answer in (
            client.get("/v1/admin/bootstrap"),
            client.put(
                "/v1/admin/bootstrap/reviewed", json={"yaml": "intents:\n  - name: a\n    examples: [x]\n"}
            ),
        ):
            assert answer.status_code == 409, answer.text
            assert "a folder this server routes with" in answer.json()["error"]["message"]
        assert {p: p.read_bytes() for p in (tmp_path / "intents").rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    ("text", "said"),
    [("intents:\x00", "unacceptable character #x0000"), ("a: \ud800", "surrogates not allowed")],
)
def test_text_no_file_can_hold_is_refused_before_the_server_guard_too(
    tmp_path: Path, text: str, said: str
) -> None:
    # the request guard cleans both from a body; the save refuses them itself, as a 422 rather than a 500
    settings = Settings(intents_dir=tmp_path / "intents", bootstrap_dir=drafted(tmp_path / "drafts"))
    with pytest.raises(InvalidInputError, match=said):
        save_reviewed(settings, text)
