"""The home page in Debian's Chromium against a real server and the real model."""

from urllib.parse import quote

from tests.browser.conftest import screenshot
from tests.browser.server import wait_idle


def test_home_shows_the_continuation(server, page):
    page.goto(f"{server}/?prompt={quote('The cure for cancer is')}&new=8")
    wait_idle(page)
    main = page.locator("[data-testid='stMain']")
    main.get_by_text("The model's continuation").wait_for()
    continuation = main.locator("strong", has_text="a").first
    assert continuation.inner_text().strip()
    assert "8 tokens, greedy decoding" in main.inner_text()
    assert page.locator("[data-testid='stException']").count() == 0
    screenshot(page, "home")


def test_hostile_link_gives_notices_and_a_working_page(server, page):
    page.goto(f"{server}/?new=0&model=..%2F..%2Fetc&bogus=%3Cscript%3E")
    wait_idle(page)
    text = page.locator("[data-testid='stMain']").inner_text()
    assert "Unknown model" in text and "must be 1–128" in text
    assert page.locator("[data-testid='stException']").count() == 0
    page.get_by_text("The model's continuation").wait_for()
    screenshot(page, "home-hostile")
