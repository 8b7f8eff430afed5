"""The guided tour: 6–10 steps, and every link opens its page without a notice or exception."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib import config, content, site

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def test_the_tour_has_six_to_ten_steps_with_valid_links():
    steps = content.tour()
    assert 6 <= len(steps) <= 10
    for step in steps:
        assert config.from_query(step.params, site.page(step.page)).notices == ()
        assert (Path(APP).parent / site.page(step.page).file).is_file()


@pytest.mark.parametrize("step", content.tour(), ids=lambda step: step.page or "home")
def test_every_tour_link_opens_its_page_cleanly(step):
    at = AppTest.from_file(APP, default_timeout=600)
    at.query_params.update(step.params)
    at.switch_page(site.page(step.page).file)
    at.run()
    assert not at.exception
    assert [warning.value for warning in at.warning] == []


def test_the_home_page_links_every_page_and_every_tour_step():
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params.update({"model": "tiny-random", "new": "2"})
    at.run()
    links = [link.proto for link in at.get("page_link")]
    assert len(links) == len(site.PAGES) - 1 + len(content.tour())
    tour_links = links[-len(content.tour()) :]
    for link, step in zip(tour_links, content.tour(), strict=True):
        for name, value in step.params.items():
            assert f"{name}={value}" in link.query_string
