"""/readable in Debian's Chromium against a real server and the real model: a link with a prompt
and a layer opens the R² chart with that layer marked and the patching of the default pair; a new
patch range, typed in, patches again and lands in the URL."""

import re
from urllib.parse import parse_qs, quote, urlparse

from playwright.sync_api import expect

from lib.serve import wait_idle
from tests.browser.conftest import screenshot

CHARTS = "[data-testid='stMain'] [data-testid='stVegaLiteChart']"
TALL = {"width": 1400, "height": 5200}  # the whole page in one screenshot
FIT = 1_800_000  # the probe fit runs once per server: a minute quiet, more on a busy machine
PROBED = 29  # layers 0..28 of SmolLM2 have a probe
SERIES = 4  # ceiling, K/V probe, the reader's text, floor


def test_readable_shows_the_probes_and_the_patching_and_a_new_range_patches_again(server, page):
    page.set_viewport_size(TALL)
    page.goto(f"{server}/readable?prompt={quote('The cure for cancer is')}&layer=12")
    page.get_by_text("3 · Patching").wait_for(timeout=FIT)
    wait_idle(page, timeout=FIT)
    assert page.locator("[data-testid='stException']").count() == 0
    charts = page.locator(CHARTS)
    charts.nth(5).wait_for()  # Vega mounts the charts a moment after the run ends
    assert charts.count() == 6  # widths, R², clean, corrupted, patched, restored
    r2 = charts.nth(1)
    expect(r2.locator("g.mark-symbol.role-mark path")).to_have_count(SERIES * PROBED)
    assert r2.get_by_text("layer 12").count() == 1  # the selected layer's rule
    text = page.locator("[data-testid='stMain']").inner_text()
    assert "Layer 12's MLP activation, read from layer 13's keys" in text
    assert re.search(r"next token is\s*·Rome\s*, the corrupted one's\s*·Berlin", text)
    assert "Patched at layer 1" in text
    restored = charts.nth(5).locator("g.mark-rect.role-mark path")
    expect(restored).to_have_count(30)  # one bar per starting layer, layer 0 included
    page.wait_for_timeout(1000)
    screenshot(page, "readable")

    to_layer = page.get_by_label("to layer")
    to_layer.fill("29")
    to_layer.press("Enter")
    page.get_by_text("Patched at layers 1–29").wait_for(timeout=300_000)
    wait_idle(page)
    assert parse_qs(urlparse(page.url).query).get("to") == ["29"]
    text = page.locator("[data-testid='stMain']").inner_text()
    assert re.search(r"Patching layers 1–29 restores 10\d%", text)  # the capital comes back
    assert page.locator("[data-testid='stException']").count() == 0
    page.wait_for_timeout(1000)
    screenshot(page, "readable-range")
