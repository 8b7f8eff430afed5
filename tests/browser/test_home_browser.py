"""The home page in Debian's Chromium against a real server and the real model."""

from urllib.parse import quote

from lib.serve import streamlit_server, wait_idle
from tests.browser.conftest import screenshot


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


def test_a_deep_link_on_a_fresh_server_runs_the_router(page):
    """The first request a new server gets is a deep link: it must still get the sidebar."""
    with streamlit_server() as fresh:
        page.goto(f"{fresh}/architectures?tokens=5&token=9")
        wait_idle(page)
        sidebar = page.locator("[data-testid='stSidebar']")
        assert sidebar.get_by_text("Share this view").count() == 1
        assert "must be 0–4" in page.locator("[data-testid='stMain']").inner_text()


def test_the_address_bar_keeps_the_link_it_was_opened_with(server, page):
    """Widgets bound to the URL must not drop the values the link carried."""
    page.goto(f"{server}/?model=tiny-random&new=3&prompt=Hi%20there")
    wait_idle(page)
    page.get_by_text("The model's continuation").wait_for()
    for part in ["model=tiny-random", "new=3", "prompt=Hi%20there"]:
        assert part in page.url, page.url
    # token and layer other than the page's own pick (2, 1 here), which the URL leaves out
    page.goto(f"{server}/architectures?tokens=5&layers=3&token=3&layer=2")
    wait_idle(page)
    for part in ["tokens=5", "layers=3", "token=3", "layer=2"]:
        assert part in page.url, page.url
