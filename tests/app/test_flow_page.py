"""/flow through Streamlit's AppTest: it renders its measured claims, a selection change calls
no model but the one gradient pass of a new cell, and bad links give notices."""

import json
from collections import Counter
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from transformers import LlamaForCausalLM, LlamaModel

from lib.charts.flow import SELECTION

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
    assert "the largest gradient among the other" in shown and "is 0." in shown
    assert "room for 1 more dependent hop before the top row" in shown
    grid, cone, surgery = charts(at)
    assert grid["params"][0]["name"] == SELECTION == cone["params"][0]["name"]
    assert [metric.label for metric in at.metric][:3] == [
        "Mean KL (nats)",
        "Largest KL (nats)",
        "Top-1 changed",
    ]
    assert at.dataframe[0].value["token"].tolist() != []  # the edge table


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
    assert not at.exception and "query head 4 (it reads KV head 1)" in texts(at)
    assert forwards == {}


def test_an_example_button_selects_a_cell(flow_page):
    at = flow_page(model="tiny-random", new="3")
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
    assert "Row 0 of later tokens cannot read the edit" in shown
