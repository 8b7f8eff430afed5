"""/cache through Streamlit's AppTest: the verdict, and selections that never rerun the model."""

import dataclasses
import io
import json
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest
from transformers import LlamaForCausalLM

from lib import cache_compare, export
from lib.pages import cache as pages_cache
from lib.ui import resources
from tests.app.menus import open_menus
from tests.holding import held_elsewhere

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture
def forwards(monkeypatch):
    """Count every forward pass of any Llama model in this process (the app's shared one too)."""
    calls = [0]
    original = LlamaForCausalLM.forward

    def counted(self, *args, **kwargs):
        calls[0] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LlamaForCausalLM, "forward", counted)
    st.cache_resource.clear()  # so the first run really generates
    yield calls
    st.cache_resource.clear()


@pytest.fixture
def cache_page():
    def run(**query: str) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=300)
        at.query_params.update(query)
        at.switch_page("views/cache.py")
        return at.run()

    return run


def charts(at: AppTest) -> list[dict]:
    """The Vega-Lite charts on the page: their spec, and the bytes of their data."""
    found = []
    for element in at.main:
        if getattr(element, "type", None) == "vega_lite_chart":
            data = [dataset.data.data for dataset in element.proto.datasets]
            found.append({"spec": json.loads(element.proto.spec), "data": data})
    return found


def grids(at: AppTest) -> list[dict]:
    return [chart for chart in charts(at) if "Cache o" in str(chart["spec"].get("title"))]


def texts(at: AppTest) -> str:
    elements = [*at.markdown, *at.caption, *at.success, *at.warning]
    return "\n".join(element.value for element in elements)


def test_verdict_and_step_through_without_rerunning_the_model(cache_page, forwards):
    at = cache_page(model="tiny-random", new="6")
    assert not at.exception
    assert "6/6 tokens identical · max |Δlogit| = " in at.success[0].value
    assert "Right about the result" in texts(at)
    assert at.metric[3].value == f"{(22 + 5) * 3:,}"  # 22 prompt bytes, then one column a step
    # one warm-up pass, then two generations of 6 steps; no trace: the page shows the decode cache
    assert forwards[0] == 1 + 2 * 6
    (before,) = grids(at)
    assert before["spec"]["title"].startswith("Cache on, step 0 ")

    at.slider(key="step").set_value(3).run()
    assert not at.exception
    (after,) = grids(at)
    assert after["spec"]["title"].startswith("Cache on, step 3 ")
    assert after["data"] != before["data"]
    assert "**Step 3** feeds" in texts(at)
    assert "reads 72 from the cache" in texts(at)  # 24 earlier tokens × 3 layers

    at.button_group(key="offgrid").set_value("on").run()
    titles = [grid["spec"]["title"] for grid in grids(at)]
    assert titles[1].startswith("Cache off, step 3: 72")
    at.slider(key="layer").set_value(2).run()
    at.button_group(key="kvhead").set_value(1).run()
    assert not at.exception
    assert "The decode cache of layer 2, KV head 1, as the cached run held it at step 3" in texts(
        at
    )
    assert "Query heads 3, 4, 5 share this KV head" in texts(at)
    assert forwards[0] == 1 + 2 * 6  # no selection called the model


def test_sessions_on_one_view_share_its_page_model(cache_page, counting):
    """A crowd on one link builds the view's page model once; another selection builds its own
    from the stored results, without the model."""
    counts = counting(built=(pages_cache, "cache_page"))
    first = cache_page(model="tiny-random", new="4")
    modules = counts["modules"]
    second = cache_page(model="tiny-random", new="4")
    assert counts["built"] == 1 and texts(second) == texts(first)
    other = cache_page(model="tiny-random", new="4", kvhead="1")
    assert counts["built"] == 2 and counts["modules"] == modules
    assert "KV head 1" in texts(other) and "KV head 1" not in texts(first)


def test_a_selection_does_not_wait_for_another_readers_run_of_the_model(cache_page):
    """Another session's computation holds the model for seconds; a reader who changes a
    selection on a stored view gets it at once (its page model only names tokens)."""
    at = cache_page(model="tiny-random", new="3")
    lm = resources._model("tiny-random", "float32")  # the one every session of the server uses
    with held_elsewhere(lm.lock):
        at.button_group(key="kvhead").set_value(1).run(timeout=20)
        assert lm.busy() and not at.exception
        assert "KV head 1" in texts(at)


def test_seeded_sampling_and_bfloat16_keep_a_verdict(cache_page, forwards):
    at = cache_page(model="tiny-random", new="4", seed="5")
    assert not at.exception
    assert "4/4 tokens identical" in at.success[0].value
    assert "sampling with seed 5" in texts(at)
    at.button_group(key="dtype").set_value("bfloat16").run()
    assert not at.exception
    assert "tokens identical" in texts(at) and "bfloat16" in texts(at)


