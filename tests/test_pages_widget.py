"""The chat widget on the demo page and the agent console, end to end in headless Chromium."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.api import create_app
from bot.routing.engine import Engine
from tests.browser_support import LiveServer, screenshot

pytestmark = pytest.mark.slow

XSS = "<img src=x onerror=alert(1)>"
AGENT_REPLY = f"Hi, I'm Ann from Larkspur. I see {XSS} here, how can I help?"
KEYS = "widget:w-key,agent:a-key"


def live(demo_engine: Engine, tmp_path: Path, **settings: object) -> LiveServer:
    """The real app on the shipped demo intents with a fresh engine and an empty SQLite database."""
    configured = demo_engine.settings.with_overrides(
        database_url=f"sqlite:///{tmp_path / 'bot.store.db'}", **settings
    )
    engine = Engine(configured, encoder=demo_engine.query_encoder)
    engine.load()
    return LiveServer(create_app(configured, engine=engine))


@pytest.fixture()
def server(demo_engine: Engine, tmp_path: Path) -> Iterator[LiveServer]:
    with live(demo_engine, tmp_path) as running:
        yield running


def wait(driver: Any, condition: Callable[[], Any], timeout: float = 15) -> Any:
    """Poll `condition` until it returns something truthy."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda _: condition())


class Widget:
    """The widget inside the demo page's shadow root."""

    def __init__(self, driver: Any) -> None:
        from selenium.webdriver.common.by import By

        self.driver, self.by = driver, By
        self.host = wait(
            driver, lambda: driver.find_elements(By.CSS_SELECTOR, "[data-intent-router-widget]")
        )[0]
        self.root = self.host.shadow_root

    def find(self, selector: str) -> list[Any]:
        return list(self.root.find_elements(self.by.CSS_SELECTOR, selector))

    def bubbles(self) -> list[str]:
        return [b.text for b in self.find(".msg .bubble")]

    def status(self) -> str:
        (status,) = self.find(".status")
        return str(status.text)

    def js(self, script: str) -> Any:
        """Run `script` with `root` bound to the widget's shadow root."""
        return self.driver.execute_script(f"const root = arguments[0].shadowRoot; {script}", self.host)

    def send(self, text: str) -> None:
        (box,) = self.find("textarea")
        box.send_keys(text)
        box.send_keys("\n")  # Enter sends

    def wait_for_bubble(self, contains: str) -> None:
        wait(self.driver, lambda: any(contains in text for text in self.bubbles()))


def assert_no_injection(driver: Any, widget: Widget | None = None) -> None:
    """No <img> element exists anywhere (page or widget shadow root), and no alert is open."""
    from selenium.common.exceptions import NoAlertPresentException

    assert driver.execute_script("return document.querySelectorAll('img').length") == 0
    if widget is not None:
        assert widget.js("return root.querySelectorAll('img').length") == 0
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018


