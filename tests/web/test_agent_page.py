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
