"""/tracking in Debian's Chromium: the page leads with accuracy against depth, a program typed
without spaces runs through every model, each print shows its depth and every model's answer,
and the scratchpad's written values are drawn, with one planted error."""

from urllib.parse import parse_qs, urlparse

from playwright.sync_api import expect

from lib import tracking
from lib.serve import wait_idle
from tests.browser.conftest import screenshot

CHARTS = "[data-testid='stMain'] [data-testid='stVegaLiteChart']"
PROGRAM = "x=2;x++;print x;if x==3:x=5;x++;print x;x--;print x"


def cell_labels(chart) -> list[str]:
    return chart.locator("g.mark-rect path").evaluate_all(
        "paths => paths.map(path => path.getAttribute('aria-label'))"
    )


def test_depth_first_then_a_typed_program_through_every_model(server, page):
    page.set_viewport_size({"width": 1400, "height": 3000})
    page.goto(f"{server}/tracking?statements=16&pseed=2")
    page.get_by_text("1 · Accuracy against dependency depth").wait_for(timeout=300_000)
    wait_idle(page, timeout=300_000)
    assert page.locator("[data-testid='stException']").count() == 0
    charts = page.locator(CHARTS)
    charts.nth(3).wait_for()  # Vega mounts the charts a moment after the run ends
    assert charts.count() == 4
    lines = charts.first.locator("g.mark-line path")  # `expect` waits for Vega to draw them
    expect(lines).to_have_count(len(tracking.shipped_names()) + len(tracking.BASELINES))
    screenshot(page, "tracking")

    box = page.get_by_role("textbox", name="Or write your own (empty: the generated one)")
    box.fill(PROGRAM)
    box.press("Control+Enter")
    page.get_by_text("x = 2 ;").first.wait_for(timeout=120_000)
    wait_idle(page)
    assert parse_qs(urlparse(page.url).query)["program"] == [PROGRAM]
    assert page.locator("[data-testid='stAlert']").count() == 0
    labels = cell_labels(page.locator(CHARTS).nth(1))
    values = {
        who: [
            label.split("value: ")[-1].split(";")[0] for label in labels if f"who: {who};" in label
        ]
        for who in ("depth", "the program")
    }
    assert values == {"depth": ["1", "3", "4"], "the program": ["3", "1", "5"]}
    written = cell_labels(page.locator(CHARTS).nth(2))
    assert sum("who: the program;" in label for label in written) == 8  # one per statement
    screenshot(page, "tracking-typed")
