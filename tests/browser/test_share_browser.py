"""Share links: change controls on each page, open the shared link afresh, see the same view."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lib.serve import wait_idle


def nudge(page, label: str, key: str, times: int, area: str = "stMain") -> None:
    """Move the slider labelled `label` with the keyboard, as a reader would."""
    sliders = page.locator(f"[data-testid='{area}'] [data-testid='stSlider']")
    thumb = sliders.filter(has_text=label).get_by_role("slider")
    thumb.first.focus()
    for _ in range(times):
        thumb.first.press(key)
    wait_idle(page)


def choose(page, label: str) -> None:
    page.locator("[data-testid='stMain'] label").filter(has_text=label).first.click()
    wait_idle(page)


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
        lambda page: nudge(page, "Tokens to generate", "ArrowLeft", 2, area="stSidebar"),
        ["new=4"],
    ),
    (
        "/cache?new=6",
        lambda page: (
            nudge(page, "Decoding step", "ArrowRight", 2),
            nudge(page, "Layer", "ArrowRight", 3),
        ),
        ["step=2", "layer=3"],
    ),
    (
        "/flow?new=4",
        lambda page: (
            nudge(page, "Layer (row)", "ArrowRight", 2),
            nudge(page, "Token (column)", "ArrowRight", 3),
            choose(page, "value"),
        ),
        ["layer=2", "token=3", "weight=value"],
    ),
    (
        "/plan?new=4",
        lambda page: (
            nudge(page, "Position", "ArrowRight", 2),
            nudge(page, "Lens layer", "ArrowRight", 3),
            nudge(page, "Top-k", "ArrowRight", 2),
        ),
        ["token=2", "layer=3", "k=12"],
    ),
    (
        "/architectures",
        lambda page: (
            nudge(page, "Tokens", "ArrowRight", 2),
            nudge(page, "Layers", "ArrowLeft", 1),
        ),
        ["tokens=8", "layers=3"],
    ),
    (
        "/tracking?statements=12",
        lambda page: (
            nudge(page, "Statements in the generated program", "ArrowRight", 2),
            page.get_by_role("button", name="Another program").click(),
            wait_idle(page),
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
    shared = page.locator("[data-testid='stSidebar'] code").inner_text().replace("\n", "")
    for part in expected:
        assert part in shared, shared
    seen = view_state(page)
    author.close()

    reader = browser.new_context(viewport={"width": 1400, "height": 1400})
    fresh = reader.new_page()
    fresh.goto(shared)
    settled(fresh)
    assert fresh.locator("[data-testid='stException']").count() == 0
    assert view_state(fresh) == seen
    reader.close()
