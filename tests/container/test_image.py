"""The image alone: it starts, reports healthy, runs as a non-root user, and serves a real page
with the model converted at build time (nothing fetched or converted while it runs)."""

import uuid

import pytest

from lib.serve import wait_idle
from tests.container import docker

pytestmark = pytest.mark.container

LINK = "/cache?new=2"
CACHE = "/var/cache/kv-lens"  # KV_LENS_CACHE in the image


def test_image_serves_a_page_with_the_model_it_carries(app_image, browser):
    name = f"kv-lens-test-{uuid.uuid4().hex[:8]}"
    docker.docker("run", "--detach", "--name", name, "--publish", "127.0.0.1::8501", app_image)
    context = None
    try:
        base = docker.published(name)
        docker.wait_for(lambda: docker.http_ok(f"{base}/_stcore/health"), "HTTP health", 120)
        docker.wait_for(lambda: docker.health_status(name) == "healthy", "HEALTHCHECK", 120)
        assert docker.docker("exec", name, "id", "-u").strip() != "0"

        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto(f"{base}{LINK}")
        wait_idle(page, timeout=300_000)
        main = page.locator("[data-testid='stMain']")
        main.get_by_text("2/2 tokens identical").first.wait_for()
        assert page.locator("[data-testid='stException']").count() == 0
        docker.ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(docker.ARTIFACTS / "image-cache-page.png"), full_page=True)

        # What the container wrote: nothing beside the results folder in the model cache (no
        # download, no conversion) and nothing in the virtual environment. (`docker diff` lists
        # the folders above a change as changed: the cache folder itself, above results/.)
        changed = docker.docker("diff", name).split("\n")
        paths = [line.split(" ", 1)[1] for line in changed if " " in line]
        assert [p for p in paths if p.startswith(f"{CACHE}/results/")], "no result stored"
        assert not [
            p for p in paths if p.startswith(f"{CACHE}/") and not p.startswith(f"{CACHE}/results")
        ]
        assert not [p for p in paths if p.startswith("/opt/venv")]
    finally:
        if context is not None:
            context.close()
        docker.save_logs(name)
        docker.docker("rm", "--force", name, check=False)
