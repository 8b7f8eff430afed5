"""A phone's width (390 px): every page opens without scrolling its body sideways, and every
control and chart of the main area lies within the screen."""

import pytest

from lib import site
from lib.serve import wait_idle

WIDTH = 390
CONTROLS = ", ".join(
    f"[data-testid='stMain'] [data-testid='{kind}']"
    for kind in (
        "stSlider",
        "stNumberInput",
        "stSelectbox",
        "stButton",
        "stRadio",
        "stButtonGroup",
        "stTextArea",
        "stPopover",
        "stVegaLiteChart",
    )
)


@pytest.mark.parametrize("page", site.PAGES, ids=lambda page: page.name)
def test_a_phone_sees_every_page_without_sideways_scrolling(server, browser, page):
    context = browser.new_context(viewport={"width": WIDTH, "height": 844}, is_mobile=True)
    tab = context.new_page()
    tab.goto(f"{server}{page.link}?model=tiny-random&new=3")
    tab.locator("[data-testid='stMain'] h1").first.wait_for(timeout=300_000)
    wait_idle(tab, timeout=300_000)
    assert tab.locator("[data-testid='stException']").count() == 0
    body = tab.evaluate("() => document.documentElement.scrollWidth")
    assert body <= WIDTH + 1, f"the page body is {body} px wide"
    outside = tab.locator(CONTROLS).evaluate_all(
        f"""nodes => nodes
            .map(n => [n.getAttribute('data-testid'), n.innerText.slice(0, 30),
                       n.getBoundingClientRect()])
            .filter(([, , box]) => box.width > 0 && (box.left < -1 || box.right > {WIDTH} + 1))
            .map(([kind, text, box]) => `${{kind}} '${{text}}' ${{box.left}}–${{box.right}}`)"""
    )
    assert outside == [], outside
    tab.screenshot(path=f"artifacts/screenshots/{page.name}-390px.png", full_page=True)
    context.close()
