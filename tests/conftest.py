"""Shared fixtures: the tiny random model for fast tests, the real model for integration tests.

Markers follow what a test needs, set here so that no test file can forget them: `browser` for
everything under tests/browser (a server and Chromium), `real` for every test that uses the real
model, `network` for those that reach a package index. `make test` runs them all; `-m "not
browser and not real"` is the quick loop.
"""

from __future__ import annotations

import os
from pathlib import Path

# Results on disk would let one test find what another computed (and count no model call):
# every test, and every server a test starts, keeps its results in memory only. Set before
# lib.settings reads the environment.
os.environ["KV_LENS_RESULTS_DIR"] = "off"

import pytest  # noqa: E402
import streamlit as st  # noqa: E402

from lib import models  # noqa: E402

BROWSER = Path(__file__).parent / "browser"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if BROWSER in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)
        if "real" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.real)


@pytest.fixture(scope="session")
def tiny() -> models.LoadedModel:
    return models.load("tiny-random")


@pytest.fixture(scope="session")
def real() -> models.LoadedModel:
    """The real SmolLM2-135M; `make test` converts it first, so its absence is a failure."""
    return models.load(models.DEFAULT_MODEL)


@pytest.fixture
def fresh_caches():
    """Streamlit's caches and the shared result store persist across AppTest runs in one
    process: clear them around a test that counts computations."""
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()