def parted_at(index: int):
    """A stand-in for `cache_compare.run_both` whose uncached run chooses `Z` at one step."""
    original = cache_compare.run_both

    def run_both(*args, **kwargs):
        runs = original(*args, **kwargs)
        steps = list(runs.off.steps)
        steps[index] = dataclasses.replace(steps[index], token_id=65, label="Z")
        off = dataclasses.replace(runs.off, steps=tuple(steps))
        return dataclasses.replace(runs, off=off, step_abs_dlogit=runs.step_abs_dlogit[: index + 1])

    return run_both


def test_runs_that_part_are_said_to_part_at_their_first_step(cache_page, monkeypatch):
    monkeypatch.setattr(cache_compare, "run_both", parted_at(2))
    at = cache_page(model="tiny-random", new="5", prompt="parting")
    assert not at.exception and not at.success
    (warning,) = [w.value for w in at.warning if "tokens identical" in w.value]
    assert warning.startswith("**4/5 tokens identical")
    assert "At step 2 the texts part" in warning and "`Z` without" in warning
    assert "the texts part at step 2" in texts(at)  # the opening says so too


@pytest.mark.parametrize(
    "query, notice",
    [
        ({"step": "99"}, "`step` must be 0–3 here; using 3"),
        ({"layer": "40"}, "`layer` must be 0–2 here; using 2"),
        ({"kvhead": "7"}, "`kvhead` must be 0–1 here; using 1"),
    ],
)
def test_out_of_range_selections_clamp_with_a_notice(cache_page, query, notice):
    at = cache_page(**{"model": "tiny-random", "new": "4", **query})
    assert not at.exception
    assert any(notice in warning.value for warning in at.warning), at.warning


def test_an_unusable_toggle_value_falls_back_to_its_default(cache_page):
    at = cache_page(model="tiny-random", new="3", offgrid="maybe", dtype="float64")
    assert not at.exception
    assert at.button_group(key="offgrid").value == "off"
    assert at.button_group(key="dtype").value == "float32"
    assert len(grids(at)) == 1


@pytest.fixture
def downloads(monkeypatch):
    """Every download the page offers, by file name (its callable, not yet called), and the
    export functions called so far."""
    offered, called = {}, []
    add_deferred = MediaFileManager.add_deferred

    def record(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        offered[file_name] = data_callable
        return add_deferred(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    def counted(name, function):
        def wrapper(*args, **kwargs):
            called.append(name)
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    for name in ("chart_png", "chart_svg", "view_json", "table_csv"):
        monkeypatch.setattr(export, name, counted(name, getattr(export, name)))
    return offered, called


def test_every_figure_and_the_data_export_under_names_of_the_view(cache_page, downloads):
    offered, called = downloads
    at = cache_page(model="tiny-random", new="5", seed="7", step="2", layer="1", kvhead="1")
    assert not at.exception, at.exception
    menus = [popover.proto.popover.label for popover in at.get("popover")]
    assert menus == ["Export figure"] * 5 + ["Export data"]
    assert offered == {} and not at.get("download_button")  # drawn when a menu opens
    open_menus(at)
    run = "cache-new5-float32-seed7"
    figures = [
        f"{run}-figtimes",
        f"{run}-figcells",
        f"{run}-figsize",
        f"{run}-step2-layer1-figgridon",
        f"{run}-step2-layer1-kvhead1-figrows",
    ]
    files = [f"{name}.{kind}" for name in figures for kind in ("png", "svg")]
    files += [f"{run}-step2-layer1-kvhead1.json", f"{run}-step2-layer1-kvhead1.csv"]
    assert list(offered) == files
    # a button's key is its file name with a dash before the extension (lib/ui/draw.py)
    keys = [button.key for button in at.get("download_button")]
    assert keys == [name.replace(".", "-") for name in files]
    assert called == []  # nothing is rendered or serialized before a click

    document = json.loads(offered[f"{run}-step2-layer1-kvhead1.json"]())
    assert document["page"] == "cache" and document["model"] == "tiny-random"
    assert document["config"]["seed"] == 7 and document["query"]["step"] == "2"
    data = document["data"]
    assert data["comparison"]["identical"] == 5 and data["kind"] == "same"
    assert len(data["table"]) == 5 and data["saved"]["cells_on"] == sum(
        row["cells_cache_on"] for row in data["table"]
    )
    assert (data["step"], data["layer"], data["kv_head"]) == (2, 1, 1)
    rows = data["reads"]
    assert len(rows["keys"]) == rows["query"] + 1 == len(rows["attention"][0])
    assert data["grid_off"] is None and data["grid_on"]["counts"]["computed now"] == 3
    table = pd.read_csv(io.StringIO(offered[f"{run}-step2-layer1-kvhead1.csv"]()))
    assert list(table["step"]) == [0, 1, 2, 3, 4]
    assert table["token_id_cache_on"].tolist() == table["token_id_cache_off"].tolist()
    assert called == ["view_json", "table_csv"]

    offered.clear()
    at.button_group(key="offgrid").set_value("on").run()
    assert not at.exception
    open_menus(at)
    assert f"{run}-step2-layer1-figgridoff.png" in offered
    assert len(at.get("popover")) == 7
