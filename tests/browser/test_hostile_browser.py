"""Hostile links on every page: a notice and a working page, never an exception box."""

from urllib.parse import quote

import pytest

from lib.serve import wait_idle

HOSTILE = [
    "new=-5&token=abc&layer=99999&head=7%3B%20DROP&model=..%2F..%2Fetc%2Fpasswd",
    "prompt="
    + quote("<script>alert(1)</script> ![x](http://example.invalid/a.png) $x$")
    + "&new=3&bogus=1&k=0&step=-1",
    "prompt=" + quote("\u202eevil\u202c שלום \x07 ") + "&new=3&new=4&tokens=99&layers=0",
]
PAGES = ["", "cache", "flow", "plan", "architectures", "tracking"]


@pytest.mark.parametrize("path", PAGES, ids=lambda path: path or "home")
def test_hostile_links_give_notices_not_exceptions(server, page, path):
    for query in HOSTILE:
        page.goto(f"{server}/{path}?{query}")
        page.locator("[data-testid='stSidebar'] code").wait_for(timeout=300_000)
        wait_idle(page, timeout=300_000)
        assert page.locator("[data-testid='stException']").count() == 0, (path, query)
        assert page.locator("[data-testid='stAlertContentWarning']").count() >= 1, (path, query)
        assert page.locator("script:has-text('alert(1)')").count() == 0
        assert page.locator("img[src*='example.invalid']").count() == 0
