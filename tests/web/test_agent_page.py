"""The agent console on a phone, and the icon every page asks for, against the real app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from bot.api import create_app
from bot.routing.engine import Engine
from tests.browser_support import LiveServer, as_desktop, as_phone, layout_problems, screenshot

pytestmark = pytest.mark.slow


@pytest.fixture()
def server(demo_engine: Engine, tmp_path: Path) -> Iterator[LiveServer]:
    settings = demo_engine.settings.with_overrides(database_url=f"sqlite:///{tmp_path / 'bot.store.db'}")
    engine = Engine(settings, encoder=demo_engine.query_encoder)
    engine.load()
    with LiveServer(create_app(settings, engine=engine)) as live:
        yield live


def chat(live: LiveServer, text: str, conversation_id: str | None = None) -> dict[str, Any]:
    body = {"message": text, "conversation_id": conversation_id} if conversation_id else {"message": text}
    response = httpx.post(f"{live.url}/v1/chat", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait(driver: Any, condition: Any, timeout: float = 15) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d))


def test_the_console_works_on_a_phone(server: LiveServer, browser: Any) -> None:
    first = chat(server, "I was charged a fee when I took money out of an ATM in Spain yesterday")
    chat(server, "can I talk to a real person please", first["conversation_id"])
    as_phone(browser)
    browser.get(f"{server.url}/agent")
    name = wait(browser, lambda d: d.find_element(By.ID, "agent-name"))
    name.send_keys("Ann")
    (item,) = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#open-list .ticket-item"))
    assert "can I talk to a real person please" in item.text  # the customer's words, not "No intent"
    assert layout_problems(browser, header=".topbar") == []
    assert name.is_displayed() and name.rect["x"] + name.rect["width"] <= 390
    item.click()
    claim = wait(browser, lambda d: d.find_element(By.ID, "claim"))
    wait(browser, lambda d: claim.is_displayed())
    claim.click()
    wait(browser, lambda d: d.find_element(By.ID, "reply-text").is_displayed())
    browser.find_element(By.ID, "reply-text").send_keys("Hi, I'm Ann. Let me look at that ATM fee for you.\n")
    transcript = browser.find_element(By.ID, "transcript")
    wait(browser, lambda d: "Let me look at that ATM fee" in transcript.text)
    assert layout_problems(browser, header=".topbar") == []
    browser.execute_script("window.scrollTo(0, 0)")
    screenshot(browser, "agent-phone")
    as_desktop(browser)


def test_favicon_is_served(server: LiveServer) -> None:
    response = httpx.get(f"{server.url}/favicon.ico")
    assert response.status_code == 200 and response.headers["content-type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO file's header


COFFEE = "I was charged twice for one coffee this morning"


def test_resolving_with_the_defaults_never_teaches_a_request_for_a_person(
    server: LiveServer, browser: Any
) -> None:
    """#27 item 6: the console starts on no intent, so Resolve with nothing changed learns nothing; an
    intent that hands off says it learns nothing, and learns nothing."""
    first = chat(server, COFFEE)
    chat(server, "let me speak to a human", first["conversation_id"])
    browser.get(f"{server.url}/agent")
    wait(browser, lambda d: d.find_element(By.ID, "agent-name")).send_keys("Ann")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#open-list .ticket-item"))[0].click()
    claim = wait(browser, lambda d: d.find_element(By.ID, "claim"))
    wait(browser, lambda d: claim.is_displayed())
    claim.click()
    wait(browser, lambda d: d.find_element(By.ID, "reply-text").is_displayed())
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#learn-list .learn-item"))
    # the bot's reading is shown, not chosen; the hint says nothing is learned without an intent
    assert browser.find_element(By.ID, "intent-list").get_attribute("value") == ""
    assert "“Human agent”" in browser.find_element(By.ID, "bot-reading").text
    assert "With no intent, nothing is learned." in browser.find_element(By.ID, "learn-hint").text
    browser.find_element(By.CSS_SELECTOR, "#resolve-form button[type=submit]").click()
    wait(browser, lambda d: "resolved" in d.find_element(By.ID, "ticket-meta").text)
    assert browser.find_element(By.ID, "ticket-error").text == ""
    assert learned(server) == {}

    # picking an intent that hands off: its boxes are off, the hint says why, and resolving learns nothing
    second = chat(server, COFFEE)
    chat(server, "let me speak to a human", second["conversation_id"])
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#open-list .ticket-item"))[0].click()
    wait(browser, lambda d: "Ticket #2" in d.find_element(By.ID, "ticket-title").text)
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#learn-list .learn-item"))
    browser.find_element(By.ID, "intent-search").send_keys("human agent")
    wait(browser, lambda d: d.find_element(By.ID, "intent-list").get_attribute("value") == "human_agent")
    hint = browser.find_element(By.ID, "learn-hint").text
    assert "always hands off to a person, so nothing is learned into it" in hint
    boxes = browser.find_elements(By.CSS_SELECTOR, "#learn-list input.learn-check")
    assert boxes and not any(box.is_enabled() for box in boxes)
    browser.find_element(By.CSS_SELECTOR, "#resolve-form button[type=submit]").click()
    wait(browser, lambda d: "resolved" in d.find_element(By.ID, "ticket-meta").text)
    assert browser.find_element(By.ID, "ticket-error").text == ""
    assert learned(server) == {}


def learned(live: LiveServer) -> dict[str, list[str]]:
    intents = httpx.get(f"{live.url}/v1/intents", timeout=30).json()["intents"]
    return {i["name"]: i["learned_examples"] for i in intents if i["learned_examples"]}
