"""/architectures in Debian's Chromium: three diagrams, a click on a cell of one of them moves
the selection (URL and highlight) in all three, and each figure's export menu downloads a PNG."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from lib.architectures import ARCHITECTURES, Cell, Memory, make_rule
from lib.charts.architectures import node_roles
from tests.browser.conftest import download_png, screenshot
from lib.serve import wait_idle

DIAGRAMS = "[class*='st-key-diagram-'] [data-testid='stVegaLiteChart']"
CHARTS = "[data-testid='stVegaLiteChart']"
MENUS = "[data-testid='stPopoverButton']"
CELL_LABEL = re.compile(r"role: (\w+); token: (\d+); layer: (\d+)")


def cell_roles(chart) -> dict[Cell, str]:
    """The role of every drawn cell, read from Vega's SVG (each rect's aria-label lists the
    fields of its tooltip)."""
    labels = chart.locator("g.mark-rect path").evaluate_all(
        "paths => paths.map(path => path.getAttribute('aria-label'))"
    )
    roles = {}
    for label in labels:
        role, token, layer = CELL_LABEL.search(label).groups()
        roles[(int(token), int(layer))] = role
    return roles


def expected_roles(cell: Cell, tokens: int, layers: int) -> list[dict[Cell, str]]:
    """The rule's cones of `cell` over the cells of each diagram (memories aside), in the
    page's order."""
    return [
        {
            node: role
            for node, role in node_roles(make_rule(name, layers), cell, tokens).items()
            if not isinstance(node, Memory)
        }
        for name in ARCHITECTURES
    ]


def test_clicking_a_cell_moves_the_highlight_in_all_three(server, page):
    page.goto(f"{server}/architectures?tokens=6&layers=4&token=5&layer=1")
    page.get_by_text("Selected cell: token 5, layer 1.").wait_for(timeout=120_000)
    wait_idle(page)
    diagrams = page.locator(DIAGRAMS)
    expect(diagrams).to_have_count(3, timeout=60_000)
    for index in range(3):
        diagrams.nth(index).locator("g.mark-rect path").nth(6 * 5 - 1).wait_for()
    before = [cell_roles(diagrams.nth(index)) for index in range(3)]
    assert before == expected_roles((5, 1), 6, 4)
    assert page.locator("[data-testid='stException']").count() == 0
    page.set_viewport_size({"width": 1400, "height": 2300})  # the whole page in one picture
    screenshot(page, "architectures")

    # Click cell (token 2, layer 3) of the middle (RNN) diagram at its centre on screen.
    rnn = diagrams.nth(1)
    labels = rnn.locator("g.mark-rect path").evaluate_all(
        "paths => paths.map(path => path.getAttribute('aria-label'))"
    )
    target = next(i for i, label in enumerate(labels) if "token: 2; layer: 3" in label)
    box = rnn.locator("g.mark-rect path").nth(target).bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    page.wait_for_url(re.compile(r"token=2"), timeout=60_000)
    page.get_by_text("Selected cell: token 2, layer 3.").wait_for(timeout=60_000)
    wait_idle(page)
    assert "layer=3" in page.url
    diagrams = page.locator(DIAGRAMS)
    for index in range(3):
        diagrams.nth(index).locator("g.mark-rect path").nth(6 * 5 - 1).wait_for()
    after = [cell_roles(diagrams.nth(index)) for index in range(3)]
    expected = expected_roles((2, 3), 6, 4)
    for name, now, then, wanted in zip(ARCHITECTURES, after, before, expected, strict=True):
        assert now != then, name
        assert now[(2, 3)] == "selected" and then[(5, 1)] == "selected", name
        assert now == wanted, name
    assert page.get_by_role("spinbutton", name="Selected token").input_value() == "2"
    assert page.get_by_role("spinbutton", name="Selected layer").input_value() == "3"
    assert page.locator("[data-testid='stException']").count() == 0
    screenshot(page, "architectures-clicked")


def test_export_menus_sit_under_the_figures_and_download_a_png(server, page):
    page.goto(f"{server}/architectures?tokens=6&layers=4&token=5&layer=1")
    page.get_by_text("Selected cell: token 5, layer 1.").wait_for(timeout=120_000)
    wait_idle(page)
    menus = page.locator(MENUS).filter(has_text="Export figure")
    assert menus.count() == 5
    assert page.locator(MENUS).filter(has_text="Export data").count() == 1
    # Every chart but the colour key has its menu just below it, inside its column.
    charts = page.locator(CHARTS)
    expect(charts).to_have_count(6, timeout=60_000)  # charts below the fold mount last
    for index in range(5):
        chart = charts.nth(index + 1).bounding_box()
        menu = menus.nth(index).bounding_box()
        assert 0 <= menu["y"] - (chart["y"] + chart["height"]) < 60, index
        assert chart["x"] <= menu["x"] < chart["x"] + chart["width"] / 2, index

    menus.first.click()
    name, image = download_png(page, page.locator("[data-testid='stPopoverBody']"))
    assert name == "architectures-tokens6-layers4-token5-layer1-figtransformer.png"
    assert image.format == "PNG" and image.width > 800 and image.height > 400
    assert page.locator("[data-testid='stException']").count() == 0
