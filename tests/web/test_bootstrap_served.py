"""The drafts page served by `bot serve` (/review/bootstrap, BOT_BOOTSTRAP_DIR) in real Chromium: an admin key
opens it, a person decides the drafts, and Save writes the reviewed drafts.yaml into the drafts folder, where
it loads as intents; the folder the server routes with is never touched. The API behind it is checked too:
keys, a missing, unwritable or live drafts folder, decisions that make no valid file, and a folder of 250
drafts saved under the default request body limit (the page sends decisions, not the file)."""

from __future__ import annotations

import os
import shutil
import stat
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
from bot.insights.bootstrap import Draft, Result
from bot.insights.bootstrap_folder import Source, _quote, prepare, write_folder
from bot.insights.bootstrap_served import (
    MAX_DECISIONS,
    Decision,
    make_reviewed,
    read_drafts,
    save_reviewed,
)
from bot.routing.engine import Engine
from tests.api_support import make_intents
from tests.browser_support import LiveServer, as_desktop, as_phone, layout_problems, screenshot
from tests.web.test_bootstrap_page import DRAFTS, decide, draft
from tests.web.test_webhooks_page import give_key

ADMIN = {"Authorization": "Bearer admin-key"}
KEYS = "admin:admin-key,analyst:an-key"


def drafted(folder: Path, drafts: tuple[Draft, ...] = DRAFTS, messages: int = 1000) -> Path:
    covered = sum(d.size for d in drafts)
    result = Result(
        drafts=drafts,
        knowledge=(),
        messages=messages,
        distinct=(),
        counts=(),
        sampled=800,
        unassigned=messages - covered,
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
    make, save = browser.find_element(By.ID, "make"), browser.find_element(By.ID, "save")
    download = browser.find_element(By.ID, "download")
    make.click()
    wait.until(lambda d: save.is_displayed())
    made = browser.find_element(By.ID, "result").get_attribute("value")
    assert (
        made.startswith("# Intents reviewed on the drafts page") and "merged into it: card_arrival_2" in made
    )
    # a change after Make takes the made file away: neither Save nor Download can send earlier decisions
    decide(browser, 3, "accept")
    assert not save.is_displayed() and not download.is_displayed()
    decide(browser, 3, "drop")
    make.click()
    wait.until(lambda d: save.is_displayed())
    rows = browser.find_elements(By.CSS_SELECTOR, "#rows tr")
    rows[1].find_element(By.CSS_SELECTOR, "input.name").send_keys("s")  # exchange_rates
    assert not save.is_displayed() and not download.is_displayed()
    make.click()
    wait.until(lambda d: save.is_displayed())
    screenshot(browser, "bootstrap-served")
    save.click()
    note = browser.find_element(By.ID, "result-note")
    wait.until(lambda d: note.text.startswith("Saved") or note.text.startswith("Not saved"))
    assert note.text.startswith(f"Saved 2 intents to {settings.bootstrap_dir / 'drafts.yaml'}"), note.text
    intents = {i.name: i for i in load_intents(settings.bootstrap_dir).intents}
    assert {"card_arrival", "exchange_rates"} <= set(intents) and "hello_there" not in intents
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
    body = {"version": "0", "decisions": [{"draft": "card_arrival", "decision": "accept"}]}
    assert (
        httpx.put(f"{server.url}/v1/admin/bootstrap/reviewed", json=body, headers=analyst).status_code == 403
    )
    got = httpx.get(f"{server.url}/v1/admin/bootstrap", headers=ADMIN).json()
    assert [d["name"] for d in got["summary"]["drafts"]] == [d.name for d in DRAFTS]
    assert len(got["version"]) == 16


ACCEPT = {"draft": "card_arrival", "decision": "accept"}


@pytest.mark.parametrize(
    ("decisions", "said"),
    [
        (
            [{"draft": "nope", "decision": "accept"}],
            "no draft is named 'nope' in drafts.json; reload the page",
        ),
        ([ACCEPT, ACCEPT], "'card_arrival' is decided twice"),
        ([{**ACCEPT, "name": "Card Arrival"}], "'Card Arrival' is not a valid name: lower-case letters"),
        (
            [ACCEPT, {"draft": "exchange_rate", "decision": "accept", "name": "card_arrival"}],
            "'card_arrival' and 'exchange_rate' are both named 'card_arrival'; rename or merge one",
        ),
        (
            [
                ACCEPT,
                {"draft": "hello_there", "decision": "drop"},
                {"draft": "card_arrival_2", "decision": "merge", "into": "hello_there"},
            ],
            "'card_arrival_2' is merged into 'hello_there', which is not accepted",
        ),
        (
            [
                ACCEPT,
                {"draft": "hello_there", "decision": "merge", "into": "card_arrival_2"},
                {"draft": "card_arrival_2", "decision": "merge", "into": "hello_there"},
            ],
            "merged in a circle",
        ),
        ([{"draft": "hello_there", "decision": "merge", "into": "nope"}], "which is no other draft"),
        ([{"draft": "hello_there", "decision": "drop"}], "no draft is accepted yet"),
    ],
)
def test_decisions_that_make_no_valid_file_are_refused_and_nothing_is_written(
    live: tuple[LiveServer, Settings], decisions: list[dict[str, str]], said: str
) -> None:
    server, settings = live
    assert settings.bootstrap_dir is not None
    before = (settings.bootstrap_dir / "drafts.yaml").read_bytes()
    with httpx.Client(base_url=server.url, headers=ADMIN) as client:
        version = client.get("/v1/admin/bootstrap").json()["version"]
        for path, method in (("/v1/admin/bootstrap/made", "POST"), ("/v1/admin/bootstrap/reviewed", "PUT")):
            answer = client.request(method, path, json={"version": version, "decisions": decisions})
            assert answer.status_code == 422, answer.text
            assert said in answer.json()["error"]["message"], answer.text
    assert (settings.bootstrap_dir / "drafts.yaml").read_bytes() == before
    assert [p.name for p in settings.bootstrap_dir.iterdir() if p.name.startswith(".")] == []


def test_decisions_on_drafts_that_changed_since_the_page_read_them_are_refused(
    live: tuple[LiveServer, Settings],
) -> None:
    server, settings = live
    assert settings.bootstrap_dir is not None
    with httpx.Client(base_url=server.url, headers=ADMIN) as client:
        version = client.get("/v1/admin/bootstrap").json()["version"]
        summary = settings.bootstrap_dir / "drafts.json"
        summary.write_text(summary.read_text().replace("card_arrival_2", "card_delivery"))  # a new run
        answer = client.put("/v1/admin/bootstrap/reviewed", json={"version": version, "decisions": [ACCEPT]})
        assert answer.status_code == 409 and "reload the page and decide again" in answer.text, answer.text


def test_too_many_decisions_are_refused(tmp_path: Path) -> None:
    settings = Settings(intents_dir=tmp_path / "intents", bootstrap_dir=drafted(tmp_path / "drafts"))
    version = str(read_drafts(settings)["version"])
    with pytest.raises(InvalidInputError, match="at most 5,000"):
        make_reviewed(settings, version, [Decision("card_arrival", "drop")] * (MAX_DECISIONS + 1))


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


@pytest.mark.parametrize("where", ["intents", "intents/knowledge", "."])  # is, sits inside, holds
def test_the_live_folder_is_never_a_drafts_folder(
    tmp_path: Path, bundled_encoder, cache_dir: Path, where: str
) -> None:
    folder = tmp_path / where
    with served(tmp_path, bundled_encoder, cache_dir, bootstrap_dir=folder) as client:
        before = {p: p.read_bytes() for p in (tmp_path / "intents").rglob("*") if p.is_file()}
        body = {"version": "0", "decisions": [ACCEPT]}
        for answer in (
            client.get("/v1/admin/bootstrap"),
            client.post("/v1/admin/bootstrap/made", json=body),
            client.put("/v1/admin/bootstrap/reviewed", json=body),
        ):
            assert answer.status_code == 409, answer.text
            assert "a folder this server routes with" in answer.json()["error"]["message"]
        assert {p: p.read_bytes() for p in (tmp_path / "intents").rglob("*") if p.is_file()} == before


def test_a_drafts_folder_that_is_missing_a_file_or_read_only_says_what_to_do(
    tmp_path: Path, bundled_encoder, cache_dir: Path
) -> None:
    body = {"version": "0", "decisions": [ACCEPT]}
    with served(tmp_path, bundled_encoder, cache_dir, bootstrap_dir=tmp_path / "nope") as client:
        answer = client.put("/v1/admin/bootstrap/reviewed", json=body)
        assert answer.status_code == 404 and "run `bot bootstrap --from FILE --out" in answer.text, (
            answer.text
        )
    (tmp_path / "afile").write_text("x")
    with served(tmp_path, bundled_encoder, cache_dir, bootstrap_dir=tmp_path / "afile") as client:
        answer = client.put("/v1/admin/bootstrap/reviewed", json=body)
        assert answer.status_code == 409 and f"{tmp_path / 'afile'} is a file" in answer.text, answer.text
    # a write the system refuses: drafts.yaml is a folder here (as root, a read-only folder is writable)
    folder = drafted(tmp_path / "drafts")
    (folder / "drafts.yaml").unlink()
    (folder / "drafts.yaml").mkdir()
    (folder / "drafts.yaml" / "x").write_text("x")
    with served(tmp_path, bundled_encoder, cache_dir, bootstrap_dir=folder) as client:
        body["version"] = client.get("/v1/admin/bootstrap").json()["version"]
        answer = client.put("/v1/admin/bootstrap/reviewed", json=body)
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"]["message"].startswith(f"{folder}: cannot write drafts.yaml (")
        assert answer.json()["error"]["message"].endswith(
            "); make the folder writable by the server, or use Download and save the file there yourself"
        )
        if os.geteuid() != 0:
            shutil.rmtree(folder / "drafts.yaml")
            folder.chmod(0o555)
            try:
                answer = client.put("/v1/admin/bootstrap/reviewed", json=body)
            finally:
                folder.chmod(0o755)
            assert answer.status_code == 409 and "(Permission denied)" in answer.text, answer.text


def test_the_saved_file_keeps_its_mode(tmp_path: Path) -> None:
    # a server running as a service user saves; the operator's `bot check` must still read the file
    settings = Settings(intents_dir=tmp_path / "intents", bootstrap_dir=drafted(tmp_path / "drafts"))
    reviewed = tmp_path / "drafts" / "drafts.yaml"
    version = str(read_drafts(settings)["version"])
    reviewed.chmod(0o640)
    save_reviewed(settings, version, [Decision("card_arrival", "accept")])
    assert stat.S_IMODE(reviewed.stat().st_mode) == 0o640
    reviewed.unlink()
    save_reviewed(settings, version, [Decision("card_arrival", "accept")])
    assert stat.S_IMODE(reviewed.stat().st_mode) == 0o644


ODD = "fee \x7f odd \x85 text\u2028 with \u200b and \U000e0001 marks 🙂"  # DEL, C1, line sep, format chars


def many_drafts(count: int) -> tuple[Draft, ...]:
    """`count` drafts about as large as BANKING77's (about 0.75 KB each in drafts.yaml)."""
    made = []
    for i in range(count):
        examples = tuple(
            f"customer question number {j} about topic {i}, worded the way a real person would ask it"
            for j in range(6)
        )
        if i == 0:
            examples += (ODD,)
        made.append(draft(f"topic_{i:03d}", examples, f"The answer about topic {i}, {'x' * 60}.", 40, 0.8))
    return tuple(made)


def test_a_banking77_sized_folder_saves_under_the_default_body_limit(
    tmp_path: Path, bundled_encoder, cache_dir: Path
) -> None:
    folder = drafted(tmp_path / "drafts", many_drafts(250), messages=12_000)
    limit = Settings(intents_dir=tmp_path).max_body_bytes
    assert limit == 65_536 and (folder / "drafts.yaml").stat().st_size > 2 * limit  # the file would not fit
    decisions: list[dict[str, str]] = [{"draft": f"topic_{i:03d}", "decision": "accept"} for i in range(240)]
    decisions += [
        {"draft": f"topic_{i:03d}", "decision": "merge", "into": "topic_001"} for i in range(240, 245)
    ]
    decisions += [{"draft": f"topic_{i:03d}", "decision": "drop"} for i in range(245, 250)]
    with served(tmp_path, bundled_encoder, cache_dir, bootstrap_dir=folder) as client:
        version = client.get("/v1/admin/bootstrap").json()["version"]
        answer = client.put("/v1/admin/bootstrap/reviewed", json={"version": version, "decisions": decisions})
    assert answer.status_code == 200, answer.text
    assert answer.json()["intents"] == 240
    loaded = load_intents(folder)
    intents = {i.name: i for i in loaded.intents if i.path == folder / "drafts.yaml"}
    assert len(intents) == 240
    assert ODD in intents["topic_000"].spec.examples  # escaped in the file, read back as it was
    assert len(intents["topic_001"].spec.examples) == 6 * 6
    # 12,000 messages, 40 each in the 245 kept drafts: 2,200 in no kept draft
    assert loaded.off_topic_share == 0.18


def test_the_file_page_writes_text_as_the_server_does(browser: Any, tmp_path: Path) -> None:
    # review.html has no server behind it, so it keeps its own writer; its quoting must be Python's
    folder = drafted(tmp_path / "drafts", many_drafts(3), messages=200)
    browser.get((folder / "review.html").as_uri())
    browser.find_element(By.ID, "accept-rest").click()
    browser.find_element(By.ID, "make").click()
    text = browser.find_element(By.ID, "result").get_attribute("value")
    assert f"      - {_quote(ODD)}" in text.splitlines()
    (folder / "drafts.yaml").write_text(text, encoding="utf-8")
    intents = {i.name: i for i in load_intents(folder).intents}
    assert ODD in intents["topic_000"].spec.examples
