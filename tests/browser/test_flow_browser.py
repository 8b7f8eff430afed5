"""/flow in Debian's Chromium against a real server and the real model: a link without a cell
opens on the page's pick, the edges of a linked cell are drawn, a click on another cell moves
the selection, the URL and the table, the tour's surgery link shows its claim, and the grid's
export menu downloads a PNG named after the view."""

import contextlib
import re
from urllib.parse import quote

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from lib.serve import wait_idle
from tests.browser.conftest import download_png, screenshot

PROMPT = "The capital of France is Paris. The capital of Italy is"
SLOW = 600_000  # ms: the first view generates, traces, and runs a gradient pass and a surgery


def grid_cell(page, token: int, layer: int):
    """The rectangle of one cell in the grid chart; Vega names it by its fields in aria-label.

    Vega draws SVG below 2,000 marks (this prompt: 20 tokens × 31 rows), so each cell is an
    element Playwright can click at its centre, as a reader would."""
    grid = page.locator("[data-testid='stVegaLiteChart']").first
    cells = grid.locator("g.mark-rect").first  # the first rect layer: one rectangle per cell
    return cells.locator(f"path[aria-label*='x1: {token + 0.5}; y1: {layer + 0.5};']")


def edges(page):
    """The rules drawn into the selected cell, in the grid (the page's first chart).

    Count them with `expect`, which waits: CI of 5f8edc8 read 0 of 6 as soon as the grid's
    first cell appeared, where every other run drew 6. Where in the frontend the edges lagged
    was not found; a grid that never draws them still fails after a minute."""
    grid = page.locator("[data-testid='stVegaLiteChart']").first
    return grid.locator("g.mark-rule path, g.mark-rule line")


TABLE_TOKENS = """() => [...document.querySelectorAll(
    "[data-testid='stDataFrame'] td[data-testid^='glide-cell-0-']")]
    .map(cell => parseInt(cell.innerText)).sort((a, b) => a - b)"""


def table_tokens(page, expected: list[int]) -> list[int]:
    """The source tokens the edge table lists (first column of the data grid), once they are
    `expected` or after a minute: the grid redraws after the run has ended, so a read straight
    after a click can still see the previous cell's rows."""
    with contextlib.suppress(PlaywrightTimeout):  # the assertion then shows what it lists
        page.wait_for_function(
            f"want => JSON.stringify(({TABLE_TOKENS})()) === JSON.stringify(want)",
            arg=expected,
            timeout=60_000,
        )
    return page.evaluate(TABLE_TOKENS)


def wait_drawn(page, charts: int = 3) -> None:
    """The script can be done while the browser still shows skeletons: Vega draws later."""
    page.wait_for_function(
        "n => document.querySelectorAll(\"[data-testid='stSkeleton']\").length === 0"
        " && document.querySelectorAll(\"[data-testid='stVegaLiteChart'] svg\").length >= n",
        arg=charts,
        timeout=60_000,
    )


def full_screenshot(page, name: str) -> None:
    """The whole page: Streamlit scrolls inside its main block, so grow the window first."""
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": 4800})
    wait_drawn(page)
    screenshot(page, name)
    page.set_viewport_size(size)


def test_a_click_on_the_grid_moves_selection_url_and_table(server, page):
    page.goto(f"{server}/flow?prompt={quote(PROMPT)}&new=8&token=5&layer=12")
    wait_idle(page, SLOW)
    main = page.locator("[data-testid='stMain']")
    main.get_by_text("What feeds token 5").wait_for()
    assert page.locator("[data-testid='stException']").count() == 0
    expect(edges(page)).to_have_count(6, timeout=60_000)  # tokens 0…5 at row 11 feed (5, 12)
    assert table_tokens(page, list(range(6))) == list(range(6))
    full_screenshot(page, "flow")

    grid_cell(page, 8, 20).click()
    wait_idle(page, SLOW)
    main.get_by_text("What feeds token 8").wait_for()
    assert re.search(r"[?&]token=8(&|$)", page.url) and re.search(r"[?&]layer=20(&|$)", page.url)
    expect(edges(page)).to_have_count(9, timeout=60_000)
    assert table_tokens(page, list(range(9))) == list(range(9))
    assert "Cell (8, 20) is the output of decoder layer 19" in main.inner_text()
    assert page.locator("[data-testid='stException']").count() == 0
    full_screenshot(page, "flow-after-click")


def test_a_link_without_a_cell_opens_on_the_last_token_halfway_up(server, page):
    page.goto(f"{server}/flow?prompt={quote(PROMPT)}&new=8")
    wait_idle(page, SLOW)
    main = page.locator("[data-testid='stMain']")
    main.get_by_text("What feeds token 19").wait_for()  # 12 prompt + 8 new tokens: 0…19
    assert "at layer 15" in main.inner_text()
    assert page.locator("[data-testid='stException']").count() == 0
    # every token 0…19 feeds the last one (the table scrolls)
    expect(edges(page)).to_have_count(20, timeout=60_000)
    assert "token=" not in page.url and "layer=" not in page.url
    wait_drawn(page)
    dashed = page.locator("[data-testid='stVegaLiteChart'] path[stroke-dasharray='5,3']")
    assert dashed.count() >= 2  # the forward cone's outline, in the grid and in the cone


def test_the_tours_surgery_link_edits_internal_states_only(server, page):
    page.goto(f"{server}/flow?token=8&layer=12&src=3&from=1&to=15&edit=zero")
    wait_idle(page, SLOW)
    main = page.locator("[data-testid='stMain']")
    main.get_by_text("in layers 1–15 were set to zero").wait_for()
    text = main.inner_text()
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.locator("[data-testid='stAlert']").count() == 0  # no notice: a valid link
    assert "Layer 0's K and V" not in text  # from layer 1: the word is left alone
    assert "Rows 0–1 of later tokens cannot read the edit" in text
    assert "moved by at most 0.0e+00" in text
    assert re.search(r"unedited cache has \d+ greedy tokens?", text)
    full_screenshot(page, "flow-tour-surgery")


def test_the_grid_downloads_as_a_png_named_after_the_view(server, page):
    page.goto(f"{server}/flow?prompt={quote(PROMPT)}&new=8&token=5&layer=12&weight=value")
    wait_idle(page, SLOW)
    main = page.locator("[data-testid='stMain']")
    main.get_by_text("What feeds token 5").wait_for()
    wait_drawn(page)
    assert page.locator("[data-testid='stException']").count() == 0
    menus = main.locator("[data-testid='stPopover']")
    labels = menus.all_inner_texts()  # with the icon's and the chevron's ligature names
    assert ["Export figure" in label for label in labels] == [True] * 3 + [False]
    assert "Export data" in labels[3]
    full_screenshot(page, "flow-export-menus")

    menus.first.get_by_role("button").click()  # the menu under the grid
    body = page.locator("[data-testid='stPopoverBody']")
    body.get_by_role("button", name="SVG", exact=True).wait_for()  # its help repeats the label
    screenshot(page, "flow-export-open")
    name, image = download_png(page, body)
    assert name == "flow-token5-layer12-headall-aggmean-weightvalue-figgrid.png"
    assert image.format == "PNG" and image.width >= 1280  # 2× the file width of 20 tokens
