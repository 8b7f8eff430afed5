"""Every page through AppTest: it opens on its own defaults, and no link a stranger writes can
break it. Numbers in every notation, infinities, NaN, huge exponents, signs, whitespace, Unicode
digits and repeated keys are fed to every parameter of every page: the page shows notices, never
an exception, and the URL it leaves holds only values the configuration accepts."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from lib import config, site

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TINY = {"model": "tiny-random", "new": "3"}
NOTATIONS = [
    "1e3", "1E999", "-1e999", "inf", "-inf", "Infinity", "NaN", "nan", "0x10", "0b11", "1_000",
    "+5", " 7 ", "\t8\n", "-0", "00012", "3.0", "3.5", "1/2", "٣", "²", "Ⅻ", "１２", "9" * 30,
    "-" + "9" * 30, "", " ", "none", "None", "all", "on", "off", "true", "🙂", "%00", "<b>x</b>",
]  # fmt: skip
VALUE = st.one_of(
    st.sampled_from(NOTATIONS),
    st.integers(-(10**20), 10**20).map(str),
    st.text(max_size=30),
)


def open_page(page: site.PageInfo, query: dict[str, list[str]]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=600)
    at.query_params.update(query)
    if page.path:
        at.switch_page(page.file)
    return at.run()


def left_in_url(at: AppTest) -> dict[str, list[str]]:
    """The URL as the run left it (AppTest keeps a string, or a list for a repeated key)."""
    return {
        name: [values] if isinstance(values, str) else list(values)
        for name, values in at.query_params.items()
    }


@pytest.mark.parametrize("page", site.PAGES, ids=lambda page: page.name)
def test_every_page_opens_on_its_defaults(page):
    at = open_page(page, {name: [value] for name, value in TINY.items()})
    assert not at.exception, at.exception
    assert at.title and not at.warning, [w.value for w in at.warning]


@pytest.mark.parametrize("page", site.PAGES, ids=lambda page: page.name)
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
@example(data=None)
def test_no_link_breaks_a_page(page, data):
    names = st.sampled_from([*page.url_params, "bogus"])
    if data is None:  # every parameter of the page at once, in a notation no widget parses
        query = {name: ["1e999", "-inf"] for name in page.url_params}
    else:
        query = data.draw(st.dictionaries(names, st.lists(VALUE, min_size=1, max_size=3)))
    query |= {name: [value] for name, value in TINY.items()}  # small and fast, not fuzzed here
    at = open_page(page, query)
    assert not at.exception, (query, at.exception)
    left = left_in_url(at)
    assert set(left) <= set(page.url_params), left
    assert config.from_query(left, page).notices == (), left  # the URL holds accepted values


def test_hostile_models_never_reach_a_loader():
    for hostile in ("../../etc/passwd", "/tmp/x", "http://evil/model", "tiny-random\x00", ""):
        at = open_page(site.page(""), {"model": [hostile], "new": ["2"]})
        assert not at.exception
        assert any("model" in warning.value.lower() for warning in at.warning)


def test_a_pick_of_the_page_follows_the_run_and_a_choice_of_the_reader_stays():
    at = open_page(site.page("plan"), {"model": ["tiny-random"], "new": ["3"]})
    first = at.slider(key="token").value
    at.text_area(key="prompt").set_value("ab").run()
    assert not at.exception and not at.warning  # picked again, not clamped with a notice
    assert at.slider(key="token").value != first and "token" not in at.query_params
    at.slider(key="token").set_value(0).run()
    at.text_area(key="prompt").set_value("abcdefgh").run()
    assert at.slider(key="token").value == 0  # the reader's choice survives a new prompt


def test_a_moved_widget_wins_over_an_address_the_browser_had_not_updated_yet():
    """A rerun can carry the address as it was before the last run's URL reached the browser:
    a slider pressed twice while the page ran. The reader's move wins; an address that changed
    while no widget moved is a link followed, and wins."""
    at = open_page(site.page("flow"), {"model": ["tiny-random"], "new": ["3"], "layer": ["1"]})
    at.slider(key="layer").set_value(2).run()
    assert left_in_url(at)["layer"] == ["2"]
    at.query_params["layer"] = "1"  # the address before the last run's change arrived
    at.slider(key="layer").set_value(3).run()
    assert not at.exception and at.slider(key="layer").value == 3
    assert left_in_url(at)["layer"] == ["3"]
    at.query_params["layer"] = "0"  # a link to this page, followed
    at.run()
    assert at.slider(key="layer").value == 0
    assert left_in_url(at).get("layer", ["0"]) == ["0"]  # left out when it is the page's pick
