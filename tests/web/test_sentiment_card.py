"""The stats page's "Sentiment by topic" card (#32 item 3) in Chromium: 20 days of messages with a surge
injected today in one topic; the card names that surge (and only it) with its most negative messages,
and lists each topic's negative share day by day."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By

from bot.api import create_app
from bot.routing.engine import Engine
from bot.runtime.sentiment import SentimentWatch
from bot.store.db import make_engine
from tests.browser_support import LiveServer, screenshot
from tests.runtime.test_sentiment_watch import NAMES, SURGE, seed_stream
from tests.web.test_review_pages import wait

# what the screenshot shows: customers' complaints about refunds, redacted as the logs keep them
REFUND_COMPLAINTS = (
    "Still no refund for order {n} after three weeks. This is ridiculous.",
    "You promised my refund for order {n} by Friday. Nothing. Again.",
    "Refund for {n} rejected without a reason, I'm fed up with this bank",
    "Why is my refund for {n} taking a MONTH? Give me my money back!",
)


def wording(intent: str, negative: bool, key: str) -> str:
    """Refund complaints that read like real ones (each with its own order number); the rest plain."""
    if intent == SURGE and negative:
        back, i = (int(part) for part in key.split("-"))
        return REFUND_COMPLAINTS[i % len(REFUND_COMPLAINTS)].format(n=f"#{40_000 + 97 * i + back}")
    return f"{'angry' if negative else 'calm'} {intent} message {key}"


@pytest.fixture()
def served(demo_engine: Engine, tmp_path: Path) -> Iterator[tuple[LiveServer, str]]:
    """The demo folder on a database of its own, and that database's URL."""
    settings = demo_engine.settings.with_overrides(database_url=f"sqlite:///{tmp_path / 'bot.db'}")
    with LiveServer(create_app(settings, engine=demo_engine)) as live:
        yield live, settings.database_url


def test_the_card_names_the_surge_and_shows_each_topic_by_day(
    served: tuple[LiveServer, str], browser: Any
) -> None:
    server, url = served
    now = datetime.now(UTC)
    surged = seed_stream(
        url, now, surge=SURGE, today=60, wording=wording
    )  # today's 60 whatever the hour the test runs
    database = make_engine(url)
    assert SentimentWatch(database, lambda: NAMES, clock=lambda: now)() is not None
    database.dispose()
    card = httpx.get(f"{server.url}/v1/stats", params={"days": 14}, timeout=120).json()["sentiment"]
    [surge] = card["surges"]
    assert surge["intent"] == SURGE and surge["active"] and set(surge["samples"]) <= set(surged)

    browser.get(f"{server.url}/review/stats")
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true", 120)
    shown = browser.find_elements(By.CSS_SELECTOR, "#sentiment-surges article.surge")
    assert [a.get_attribute("data-intent") for a in shown] == [SURGE]
    title = shown[0].find_element(By.TAG_NAME, "h3").text
    assert title == f"{SURGE}: {round(surge['share'] * 100)}% negative, found on {surge['day']} today"
    assert [li.text for li in shown[0].find_elements(By.TAG_NAME, "li")] == surge["samples"]
    assert f"against {round(surge['baseline_share'] * 100)}% over the 14 days before" in shown[0].text
    assert f"up to {surge['found_at'][11:16]} UTC" in shown[0].text

    rows = browser.find_elements(By.CSS_SELECTOR, "#sentiment-topics tbody tr")
    assert {r.get_attribute("data-intent") for r in rows} == set(NAMES)
    for row, topic in zip(rows, card["topics"], strict=True):
        assert row.get_attribute("data-intent") == topic["intent"]
        bars = row.find_elements(By.CSS_SELECTOR, "svg.spark rect")
        assert len(bars) == sum(1 for d in topic["per_day"] if d["messages"])  # a day without any: no bar
    caption = browser.find_element(By.ID, "sentiment-caption").text
    assert caption.startswith(
        f"A message counts as negative when its anger score is above {card['threshold']:.2f}"
    )
    browser.execute_script("document.getElementById('sentiment').scrollIntoView()")
    screenshot(browser, "stats-sentiment")
