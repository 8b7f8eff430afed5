"""One Streamlit server and one Chromium for all browser tests; screenshots go to artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.browser.server import CHROMIUM, CHROMIUM_ARGS, ROOT, streamlit_server

SHOTS = ROOT / "artifacts" / "screenshots"


@pytest.fixture(scope="session")
def server() -> str:
    with streamlit_server() as base:
        yield base


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield context.new_page()
    context.close()


def screenshot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
