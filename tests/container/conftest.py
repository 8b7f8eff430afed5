"""Container tests: the image and the replicas, built and run by Docker, opened in Chromium.

They carry the `container` marker, which a plain `pytest` leaves out (pyproject.toml);
`make test-container` (not part of `make test`: see the README) sets up a Docker engine and the
base image with `bash ci/container-setup.sh`, then runs them with `pytest -m container`. Once
selected, they never skip: without a Docker daemon they fail and say so.
`KV_LENS_CONTAINER_BUILD=0` reuses the images already built instead of running deploy/build.sh
first.
"""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import sync_playwright

from lib.serve import CHROMIUM, CHROMIUM_ARGS
from tests.container import docker


@pytest.fixture(scope="session")
def engine() -> None:
    if not docker.daemon_answers():
        pytest.fail(
            "no Docker daemon answers: the container tests cannot run. `make test-container` "
            "installs and starts one (as root); or run `bash ci/container-setup.sh` first.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def images(engine) -> None:
    """The app and proxy images, built once per test session from this working tree."""
    if os.environ.get("KV_LENS_CONTAINER_BUILD", "1") != "0":
        docker.build_images()
    for image in (docker.IMAGE, docker.PROXY_IMAGE):
        docker.docker("image", "inspect", image)


@pytest.fixture(scope="session")
def browser(engine):
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
