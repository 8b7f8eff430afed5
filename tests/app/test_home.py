"""The app through Streamlit's AppTest: it starts, renders, and explains bad input."""

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.menus import open_menus

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture
def app():
    def run(**query: str) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=300)
        at.query_params.update(query)
        return at.run()

    return run


def markdown_text(at: AppTest) -> str:
    return "\n".join(element.value for element in at.markdown)


def test_home_renders_with_the_tiny_model(app):
    at = app(model="tiny-random", new="5")
    assert not at.exception
    assert at.title[0].value.startswith("Does a language model")
    assert "`T` `h` `e` `·`" in markdown_text(at)  # the prompt shown as (byte) tokens
    assert any("tokens, greedy decoding" in caption.value for caption in at.caption)
    assert [metric.value for metric in at.metric][:3] == ["3", "6", "2"]


def test_home_renders_with_the_real_model(app):
    at = app(prompt="The cure for cancer is", new="8")
    assert not at.exception
    assert re.search(r"The cure for cancer is ?\*\*\S[^*]+\*\*", markdown_text(at))  # in bold
    assert [metric.value for metric in at.metric][:3] == ["30", "9", "3"]
    assert any("45.0 KB" in caption.value for caption in at.caption)


@pytest.mark.parametrize(
    "query, notice",
    [
        ({"prompt": "   "}, "prompt was empty"),
        ({"prompt": "a\x07b"}, "control characters"),
        ({"prompt": "x" * 20_000}, "cut to"),
        ({"new": "99999"}, "must be 1–128"),
        ({"new": "-4"}, "must be 1–128"),
        ({"model": "../../etc/passwd"}, "unknown model"),
        ({"bogus": "1"}, "unknown parameter"),
    ],
)
def test_bad_input_gives_a_notice_not_an_exception(app, query, notice):
    at = app(**{"model": "tiny-random", "new": "3", **query})
    assert not at.exception
    assert any(notice in warning.value.lower() for warning in at.warning), at.warning


def test_a_prompt_over_the_token_budget_is_truncated_with_a_notice(app):
    at = app(model="tiny-random", new="2", prompt="y" * 1000)
    assert not at.exception
    assert any("only the first 128" in warning.value for warning in at.warning)


def test_odd_unicode_prompts_work(app):
    at = app(model="tiny-random", new="3", prompt="שלום 🙂 ‮reversed‬ naïve")
    assert not at.exception
    assert not at.warning


def test_the_share_box_holds_every_non_default_setting(app):
    at = app(model="tiny-random", new="5", prompt="Hello there")
    shared = at.sidebar.code[0].value
    assert "model=tiny-random" in shared and "new=5" in shared and "prompt=Hello+there" in shared


def test_the_home_page_exports_its_data_as_json(app):
    at = open_menus(app(model="tiny-random", new="4"))
    keys = [button.key for button in at.get("download_button")]
    assert "home-new4-json" in keys  # the key is the file's name (home-new4.json) + its kind
