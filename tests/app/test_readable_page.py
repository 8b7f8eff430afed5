"""/readable through Streamlit's AppTest: it renders the widths, the probes and the patching of a
pair; a change of the selected layer calls no model; a preset pair replaces the pair; a pair of
unequal token counts is refused with a notice, and the rest of the page still shows."""

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib.readable import patching, probe
from lib.readable.pairs import pair_presets

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TINY = {"model": "tiny-random", "new": "3"}
CLEAN, CORRUPT = "The cat sat on the mat, said", "The bat sat on the mat, said"  # one char apart


@pytest.fixture
def calls(counting):
    """Every torch module call, probe fit and patching run of the test."""
    return counting(
        fit=(probe, "fit_probes"),
        patch=(patching, "patch"),
        curve=(patching, "restoration_curve"),
    )


def open_page(**query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=600)
    at.query_params.update(TINY | query)
    at.switch_page("views/readable.py")
    return at.run()


def charts(at: AppTest) -> list[dict]:
    return [
        json.loads(element.proto.spec)
        for element in at.main
        if getattr(element, "type", None) == "vega_lite_chart"
    ]


def texts(at: AppTest) -> str:
    return "\n".join(e.value for e in [*at.markdown, *at.caption, *at.subheader, *at.warning])


def test_renders_and_a_layer_change_calls_no_model(calls):
    at = open_page(layer="1", clean=CLEAN, corrupt=CORRUPT, to="2")
    assert not at.exception, at.exception
    assert calls["fit"] == 1 and calls["patch"] == 1 and calls["curve"] == 1
    assert len(charts(at)) == 6  # widths, R², three next-token runs, restoration
    assert [h.value for h in at.header] == [
        "1 · The widths: what a layer computes, and what a later token reads of it",
        "2 · How much of the wide state survives into what later tokens read",
        "3 · Patching: do earlier internal states, not only words, carry the answer?",
    ]
    assert "Layer 1's MLP activation, read from layer 2's keys" in texts(at)
    assert "Patched at layers 1–2" in texts(at)
    r2 = next(spec for spec in charts(at) if "readable_layer" in json.dumps(spec))
    assert '"fields": ["layer"]' in json.dumps(r2)

    before = dict(calls)
    at.slider(key="layer").set_value(0).run()
    assert not at.exception, at.exception
    assert calls == before  # a new layer: not one model call of any kind
    assert "This is layer 0" in texts(at)
    assert at.query_params["layer"] == "0"


def test_a_new_range_patches_once_more_and_keeps_the_fit(calls):
    at = open_page(clean=CLEAN, corrupt=CORRUPT)
    assert not at.exception, at.exception
    at.number_input(key="to").set_value(2).run()
    assert not at.exception, at.exception
    assert calls["fit"] == 1 and calls["patch"] == 2 and calls["curve"] == 1
    assert at.query_params["to"] == "2"


def test_a_preset_pair_replaces_the_pair_and_an_uneven_one_is_refused(calls):
    at = open_page(clean="ab", corrupt="abc")
    assert not at.exception, at.exception
    assert not at.warning  # the link is fine; the pair is what cannot be patched
    assert "The two prompts have 2 and 3 tokens" in at.info[0].value
    assert len(charts(at)) == 2  # widths and R²; no patching for this pair
    first = pair_presets()[0]
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert at.text_input(key="clean").value == first.clean
    assert at.query_params.get("clean", first.clean) == first.clean
    assert "have 2 and 3 tokens" not in at.info[0].value  # the pair changed
