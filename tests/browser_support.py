"""Fixtures for page tests: the real app served on 127.0.0.1 and headless Debian Chromium via Selenium."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.servers import free_port

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


class LiveServer:
    """Runs an ASGI app under uvicorn in a background thread on a free localhost port."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the live server did not start within 60 s")

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def chromium_paths() -> tuple[str, str]:
    """Debian's chromium and chromedriver, or skip (locally) / fail (in CI) with the install command."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    message = "headless Chromium is not installed: apt-get install -y chromium chromium-driver"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture()
def browser() -> Iterator[Any]:
    """A headless Chromium driven by Selenium, with a fresh profile, closed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    profile = tempfile.mkdtemp(prefix="chromium-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console lines, for get_log("browser")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: Any, name: str) -> Path:
    """Save a PNG: into docs/screenshots/ (the README's) with BOT_UPDATE_SCREENSHOTS=1, else a temp folder."""
    folder = SCREENSHOTS if os.environ.get("BOT_UPDATE_SCREENSHOTS") == "1" else Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"could not save {path}"
    return path


PHONE = (390, 844)  # CSS pixels of a current mid-size phone (iPhone 12-15)


def as_phone(driver: Any) -> None:
    """Emulate a phone: a 390x844 viewport at 2x, the meta viewport honoured, touch input."""
    width, height = PHONE
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": True},
    )
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True})


def as_desktop(driver: Any) -> None:
    """Back to the window's own size after `as_phone`."""
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": False})


def layout_problems(driver: Any, header: str | None = None) -> list[str]:
    """What is wrong with the page at the current viewport: sideways scroll, a header cut off."""
    problems = []
    scroll, client = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    if scroll > client:
        problems.append(f"the page scrolls sideways: {scroll}px wide in a {client}px viewport")
    if header is not None:
        cut = driver.execute_script(
            """
            const width = document.documentElement.clientWidth;
            return [...document.querySelectorAll(arguments[0] + ' *')]
              .filter((node) => node.getClientRects().length && getComputedStyle(node).visibility !== 'hidden')
              .filter((node) => { const r = node.getBoundingClientRect(); return r.left < -1 || r.right > width + 1; })
              .map((node) => node.tagName.toLowerCase() + (node.id ? '#' + node.id : ''));
            """,
            header,
        )
        problems += [f"{node} sticks out of the header" for node in cut]
    return problems
