"""The drafted-intents review page (DIR/review.html from `bot bootstrap`) in real Chromium: decide each draft,
make the reviewed drafts.yaml, and the folder it makes loads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from bot.content.intents import load_intents
from bot.insights.bootstrap import Draft, Result
from bot.insights.bootstrap_folder import Source, prepare, write_folder
from tests.browser_support import as_desktop, as_phone, layout_problems, screenshot


def draft(name: str, examples: tuple[str, ...], answer: str | None, size: int, mean: float) -> Draft:
    return Draft(
        name=name,
        description=f"Customers asking about {name.replace('_', ' ')}.",
        examples=examples,
        answer=answer,
        size=size,
        share=size / 1000,
        mean_similarity=mean,
        tight_share=0.6,
        answered=size if answer else 0,
        members=(),
    )


DRAFTS = (
    draft("card_arrival", ("where is my card", "my card has not arrived", "card still not here"),
          "Cards arrive within 5 working days; order a new one in the app after 7.", 412, 0.82),
    draft("exchange_rate", ("what exchange rate do you use", "is the rate fixed", "euro rate today?"),
          "We use the interbank rate at the time you pay.", 230, 0.79),
    draft("card_arrival_2", ("when does the card come", "how long is card delivery", "card delivery time"),
          None, 120, 0.77),
    draft("hello_there", ("hello there", "hi", "hey"), "Hi! How can I help?", 40, 0.61),
)  # fmt: skip


@pytest.fixture()
def page(tmp_path: Path) -> Path:
    """A drafted folder with its review page."""
    result = Result(
        drafts=DRAFTS, knowledge=(), messages=1000, distinct=(), counts=(), sampled=800, unassigned=198
    )
    folder = tmp_path / "drafts"
    prepare(folder, force=False)
    write_folder(result, folder, Source("history.csv", 1000, 3))
    return folder / "review.html"


def decide(browser: Any, row: int, decision: str, into: str | None = None) -> None:
    tr = browser.find_elements(By.CSS_SELECTOR, "#rows tr")[row]
    Select(tr.find_element(By.CSS_SELECTOR, "select.decision")).select_by_value(decision)
    if into is not None:
        Select(tr.find_element(By.CSS_SELECTOR, "select.merge-into")).select_by_visible_text(into)


def test_review_page_makes_a_folder_that_loads(browser: Any, page: Path, tmp_path: Path) -> None:
    browser.get(page.as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "#rows tr")
    assert len(rows) == 4
    assert "4 drafts covering 80% of 1,000 questions" in browser.find_element(By.ID, "summary-line").text
    assert "412 (41.2%)" in rows[0].text and "0.82 mean" in rows[0].text
    assert "none: hands off to a person" in rows[2].text
    decide(browser, 0, "accept")
    name = rows[0].find_element(By.CSS_SELECTOR, "input.name")
    name.clear()
    name.send_keys("card Delivery")  # not a valid name: said at once
    assert "lower-case letters, digits and _ only" in rows[0].text
    name.clear()
    name.send_keys("card_delivery")
    decide(browser, 2, "merge", into="card_arrival")
    decide(browser, 3, "drop")
    assert (
        browser.find_element(By.ID, "counts").text == "1 accepted · 1 merged · 1 dropped · 1 undecided of 4"
    )
    screenshot(browser, "bootstrap-review")
    browser.find_element(By.ID, "make").click()
    note = browser.find_element(By.ID, "result-note").text
    assert note.startswith("1 intents; 1 undecided drafts are left out")
    made = browser.find_element(By.ID, "result").get_attribute("value")
    folder = tmp_path / "reviewed"
    folder.mkdir()
    (folder / "drafts.yaml").write_text(made, encoding="utf-8")
    intents = {i.name: i for i in load_intents(folder).intents}
    assert "exchange_rate" not in intents and "hello_there" not in intents and "card_arrival" not in intents
    kept = intents["card_delivery"].spec
    assert kept.examples == DRAFTS[0].examples + DRAFTS[2].examples  # the merged draft's examples joined
    assert kept.answer == DRAFTS[0].answer
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_a_merge_into_a_dropped_draft_is_refused(browser: Any, page: Path) -> None:
    browser.get(page.as_uri())
    decide(browser, 0, "drop")
    decide(browser, 2, "merge", into="card_arrival")
    browser.find_element(By.ID, "accept-rest").click()
    browser.find_element(By.ID, "make").click()
    note = browser.find_element(By.ID, "result-note").text
    assert note == "Not made: 'card_arrival_2' is merged into 'card_arrival', which is not accepted."
    assert not browser.find_element(By.ID, "result").is_displayed()


def test_review_page_fits_a_phone(browser: Any, page: Path) -> None:
    as_phone(browser)
    try:
        browser.get(page.as_uri())
        assert layout_problems(browser, ".topbar") == []
    finally:
        as_desktop(browser)
