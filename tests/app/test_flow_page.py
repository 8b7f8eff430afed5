"""/flow through Streamlit's AppTest: it renders its measured claims, a selection change calls
no model but the one gradient pass of a new cell, and bad links give notices."""

import io
import json
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest
from transformers import LlamaForCausalLM, LlamaModel

from lib import export
from lib.charts.flow import SELECTION
from tests.app.menus import open_menus

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture
def forwards(monkeypatch):
    """Count forward passes of every Llama in this process (the app's shared model too):
    `causal` for traces, generation and surgery; `base` for every pass, gradient ones included."""
    calls = Counter()
    for name, cls in (("causal", LlamaForCausalLM), ("base", LlamaModel)):
        original = cls.forward

        def counted(self, *args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "forward", counted)
    st.cache_resource.clear()
    yield calls
    st.cache_resource.clear()


@pytest.fixture
def flow_page():
    def run(**query: str) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=300)
        at.query_params.update(query)
        at.switch_page("views/flow.py")
        return at.run()

    return run


def texts(at: AppTest) -> str:
    return "\n".join(e.value for e in [*at.markdown, *at.caption, *at.subheader, *at.warning])


def charts(at: AppTest) -> list[dict]:
    return [
        json.loads(element.proto.spec)
        for element in at.main
        if getattr(element, "type", None) == "vega_lite_chart"
    ]


def test_the_page_shows_what_feeds_the_selected_cell(flow_page):
    at = flow_page(model="tiny-random", new="3", token="5", layer="2")
    assert not at.exception
    shown = texts(at)
    assert "What feeds token 5" in shown and "at layer 2" in shown
    assert "Cell (5, 2) is the output of decoder layer 1" in shown
    assert "the largest gradient among the other" in shown
    assert re.search(r"is 0\.(?!\d)", shown)  # exactly zero, not 0.37
    assert "room for 1 more dependent hop before the top row" in shown
    grid, cone, surgery = charts(at)
    assert grid["params"][0]["name"] == SELECTION == cone["params"][0]["name"]
    assert [metric.label for metric in at.metric][:3] == [
        "Mean KL (nats)",
        "Largest KL (nats)",
        "Top-1 changed",
    ]
    assert sorted(at.dataframe[0].value["token"].tolist()) == list(range(6))  # tokens 0…5


def test_a_selection_change_calls_no_model_but_one_gradient_pass(flow_page, forwards):
    at = flow_page(model="tiny-random", new="3", token="5", layer="2")
    assert forwards["causal"] > 0  # generation, trace and surgery ran on the first view
    forwards.clear()
    at.slider(key="token").set_value(9).run()
    assert not at.exception and "What feeds token 9" in texts(at)
    assert forwards == {"base": 1}  # the gradient pass of the new cell, nothing else
    forwards.clear()
    at.selectbox(key="head").set_value("4").run()
    at.radio(key="weight").set_value("value").run()
    at.slider(key="token").set_value(5).run()  # a cell already measured
    assert not at.exception and "query head 4 (it reads KV head 1, with query heads 3–5)" in texts(
        at
    )
    assert forwards == {}


def test_a_link_without_a_cell_opens_on_the_pages_pick_and_keeps_the_url_short(flow_page):
    at = flow_page(model="tiny-random", new="3")
    assert not at.exception and not at.info  # not the empty embedding row
    token, layer = at.slider(key="token"), at.slider(key="layer")
    assert (token.value, layer.value) == (token.max, 1)
    assert f"What feeds token {int(token.max)}" in texts(at)
    assert "token" not in at.query_params and "layer" not in at.query_params


def test_an_example_button_selects_a_cell(flow_page):
    at = flow_page(model="tiny-random", new="3", token="2", layer="0")
    assert "Row 0 is the embedding" in at.info[0].value
    at.button[0].click().run()
    assert at.slider(key="layer").value == 1
    assert at.slider(key="token").value == at.slider(key="token").max


