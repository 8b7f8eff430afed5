"""/cache in Debian's Chromium against a real server and the real model."""

from urllib.parse import quote

from lib.serve import wait_idle
from tests.browser.conftest import download_png, screenshot

FULL_PAGE = {"width": 1400, "height": 4200}  # the page scrolls inside Streamlit's main block


def test_cache_page_verdict_step_slider_and_grid_click(server, page):
    page.goto(f"{server}/cache?prompt={quote('The cure for cancer is')}&new=16")
    wait_idle(page, timeout=300_000)
    main = page.locator("[data-testid='stMain']")
    main.get_by_text("16/16 tokens identical").first.wait_for()
    assert page.locator("[data-testid='stException']").count() == 0
    grid = page.locator("[data-testid='stVegaLiteChart']").filter(has_text="Cache on, step")
    assert "Cache on, step 0 " in grid.inner_text()
    before = grid.screenshot()

    slider = page.locator("[data-testid='stSlider']").filter(has_text="Decoding step")
    thumb = slider.get_by_role("slider")
    thumb.focus()
    for _ in range(3):
        thumb.press("ArrowRight")
    wait_idle(page)
    main.get_by_text("Step 3", exact=True).wait_for()
    assert "Cache on, step 3 " in grid.inner_text()
    assert "step=3" in page.url
    assert grid.screenshot() != before  # one more column read from the cache, one computed
    assert "reads 210 from the cache" in main.inner_text()  # 7 earlier tokens × 30 layers

    # a click on a cell of layer 7 chooses that layer for the cached rows below
    positions = len(grid.locator("g.mark-rect path").all()) // 30
    grid.locator("g.mark-rect path").nth(7 * positions + 2).click()
    wait_idle(page)
    main.get_by_text(
        "The decode cache of layer 7, KV head 0, as the cached run held it at step 3"
    ).wait_for()
    assert "layer=7" in page.url
    page.set_viewport_size(FULL_PAGE)
    screenshot(page, "cache-step3-layer7")


def test_cache_page_exports_the_step_grid_as_png(server, page):
    page.goto(f"{server}/cache?prompt={quote('The cure for cancer is')}&new=8&step=2&layer=4")
    wait_idle(page, timeout=300_000)
    main = page.locator("[data-testid='stMain']")
    main.get_by_text("8/8 tokens identical").first.wait_for()
    assert page.locator("[data-testid='stException']").count() == 0
    menus = main.locator("[data-testid='stPopover']")
    assert menus.count() == 6 and menus.filter(has_text="Export figure").count() == 5
    assert "Export data" in menus.last.inner_text()
    page.set_viewport_size(FULL_PAGE)
    screenshot(page, "cache-export-menus")

    menus.nth(3).get_by_role("button").click()  # the menu under the cache-on grid
    body = page.locator("[data-testid='stPopoverBody']")
    body.get_by_role("button", name="SVG", exact=True).wait_for()
    screenshot(page, "cache-export-open")
    name, image = download_png(page, body)
    assert name == "cache-new8-float32-greedy-step2-layer4-figgridon.png"
    assert image.format == "PNG" and image.width > 400
