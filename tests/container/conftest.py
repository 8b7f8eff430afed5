"""Container tests: the image and the replicas, built and run by Docker, opened in Chromium.

They carry the `container` marker, which a plain `pytest` leaves out (pyproject.toml). Both
`make test` (the image) and `make test-container` (the image and the replicas) set up a Docker
engine and the base image with `bash ci/container-setup.sh`, then run them with
`pytest -m container`. Once selected, they never skip: without a Docker daemon they fail and say
so. Each image is built once per test session, when a test first needs it;
`KV_LENS_CONTAINER_BUILD=0` reuses the images already built instead of running deploy/build.sh.
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


def built(what: str, image: str) -> str:
    if os.environ.get("KV_LENS_CONTAINER_BUILD", "1") != "0":
        docker.build_images(what)
    docker.docker("image", "inspect", image)
    return image


@pytest.fixture(scope="session")
def app_image(engine) -> str:
    """The app image, built from this working tree."""
    return built("app", docker.IMAGE)


@pytest.fixture(scope="session")
def proxy_image(engine) -> str:
    """The sticky proxy's image (deploy/proxy/)."""
    return built("proxy", docker.PROXY_IMAGE)


@pytest.fixture(scope="session")
def browser(engine):
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