def test_out_of_range_selections_are_clamped_with_notices(flow_page):
    at = flow_page(
        model="tiny-random",
        new="2",
        token="999",
        layer="9",
        head="40",
        src="500",
        other="77",
        edit="token",
        **{"from": "3", "to": "1"},
    )
    assert not at.exception
    shown = texts(at)
    for notice in (
        "`token` must be 0–",
        "`layer` must be 0–3 here",
        "`head` must be 0–5 here",
        "`src` must be 0–",
        "`from` must be 0–2 here",
        "`other` must be 0–",
        "editing layers 1–2",
    ):
        assert notice in shown, notice
    assert at.slider(key="layer").value == 3 and at.selectbox(key="head").value == "5"


def test_the_shortest_sequence_works(flow_page):
    at = flow_page(model="tiny-random", new="1", prompt="a", token="1", layer="3")
    assert not at.exception
    assert "of the 2 tokens 0…1" in texts(at)
    assert at.number_input(key="src").value == 0


def test_the_real_model_page(flow_page):
    at = flow_page(new="4", token="5", layer="12")
    assert not at.exception
    shown = texts(at)
    assert "SmolLM2-135M-Instruct (30 layers)" in shown
    assert "the mean over all 9 query heads" in shown
    assert "room for 18 more dependent hops before the top row" in shown
    assert "of later tokens cannot read the edit" in shown


@pytest.fixture
def downloads(monkeypatch):
    """Every deferred download the page registers, by file name, and how often a figure was
    rendered (AppTest hides both: its runtime is a mock, gone after the run)."""
    files, rendered = {}, Counter()
    original = MediaFileManager.add_deferred

    def add_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        files[file_name] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", add_deferred)
    for name in ("chart_png", "chart_svg", "view_json"):
        original_export = getattr(export, name)

        def counted(*args, _name=name, _original=original_export, **kwargs):
            rendered[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(export, name, counted)
    return files, rendered


def test_every_figure_and_the_data_can_be_exported(flow_page, downloads):
    files, rendered = downloads
    at = flow_page(model="tiny-random", new="3", token="5", layer="2", head="4", weight="value")
    assert not at.exception
    popovers = [popover.proto.popover.label for popover in at.get("popover")]
    assert popovers == ["Export figure"] * 3 + ["Export data"]
    assert not files and not at.download_button  # drawn when a menu opens
    open_menus(at)
    view = "flow-token5-layer2-head4-weightvalue"
    expected = [
        f"{view}-figgrid.png",
        f"{view}-figgrid.svg",
        "flow-token5-layer2-figcone.png",
        "flow-token5-layer2-figcone.svg",
        "flow-src0-from1-to1-editzero-figsurgery.png",
        "flow-src0-from1-to1-editzero-figsurgery.svg",
        f"{view}.json",
        f"{view}.csv",
    ]
    assert list(files) == expected
    assert [button.key for button in at.download_button] == [
        name.replace(".", "-") for name in expected
    ]
    assert not rendered  # nothing is drawn or serialised until a button is pressed

    document = json.loads(files[f"{view}.json"]())
    assert document["model"] == "tiny-random" and document["config"]["head"] == 4
    assert document["query"]["token"] == "5" and document["query"]["weight"] == "value"
    assert "from_" not in files[f"{view}.json"]()
    data = document["data"]
    assert (data["token"], data["layer"]) == (5, 2)
    assert sorted(row["token"] for row in data["edges"]["table"]) == list(range(6))
    norms = data["cone"]["gradient"]["norms"]
    assert len(norms) == 4 and len(norms[0]) == len(data["tokens"])  # rows 0–3 × tokens
    assert data["surgery"]["edit"] == {"src": 0, "from": 1, "to": 1, "edit": "zero"}
    assert len(data["surgery"]["table"]) == len(data["tokens"]) - 1
    assert len(files[f"{view}.json"]()) < 300_000
    table = pd.read_csv(io.StringIO(files[f"{view}.csv"]()))
    assert sorted(table["token"]) == list(range(6)) and "attn × ‖W_O v‖" in table.columns


def test_the_grid_bound_bites_with_a_notice(flow_page, monkeypatch):
    from functools import partial

    from lib.pages import common
    from lib.pages import flow as page

    monkeypatch.setattr(page, "session_run", partial(common.session_run, limit=8))
    at = flow_page(model="tiny-random", new="4", token="20")
    assert not at.exception
    warnings = " ".join(warning.value for warning in at.warning)
    assert "at most 8 tokens" in warnings and "must be 0–7" in warnings
