"""/plan in Debian's Chromium against a real server and the real model: a link without a cell
opens one that shows something, the top-k bars, the lens heatmap with readable words, a click on
a lens cell that selects it and shows its top-k, and the export menus."""

import re
from urllib.parse import parse_qs, quote, urlparse

from playwright.sync_api import expect

from lib.serve import wait_idle
from tests.browser.conftest import download_png, screenshot

DETAIL = re.compile(r"Layer (\d+), after (.+) \((\d+)\)")
CHARTS = "[data-testid='stMain'] [data-testid='stVegaLiteChart']"
TALL = {"width": 1400, "height": 3700}  # the whole page in one screenshot


def detail_heading(page) -> tuple[int, str, int]:
    """(layer, token text, position) of the selected lens cell, from its heading."""
    for heading in page.locator("[data-testid='stMain'] h3").all_inner_texts():
        found = DETAIL.fullmatch(heading.strip())
        if found:
            layer, label, position = found.groups()
            return int(layer), label, int(position)
    raise AssertionError("no heading for the selected lens cell")


def test_plan_shows_bars_and_lens_and_a_click_selects_a_cell(server, page):
    page.set_viewport_size(TALL)
    page.goto(f"{server}/plan?prompt={quote('The cure for cancer is')}&new=8&token=4")
    page.get_by_text("1 · The distribution the text hides").wait_for(timeout=180_000)
    wait_idle(page)
    assert page.locator("[data-testid='stException']").count() == 0
    charts = page.locator(CHARTS)
    charts.nth(4).wait_for()  # Vega mounts the charts a moment after the run ends
    assert charts.count() == 5
    bars, lens = charts.nth(0), charts.nth(2)
    # Vega draws each dataset as the frontend inserts it: counts wait for the marks
    expect(bars.locator("g.mark-rect path")).to_have_count(10, timeout=60_000)  # k = 10 bars
    cells = lens.locator("g.mark-rect path[aria-label*='; position: ']")
    expect(cells).to_have_count(31 * 13, timeout=60_000)  # every (layer, position), 5 + 8 tokens
    assert detail_heading(page) == (15, "·is", 4)  # no layer in the link: the middle one
    words = lens.locator("g.mark-text.role-mark text")
    expect(words).to_have_count(31 * 13, timeout=60_000)  # the lens's guess in every cell
    inks = set(words.evaluate_all("nodes => nodes.map(n => n.getAttribute('fill'))"))
    assert inks <= {"#000000", "#FFFFFF"} and len(inks) == 2  # black or white as each cell needs
    page.wait_for_timeout(1000)  # let Vega finish drawing
    screenshot(page, "plan")

    target = lens.locator(
        "g.mark-rect path[aria-label*='; position: 9;'][aria-label*='; layer: 20;']"
    )
    box = target.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "() => [...document.querySelectorAll('h3')].some(h => h.innerText.startsWith('Layer 20'))",
        timeout=120_000,
    )
    wait_idle(page)
    assert detail_heading(page) == (20, "·healthy", 9)
    query = parse_qs(urlparse(page.url).query)
    assert query.get("token") == ["9"] and query.get("layer") == ["20"]
    detail = page.locator(CHARTS).nth(3)  # the selected cell's top-k bars
    expect(detail.locator("g.mark-rect path")).to_have_count(10, timeout=60_000)
    assert page.locator("[data-testid='stException']").count() == 0
    page.wait_for_timeout(1000)
    screenshot(page, "plan-clicked")


def test_a_link_without_a_cell_opens_the_prompts_last_position_at_the_middle_layer(server, page):
    page.goto(f"{server}/plan?prompt={quote('The cure for cancer is')}&new=8")
    page.get_by_text("1 · The distribution the text hides").wait_for(timeout=180_000)
    wait_idle(page)
    assert detail_heading(page) == (15, "·is", 4)
    query = parse_qs(urlparse(page.url).query)
    assert "token" not in query and "layer" not in query  # the pick is the page's default
    assert page.locator("[data-testid='stException']").count() == 0


def test_a_hostile_link_gives_notices_and_a_working_page(server, page):
    page.goto(f"{server}/plan?model=tiny-random&new=2&token=999&layer=70&k=50")
    page.get_by_text("1 · The distribution the text hides").wait_for(timeout=120_000)
    wait_idle(page)
    text = page.locator("[data-testid='stMain']").inner_text()
    assert "`k` must be 1–20" in text or "k must be 1–20" in text
    assert "must be 0–3 here" in text  # the layer, clamped to the tiny model's 4 rows
    assert page.locator("[data-testid='stException']").count() == 0


def test_each_chart_has_an_export_menu_below_it_and_its_png_downloads(server, page):
    page.set_viewport_size(TALL)
    page.goto(f"{server}/plan?prompt={quote('The cure for cancer is')}&new=8&token=4")
    page.get_by_text("1 · The distribution the text hides").wait_for(timeout=180_000)
    wait_idle(page)
    charts = page.locator(CHARTS)
    charts.nth(4).wait_for()
    menus = page.locator("[data-testid='stMain'] [data-testid='stPopover']")
    assert menus.count() == 6
    assert menus.filter(has_text="Export figure").count() == 5
    assert "Export data" in menus.last.inner_text()
    for index in range(5):  # each figure's menu sits just below it, left-aligned with it
        chart, menu = charts.nth(index).bounding_box(), menus.nth(index).bounding_box()
        below = menu["y"] - (chart["y"] + chart["height"])
        assert 0 <= below < 60 and abs(menu["x"] - chart["x"]) < 30, (index, chart, menu)

    menus.first.locator("button").first.click()
    popover = page.locator("[data-testid='stPopoverBody']")
    popover.wait_for()
    page.wait_for_timeout(500)
    screenshot(page, "plan-export-menu")
    name, image = download_png(page, popover)
    assert name == "plan-token4-k10-figoutput.png"
    assert image.format == "PNG" and image.width > 300 and image.height > 300