def test_customer_and_agent_talk_through_the_widget_and_the_console(server: LiveServer, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = browser
    driver.get(f"{server.url}/demo")
    widget = Widget(driver)
    (launcher,) = widget.find(".launcher")
    assert launcher.get_attribute("aria-expanded") == "false"
    launcher.click()
    assert widget.js("return root.activeElement && root.activeElement.id") == "ir-input"  # focus moved in
    assert widget.find(".log")[0].get_attribute("aria-live") == "polite"

    # a question the bot answers
    widget.send("my new card still hasn't come")
    widget.wait_for_bubble("Track delivery")

    # an ambiguous one: the bot asks, the customer clicks an option, the bot answers it
    widget.send("how do I top up")
    buttons = wait(driver, lambda: widget.find(".choices button"))
    assert [b.text for b in buttons] == ["Automatic top up", "Top up failed"]
    buttons[0].click()
    widget.wait_for_bubble("Auto top-up")
    assert all(not b.is_enabled() for b in widget.find(".choices button"))

    # asking for a person opens a ticket, and the widget says so
    widget.send("can I talk to a real person please")
    wait(driver, lambda: "ticket #1" in widget.status())
    widget.send(XSS)
    widget.wait_for_bubble(XSS)  # shown literally, as text
    assert_no_injection(driver, widget)
    customer_window = driver.current_window_handle

    # the agent, in a second window, finds the ticket with the conversation and the bot's decisions
    driver.switch_to.new_window("window")
    driver.get(f"{server.url}/agent")
    driver.find_element(By.ID, "agent-name").send_keys("Ann")
    wait(driver, lambda: driver.find_elements(By.CSS_SELECTOR, "#open-list .ticket-item"))[0].click()
    transcript = driver.find_element(By.ID, "transcript")
    wait(driver, lambda: XSS in transcript.text)
    assert "can I talk to a real person please" in transcript.text
    routes = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#transcript .decision .route")]
    assert routes[:3] == ["ANSWER", "CLARIFY", "ANSWER"] and routes[-2:] == ["HANDOFF", "HANDOFF"]
    assert_no_injection(driver)

    driver.find_element(By.ID, "claim").click()
    reply = wait(driver, lambda: driver.find_element(By.ID, "reply-text").is_displayed())
    assert reply
    driver.find_element(By.ID, "reply-text").send_keys(AGENT_REPLY, Keys.ENTER)
    wait(driver, lambda: AGENT_REPLY in transcript.text)
    assert driver.find_element(By.ID, "claimed-count").text == "1"
    assert_no_injection(driver)
    # open the decision that handed off, so the screenshot shows the trail
    driver.find_elements(By.CSS_SELECTOR, "#transcript .decision summary")[-2].click()
    driver.set_window_size(1280, 1000)
    screenshot(driver, "agent")
    agent_window = driver.current_window_handle

    # the customer's open panel shows the reply without a reload
    driver.switch_to.window(customer_window)
    widget.wait_for_bubble(AGENT_REPLY)
    wait(driver, lambda: "chatting with Ann" in widget.status())
    assert "Ann" in widget.find(".msg.agent .meta")[0].text
    assert_no_injection(driver, widget)
    screenshot(driver, "widget")

    # a reload keeps the conversation (restored from the API) and the open panel
    before = widget.bubbles()
    driver.refresh()
    widget = Widget(driver)
    wait(driver, lambda: widget.bubbles() == before)
    assert "chatting with Ann" in widget.status()
    assert_no_injection(driver, widget)

    # Escape closes the panel and gives focus back to the launcher
    widget.find("textarea")[0].send_keys(Keys.ESCAPE)
    assert not widget.find(".panel")[0].is_displayed()
    assert widget.js("return root.activeElement && root.activeElement.className") == "launcher"

    # the agent resolves with the intent that was really meant; the bot answers the customer again
    driver.switch_to.window(agent_window)
    driver.find_element(By.ID, "intent-search").send_keys("card arrival")
    driver.find_element(By.CSS_SELECTOR, "#resolve-form button[type=submit]").click()
    wait(driver, lambda: "resolved" in driver.find_element(By.ID, "ticket-meta").text)
    wait(driver, lambda: driver.find_element(By.ID, "claimed-count").text == "0")
    driver.switch_to.window(customer_window)
    widget.find(".launcher")[0].click()
    widget.send("what exchange rate do you use")
    widget.wait_for_bubble("interbank")
    wait(driver, lambda: not widget.find(".status")[0].is_displayed())


def test_keys_agent_console_asks_for_one_and_the_demo_takes_one(
    demo_engine: Engine, tmp_path: Path, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    with live(demo_engine, tmp_path, api_keys=KEYS) as server:
        driver.get(f"{server.url}/demo?key=w-key")
        widget = Widget(driver)
        widget.find(".launcher")[0].click()
        widget.send("my new card still hasn't come")
        widget.wait_for_bubble("Track delivery")

        driver.get(f"{server.url}/agent")
        key = wait(driver, lambda: driver.find_element(By.ID, "api-key").is_displayed())
        assert key and not driver.find_element(By.ID, "app").is_displayed()
        driver.find_element(By.ID, "api-key").send_keys("w-key\n")  # a widget key may not open the queue
        wait(driver, lambda: "cannot open the queue" in driver.find_element(By.ID, "login-error").text)
        driver.find_element(By.ID, "api-key").send_keys("a-key\n")
        wait(driver, lambda: driver.find_element(By.ID, "app").is_displayed())
        assert driver.find_element(By.ID, "connection").text == "Signed in"
        assert driver.execute_script("return sessionStorage.getItem('intent-router-agent-key')") == "a-key"


def test_a_key_of_ones_own_fills_in_and_fixes_the_agent_name(
    demo_engine: Engine, tmp_path: Path, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    with live(demo_engine, tmp_path, api_keys="widget:w-key,agent@Ann Lee:ann-key,agent:team-key") as server:
        driver.get(f"{server.url}/agent")
        wait(driver, lambda: driver.find_element(By.ID, "api-key").is_displayed())
        driver.find_element(By.ID, "api-key").send_keys("ann-key\n")
        name = driver.find_element(By.ID, "agent-name")
        wait(driver, lambda: name.get_attribute("value") == "Ann Lee")
        assert name.get_attribute("readonly") is not None
        driver.find_element(By.ID, "sign-out").click()  # a shared key names nobody: the field is open again
        driver.find_element(By.ID, "api-key").send_keys("team-key\n")
        wait(driver, lambda: driver.find_element(By.ID, "app").is_displayed())
        wait(driver, lambda: name.get_attribute("readonly") is None)
