"""Share links: change controls on each page, open the shared link afresh, see the same view."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from lib.serve import wait_idle


def shared(page) -> str:
    return page.locator("[data-testid='stSidebar'] code").inner_text().replace("\n", "")


def nudge(page, label: str, key: str, times: int, param: str, area: str = "stMain") -> None:
    """Move the slider labelled `label` with the keyboard, as a reader would, then wait for the
    state the presses ask for: the thumb at its new value and the share link saying so. (Waiting
    for a pause in the app's runs is not enough: a slider sends its keys after a short delay, so
    a run can end before the one that carries the last key starts.)"""
    sliders = page.locator(f"[data-testid='{area}'] [data-testid='stSlider']")
    thumb = sliders.filter(has_text=label).get_by_role("slider").first
    low, high = int(thumb.get_attribute("min")), int(thumb.get_attribute("max"))
    now = int(thumb.input_value())
    target = min(max(now + (times if key == "ArrowRight" else -times), low), high)
    thumb.focus()
    for _ in range(times):
        thumb.press(key)
    expect(thumb).to_have_value(str(target), timeout=120_000)
    wait_shared(page, f"{param}={target}")


def wait_shared(page, part: str) -> None:
    """Wait until the share link holds `part` and the app is idle."""
    page.wait_for_function(
        "([selector, part]) => document.querySelector(selector).innerText.replace(/\\n/g, '')"
        ".includes(part)",
        arg=["[data-testid='stSidebar'] code", part],
        timeout=300_000,
    )
    wait_idle(page)


def choose(page, label: str, part: str) -> None:
    page.locator("[data-testid='stMain'] label").filter(has_text=label).first.click()
    wait_shared(page, part)


def settled(page) -> None:
    """The run is over when the share box, drawn last, is there and the app is idle."""
    page.locator("[data-testid='stSidebar'] code").wait_for(timeout=300_000)
    wait_idle(page, timeout=300_000)


def view_state(page) -> dict:
    """What the reader sees: every widget's value and every heading of the main area."""
    main = page.locator("[data-testid='stAppViewContainer']")
    return {
        "sliders": main.locator("[data-testid='stSliderThumbValue']").all_inner_texts(),
        "numbers": main.locator("input[type='number']").evaluate_all(
            "nodes => nodes.map(n => n.value)"
        ),
        "radios": main.locator("input[type='radio']").evaluate_all(
            "nodes => nodes.map(n => n.checked)"
        ),
        "prompt": page.locator("[data-testid='stSidebar'] textarea").input_value(),
        "headings": page.locator(
            "[data-testid='stMain'] h1, [data-testid='stMain'] h2, [data-testid='stMain'] h3"
        ).all_inner_texts(),
    }


PAGES: list[tuple[str, Callable, list[str]]] = [
    (
        "/?new=6",
        lambda page: nudge(page, "Tokens to generate", "ArrowLeft", 2, "new", area="stSidebar"),
        ["new=4"],
    ),
    (
        "/cache?new=6&layer=1",
        lambda page: (
            nudge(page, "Decoding step", "ArrowRight", 2, "step"),
            nudge(page, "Layer", "ArrowRight", 3, "layer"),
        ),
        ["step=2", "layer=4"],
    ),
    (
        "/flow?new=4&token=1&layer=1",
        lambda page: (
            nudge(page, "Layer (row)", "ArrowRight", 2, "layer"),
            nudge(page, "Token (column)", "ArrowRight", 3, "token"),
            choose(page, "value", "weight=value"),
        ),
        ["layer=3", "token=4", "weight=value"],
    ),
    (
        "/plan?new=4&token=1&layer=1",
        lambda page: (
            nudge(page, "Position", "ArrowRight", 2, "token"),
            nudge(page, "Lens layer", "ArrowRight", 3, "layer"),
            nudge(page, "Top-k", "ArrowRight", 2, "k"),
        ),
        ["token=3", "layer=4", "k=12"],
    ),
    (
        "/architectures",
        lambda page: (
            nudge(page, "Tokens", "ArrowRight", 2, "tokens"),
            nudge(page, "Layers", "ArrowLeft", 1, "layers"),
        ),
        ["tokens=8", "layers=3"],
    ),
    (
        "/tracking?statements=12",
        lambda page: (
            nudge(page, "Statements in the generated program", "ArrowRight", 2, "statements"),
            page.get_by_role("button", name="Another program").click(),
            wait_shared(page, "pseed=1"),
        ),
        ["statements=14", "pseed=1"],
    ),
]


@pytest.mark.parametrize("start, change, expected", PAGES, ids=[p[0] for p in PAGES])
def test_a_shared_link_reopens_the_same_view(server, browser, start, change, expected):
    author = browser.new_context(viewport={"width": 1400, "height": 1400})
    page = author.new_page()
    page.goto(f"{server}{start}")
    settled(page)
    change(page)
    link = shared(page)
    for part in expected:
        assert part in link, link
    seen = view_state(page)
    author.close()

    reader = browser.new_context(viewport={"width": 1400, "height": 1400})
    fresh = reader.new_page()
    fresh.goto(link)
    settled(fresh)
    assert fresh.locator("[data-testid='stException']").count() == 0
    assert view_state(fresh) == seen
    reader.close()
