"""/tracking in Debian's Chromium: both models run the reader's program (typed into the page),
each print shows every model's answer against the true value, and the held-out accuracy, the
length curve and the feedback model's reads are drawn."""

from urllib.parse import parse_qs, urlparse

from tests.browser.conftest import screenshot
from lib.serve import wait_idle

CHARTS = "[data-testid='stMain'] [data-testid='stVegaLiteChart']"
PROGRAM = "x = 2 ; x ++ ; print x ; if x == 3 : x = 5 ; x ++ ; print x ; x -- ; print x"


def test_a_typed_program_runs_through_both_models(server, page):
    page.set_viewport_size({"width": 1400, "height": 3000})
    page.goto(f"{server}/tracking?statements=16&pseed=2")
    page.get_by_text("1. Run a program through both").wait_for(timeout=300_000)
    wait_idle(page, timeout=300_000)
    assert page.locator("[data-testid='stException']").count() == 0
    charts = page.locator(CHARTS)
    charts.nth(2).wait_for()  # Vega mounts the charts a moment after the run ends
    assert charts.count() == 3
    screenshot(page, "tracking")

    box = page.get_by_role("textbox", name="Or write your own (empty: the generated one)")
    box.fill(PROGRAM)
    box.press("Control+Enter")
    page.get_by_text("x = 2 ;").first.wait_for(timeout=120_000)
    wait_idle(page)
    assert parse_qs(urlparse(page.url).query)["program"] == [PROGRAM]
    grid = page.locator(CHARTS).first
    labels = grid.locator("g.mark-rect path").evaluate_all(
        "paths => paths.map(path => path.getAttribute('aria-label'))"
    )
    truths = [label for label in labels if "who: true value" in label]
    assert [label.split("value: ")[-1].split(";")[0] for label in truths] == ["3", "1", "5"]
    assert len(labels) == 3 * (
        1 + len(page.get_by_text("Prints answered right").inner_text().split("·"))
    )
    screenshot(page, "tracking-typed")
