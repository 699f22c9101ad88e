"""The webhooks page in headless Chromium (issue #30): a real server whose two subscriptions point at a local
endpoint that fails, so a handoff's deliveries exhaust their retries; the page lists them, the endpoint is
fixed, and Resend (one row, then "Resend all shown") delivers each, correctly signed, and empties the list."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from bot.api import create_app
from bot.config import Settings
from bot.routing.engine import Engine
from tests.api_support import make_intents
from tests.browser_support import LiveServer, as_desktop, as_phone, layout_problems, screenshot
from tests.runtime.test_outbox import SECRET, Receiver, documented_verify

ADMIN = {"Authorization": "Bearer admin-key"}
WIDGET = {"Authorization": "Bearer w-key"}
KEYS = "admin:admin-key,analyst:an-key,widget:w-key"
HELPDESK_SECRET = "whsec_helpdesk_fedcba9876543210"  # the second subscription signs with its own


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    one = Receiver(failures=10**9)  # down until the test fixes it
    yield one
    one.close()


@pytest.fixture()
def live(tmp_path: Path, bundled_encoder, cache_dir: Path) -> Iterator[LiveServer]:
    settings = Settings(
        intents_dir=make_intents(tmp_path / "intents"),
        cache_dir=cache_dir,
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        api_keys=KEYS,
        threshold=0.5,
        margin=0.1,
        retrieval_threshold=0.5,
        webhook_retry_seconds=0.05,  # two quick tries, then the delivery is kept as failed
        webhook_max_attempts=2,
        webhook_timeout_seconds=2,
    )
    engine = Engine(settings, encoder=bundled_encoder)
    engine.load()
    with LiveServer(create_app(settings, engine=engine)) as server:
        yield server


def wait_for(check: Any, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)


def row_texts(browser: Any, table: str) -> list[list[str]]:
    rows = browser.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
    return [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]


def give_key(browser: Any, wait: WebDriverWait, key: str) -> None:
    dialog = browser.find_element(By.ID, "key-dialog")
    wait.until(lambda d: dialog.get_attribute("open") is not None)
    field = browser.find_element(By.ID, "key-input")
    field.clear()
    field.send_keys(key)
    dialog.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def state(row: WebElement) -> str:
    """The State cell's whole text (its label, and a Resend button's when there is one)."""
    return str(row.find_element(By.CSS_SELECTOR, "td.state-cell").get_attribute("textContent"))


def test_empty_page_says_what_to_do_and_an_analyst_key_is_not_enough(live: LiveServer, browser: Any) -> None:
    wait = WebDriverWait(browser, 30)
    browser.get(f"{live.url}/review/webhooks")
    give_key(browser, wait, "an-key")  # an analyst: the API answers 403, the dialog says why and asks again
    error = browser.find_element(By.CSS_SELECTOR, "#key-dialog .error")
    wait.until(lambda d: error.text != "")
    assert "admin" in error.text
    give_key(browser, wait, "admin-key")
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    (subscriptions,) = row_texts(browser, "subscriptions")
    assert subscriptions[0].startswith("No subscriptions") and "POST /v1/admin/webhooks" in subscriptions[0]
    assert "BOT_WEBHOOKS" in subscriptions[0]
    (failed,) = row_texts(browser, "failed")
    assert failed[0].startswith("No failed deliveries") and "re-send once its endpoint is fixed" in failed[0]
    assert browser.find_element(By.ID, "resend-all").get_attribute("disabled") is not None
    assert browser.find_element(By.ID, "summary-line").text == "0 subscriptions · 0 failed deliveries"
    for page in ("/review", "/review/stats", "/review/versions"):  # every analyst page links here
        assert '<a href="/review/webhooks">Webhooks</a>' in httpx.get(f"{live.url}{page}").text


def test_failed_deliveries_are_listed_and_resent_from_the_page(
    live: LiveServer, receiver: Receiver, browser: Any
) -> None:
    secrets, urls = {}, {}  # by subscription id
    with httpx.Client(base_url=live.url, timeout=30, headers=ADMIN) as http:
        for url, secret, events in (
            (f"{receiver.url}?to=crm", SECRET, []),
            (f"{receiver.url}?to=helpdesk", HELPDESK_SECRET, ["ticket.opened", "ticket.resolved"]),
        ):
            added = http.post("/v1/admin/webhooks", json={"url": url, "secret": secret, "events": events})
            assert added.status_code == 201
            secrets[added.json()["id"]], urls[added.json()["id"]] = secret, url
        reply = http.post("/v1/chat", json={"message": "I want to talk to a real person"}, headers=WIDGET)
        assert reply.json()["route"] == "handoff"

        def failed() -> list[dict[str, Any]]:
            return list(http.get("/v1/admin/webhooks/failed").json()["items"])

        wait_for(lambda: len(failed()) == 2)  # one ticket.opened for each subscription, both given up on
        deliveries = failed()
    assert len(receiver.received) == 4 and not receiver.accepted()  # two tries each, all refused

    wait = WebDriverWait(browser, 30)
    browser.get(f"{live.url}/review/webhooks")
    give_key(browser, wait, "admin-key")
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    assert [row[0] for row in row_texts(browser, "subscriptions")] == list(urls.values())
    assert [row[1] for row in row_texts(browser, "subscriptions")] == [
        "all events",
        "ticket.opened, ticket.resolved",
    ]
    page = browser.page_source
    assert SECRET not in page and HELPDESK_SECRET not in page and "****" not in page  # not even masked
    shown = row_texts(browser, "failed")
    assert [row[:5] for row in shown] == [  # newest first, as the API lists them
        ["ticket.opened", d["event_id"], urls[d["subscription_id"]], "2", "HTTP 500"] for d in deliveries
    ]
    assert [state(row) for row in browser.find_elements(By.CSS_SELECTOR, "#failed tbody tr")] == [
        "FailedResend",
        "FailedResend",
    ]
    assert browser.find_element(By.ID, "summary-line").text == "2 subscriptions · 2 failed deliveries"
    assert browser.find_element(By.ID, "resend-all").text == "Resend all shown (2)"
    as_phone(browser)  # each delivery a card of its own, nothing beside the screen
    assert layout_problems(browser, header=".topbar") == []
    as_desktop(browser)

    receiver.failures = 0  # the endpoint is fixed
    first, second = (browser.find_element(By.ID, f"d-{d['id']}") for d in deliveries)
    first.find_element(By.CSS_SELECTOR, "[data-resend]").click()
    wait.until(lambda d: first.get_attribute("data-state") == "delivered")
    assert state(first).startswith("Delivered ") and "null" not in state(first)
    assert state(second) == "FailedResend"
    assert first.find_elements(By.CSS_SELECTOR, "[data-resend]") == []
    assert browser.find_element(By.ID, "summary-line").text == (
        "2 subscriptions · 1 failed delivery · 1 delivered after a re-send"
    )
    verify = documented_verify()
    (status, headers, body) = receiver.received[-1]
    assert status == 200 and headers["Bot-Event-Id"] == deliveries[0]["event_id"]
    first_secret, second_secret = (secrets[d["subscription_id"]] for d in deliveries)
    assert verify(first_secret, headers["Bot-Signature"], body)  # signed with its subscription's secret
    assert not verify(second_secret, headers["Bot-Signature"], body)
    assert json.loads(body)["type"] == "ticket.opened"
    assert layout_problems(browser, header=".topbar") == []
    height, chrome = browser.execute_script(  # the content's height (scrollHeight is at least the window's)
        "return [Math.ceil(document.querySelector('main').getBoundingClientRect().bottom),"
        " window.outerHeight - window.innerHeight]"
    )
    browser.set_window_size(1280, min(height, 900) + chrome)  # the page, without a screenful of nothing
    screenshot(browser, "webhooks")
    browser.set_window_size(1280, 900)

    browser.find_element(By.ID, "resend-all").click()
    browser.switch_to.alert.accept()  # "Resend 1 failed delivery? ..."
    wait.until(lambda d: second.get_attribute("data-state") == "delivered")
    (status, headers, body) = receiver.received[-1]
    assert headers["Bot-Event-Id"] == deliveries[1]["event_id"]
    assert verify(second_secret, headers["Bot-Signature"], body)
    assert len(receiver.accepted()) == 2  # each event once, none twice
    assert browser.find_element(By.ID, "resend-all").get_attribute("disabled") is not None

    browser.find_element(By.ID, "refresh").click()  # the delivered rows leave the failed list
    wait.until(lambda d: d.find_elements(By.ID, "no-failed"))
    assert httpx.get(f"{live.url}/v1/admin/webhooks/failed", headers=ADMIN).json()["total"] == 0
    assert browser.find_element(By.ID, "summary-line").text == "2 subscriptions · 0 failed deliveries"
