"""/architectures in Debian's Chromium: a click on a cell of one diagram moves the selection (URL
and marks) in all three, the generation toggle draws the sampled tokens, each figure's export
menu downloads a PNG, and on a 390 px phone nothing scrolls sideways."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from lib.architectures import ARCHITECTURES, Memory, make_rule
from lib.charts.architectures import node_roles
from lib.serve import wait_idle
from lib.stepping import Cell
from tests.browser.conftest import download_png, screenshot

DIAGRAMS = "[class*='st-key-diagram-'] [data-testid='stVegaLiteChart']"
CHARTS = "[data-testid='stVegaLiteChart']"
MENUS = "[data-testid='stPopoverButton']"
CELL_LABEL = re.compile(r"role: (\w+); token: (\d+); layer: (\d+)")
WIRES = "g.mark-line path"


def cell_roles(chart) -> dict[Cell, str]:
    """The role of every drawn cell, read from Vega's SVG (each rect's aria-label lists the
    fields it encodes)."""
    labels = chart.locator("g.mark-rect path").evaluate_all(
        "paths => paths.map(path => path.getAttribute('aria-label'))"
    )
    roles = {}
    for label in labels:
        role, token, layer = CELL_LABEL.search(label).groups()
        roles[Cell(int(token), int(layer))] = role
    return roles


def expected_roles(cell: Cell, tokens: int, layers: int, generation: bool = False):
    """The rule's cones of `cell` over the cells of each diagram, in the page's order."""
    return [
        {
            node: role
            for node, role in node_roles(make_rule(name, layers, generation), cell, tokens).items()
            if not isinstance(node, Memory)
        }
        for name in ARCHITECTURES
    ]


def open_page(page, query: str, cell: Cell, tokens: int):
    page.goto(f"{page.base}/architectures?{query}")
    page.get_by_text(f"Selected cell: token {cell.token}, layer {cell.layer}.").wait_for(
        timeout=120_000
    )
    wait_idle(page)
    diagrams = page.locator(DIAGRAMS)
    expect(diagrams).to_have_count(3, timeout=60_000)
    for index in range(3):
        diagrams.nth(index).locator("g.mark-rect path").nth(tokens * 5 - 1).wait_for()
    return diagrams


def test_clicking_a_cell_moves_the_marks_in_all_three(server, page):
    page.base = server
    diagrams = open_page(page, "tokens=6&layers=4&token=5&layer=1", Cell(5, 1), 6)
    before = [cell_roles(diagrams.nth(index)) for index in range(3)]
    assert before == expected_roles(Cell(5, 1), 6, 4)
    assert page.locator("[data-testid='stException']").count() == 0
    page.set_viewport_size({"width": 1400, "height": 3600})  # the whole page in one picture
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
    selected = "g.mark-rect path[aria-label*='role: selected; token: 2; layer: 3;']"
    for index in range(3):  # the new selection's cell, not only the old diagram's cells
        diagrams.nth(index).locator(selected).wait_for()
    after = [cell_roles(diagrams.nth(index)) for index in range(3)]
    assert after == expected_roles(Cell(2, 3), 6, 4)
    assert page.get_by_role("spinbutton", name="Selected token").input_value() == "2"
    assert page.get_by_role("spinbutton", name="Selected layer").input_value() == "3"
    assert page.locator("[data-testid='stException']").count() == 0


def test_the_generation_toggle_draws_the_sampled_tokens(server, page):
    page.base = server
    diagrams = open_page(page, "tokens=6&layers=4&token=3&layer=2", Cell(3, 2), 6)
    assert all(diagrams.nth(i).locator(WIRES).count() == 0 for i in range(3))
    page.get_by_role("radio", name="on", exact=True).click()
    page.wait_for_url(re.compile(r"generation=on"), timeout=60_000)
    page.get_by_text("Generating:").first.wait_for(timeout=60_000)
    wait_idle(page)
    diagrams = page.locator(DIAGRAMS)
    for index in range(3):
        expect(diagrams.nth(index).locator(WIRES)).to_have_count(5, timeout=60_000)
    after = [cell_roles(diagrams.nth(index)) for index in range(3)]
    assert after == expected_roles(Cell(3, 2), 6, 4, generation=True)
    page.set_viewport_size({"width": 1400, "height": 3600})
    screenshot(page, "architectures-generation")


def test_export_menus_sit_under_the_figures_and_download_a_png(server, page):
    page.base = server
    open_page(page, "tokens=6&layers=4&token=5&layer=1", Cell(5, 1), 6)
    menus = page.locator(MENUS).filter(has_text="Export figure")
    assert menus.count() == 5
    assert page.locator(MENUS).filter(has_text="Export data").count() == 1
    # Every chart but the key has its menu just below it, inside its column.
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
    assert image.format == "PNG" and image.width >= 800 and image.height > 300
    assert page.locator("[data-testid='stException']").count() == 0


def test_a_phone_sees_every_diagram_without_scrolling_sideways(server, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.base = server
    try:
        diagrams = open_page(page, "tokens=16&layers=8&generation=on", Cell(8, 4), 16)
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.body.scrollWidth]"
        )
        assert max(widths) <= 390, widths
        for index in range(3):
            box = diagrams.nth(index).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390, index
        # Every control is reachable: the toggle turns generation off.
        toggle = page.get_by_role("radio", name="off", exact=True)
        toggle.scroll_into_view_if_needed()
        toggle.click()
        page.wait_for_url(lambda url: "generation=on" not in url, timeout=60_000)
        wait_idle(page)
        assert page.locator("[data-testid='stException']").count() == 0
        page.set_viewport_size({"width": 390, "height": 8400})
        screenshot(page, "architectures-390px")
    finally:
        context.close()
