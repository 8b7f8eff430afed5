"""One Streamlit server and one Chromium for all browser tests; screenshots go to artifacts/."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import sync_playwright

from lib.serve import CHROMIUM, CHROMIUM_ARGS, ROOT, streamlit_server

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


def download_png(page, menu_body) -> tuple[str, Image.Image]:
    """Click PNG in an open export menu; return the file's suggested name and the decoded image."""
    with page.expect_download(timeout=60_000) as info:
        menu_body.get_by_role("button", name="PNG", exact=True).click()
    image = Image.open(io.BytesIO(info.value.path().read_bytes()))
    image.load()
    return info.value.suggested_filename, image
