"""/architectures through AppTest: three diagrams marking the linked (or picked) cell, controls
bound to the URL, the generation toggle, clamping, the cached live checks, the export menus, and
no language model anywhere."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from lib import models, toy
from lib.architectures import ARCHITECTURES, auto_cell, make_rule
from lib.charts.architectures import node_roles
from lib.stepping import Cell
from lib.ui import resources
from tests.app.menus import open_menus

APP = Path(__file__).resolve().parents[2] / "app.py"
PAGE = "views/architectures.py"


@pytest.fixture
def page(monkeypatch):
    """Open the page inside app.py with a URL query; count live checks; make any model load
    fail loudly."""
    st.cache_resource.clear()  # a fresh result store: the checks really run
    calls: list[tuple] = []
    real_verify = toy.verify

    def counted_verify(*args, **kwargs):
        calls.append(args)
        return real_verify(*args, **kwargs)

    def no_model(*args, **kwargs):
        raise AssertionError("/architectures must not load a language model")

    monkeypatch.setattr(toy, "verify", counted_verify)
    monkeypatch.setattr(models, "load", no_model)
    monkeypatch.setattr(resources, "loaded_model", no_model)

    def run(**query: str) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=300)
        at.switch_page(PAGE)
        at.query_params.update(query)
        return at.run()

    run.calls = calls
    yield run
    st.cache_resource.clear()


def diagrams(at: AppTest) -> dict[str, pd.DataFrame]:
    """The cells (token, layer, role) of each diagram, by architecture, and its wires."""
    found = {}
    for chart in at.get("vega_lite_chart"):
        match = re.search(r"-diagram-(\w+)-\d+-\d+$", chart.proto.id)
        if match is None:
            continue
        frames = [convert_arrow_bytes_to_pandas_df(d.data.data) for d in chart.proto.datasets]
        cells = next(f for f in frames if {"token", "layer", "role"} <= set(f.columns))
        wires = [f for f in frames if "wire" in f.columns]
        found[match.group(1)] = (cells[["token", "layer", "role"]], wires[0] if wires else None)
    return found


def assert_marks(at: AppTest, cell: Cell, tokens: int, layers: int, generation: bool) -> None:
    """Every diagram marks exactly the rule's cones of `cell` (with the sampled-token edge
    when generating) and draws a wire per sampled token only then."""
    found = diagrams(at)
    assert sorted(found) == sorted(ARCHITECTURES)
    for name, (cells, wires) in found.items():
        roles = node_roles(make_rule(name, layers, generation), cell, tokens)
        assert len(cells) == tokens * (layers + 1)
        for token, layer, role in cells.itertuples(index=False):
            assert role == roles[(token, layer)], (name, token, layer)
        drawn = 0 if wires is None else wires["wire"].nunique()
        assert drawn == (tokens - 1 if generation else 0)


def text(at: AppTest) -> str:
    return "\n".join(element.value for element in [*at.markdown, *at.caption])


def test_a_link_without_a_cell_opens_a_cell_that_shows_something(page):
    at = page()
    assert not at.exception and not at.warning
    assert at.text_area(key="prompt").value  # inside app.py: the shared sidebar is there
    pick = auto_cell(6, 4)
    assert (at.number_input(key="token").value, at.number_input(key="layer").value) == pick
    assert f"Selected cell: token {pick.token}, layer {pick.layer}." in text(at)
    assert_marks(at, pick, 6, 4, generation=False)
    assert "token" not in at.query_params and "layer" not in at.query_params
    # The live check ran once per architecture, on this grid, and passed both ways.
    assert sorted(page.calls) == sorted((name, 6, 4) for name in ARCHITECTURES)
    assert text(at).count(f"0 of {(6 * 5) ** 2:,} cell pairs differ") == 3
    assert text(at).count(f"0 of {(6 * 5) ** 2:,} differ") == 3


def test_the_linked_cell_and_the_generation_toggle(page):
    at = page(tokens="8", layers="4", token="5", layer="1", generation="on")
    assert not at.exception and not at.warning
    assert_marks(at, Cell(5, 1), 8, 4, generation=True)
    assert "**Generating:**" in text(at)
    at.segmented_control(key="generation").set_value("off")
    at.run()
    assert not at.exception
    assert_marks(at, Cell(5, 1), 8, 4, generation=False)
    assert "**Generating:**" not in text(at) and "generation" not in at.query_params
    assert len(page.calls) == 3  # the same grid: the live checks are reused


def test_numbers_follow_tokens_layers_and_width(page):
    at = page(token="5", layer="1")
    before = text(at)
    assert "State carried into step 5: **2,560 values" in before  # 2 × 4 × 5 × 64
    at.slider(key="tokens").set_value(10)
    at.slider(key="layers").set_value(6)
    at.number_input(key="width").set_value(128)
    at.run()
    assert not at.exception
    after = text(at)
    assert "State carried into step 5: **7,680 values" in after  # 2 × 6 × 5 × 128
    assert "on a grid of **10 tokens × 6 layers**" in after
    assert_marks(at, Cell(5, 1), 10, 6, generation=False)
    assert sorted(page.calls[-3:]) == sorted((name, 10, 6) for name in ARCHITECTURES)


def test_controls_move_the_marks_without_recomputing(page):
    at = page(token="5", layer="1")
    at.number_input(key="token").set_value(2)
    at.number_input(key="layer").set_value(3)
    at.run()
    assert not at.exception
    assert_marks(at, Cell(2, 3), 6, 4, generation=False)
    assert "Selected cell: token 2, layer 3." in text(at)
    assert (at.query_params["token"], at.query_params["layer"]) == ("2", "3")
    assert len(page.calls) == 3  # a new selection reuses the cached live checks
    at.slider(key="layers").set_value(2)  # the grid changes: layer 3 is clamped to 2
    at.run()
    assert len(page.calls) == 6
    assert any("`layer` must be 0–2" in warning.value for warning in at.warning)
    assert_marks(at, Cell(2, 2), 6, 2, generation=False)


@pytest.mark.parametrize(
    ("query", "notices", "cell", "tokens"),
    [
        ({"token": "12", "layer": "9"}, ["`token` must be 0–5", "`layer` must be 0–4"], (5, 4), 6),
        ({"tokens": "99", "token": "40"}, ["must be 1–16", "`token` must be 0–15"], (15, 2), 16),
        ({"layers": "x", "layer": "-3"}, ["whole number", "must be 0–64"], (3, 0), 6),
        ({"generation": "maybe"}, ["must be one of on, off"], (3, 2), 6),
    ],
)
def test_bad_links_are_clamped_with_a_notice(page, query, notices, cell, tokens):
    at = page(**query)
    assert not at.exception
    warnings = " ".join(warning.value for warning in at.warning)
    assert all(notice in warnings for notice in notices), warnings
    assert_marks(at, Cell(*cell), tokens, 4, generation=False)


def test_links_to_flow_and_tracking(page):
    at = page()
    assert sorted(link.proto.page for link in at.get("page_link")) == ["flow", "tracking"]


def test_export_menus_named_after_the_view(page, monkeypatch):
    """Five "Export figure" menus and one "Export data", with file names from the view; the
    JSON is the page model (masks left out), the CSV one row per architecture."""
    deferred = {}
    real_add = MediaFileManager.add_deferred

    def recording_add(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        file_id = real_add(self, data_callable, mimetype, coordinates, file_name, **kwargs)
        deferred[file_id] = (file_name, data_callable)
        return file_id

    monkeypatch.setattr(MediaFileManager, "add_deferred", recording_add)
    at = page(tokens="6", layers="4", token="5", layer="1", generation="on")
    assert not at.exception
    labels = [menu.proto.popover.label for menu in at.get("popover")]
    assert sorted(labels) == ["Export data"] + ["Export figure"] * 5
    assert not deferred  # drawn when a menu opens
    open_menus(at)
    files = dict(deferred[b.proto.deferred_file_id] for b in at.get("download_button"))
    base = "architectures-tokens6-layers4"
    figures = [f"{base}-generationon-token5-layer1-fig{name}" for name in ARCHITECTURES]
    figures += [f"{base}-width64-token5-figstate-size", f"{base}-figserial-path"]
    data = f"{base}-width64-generationon-token5-layer1"
    assert sorted(files) == sorted(
        [f"{figure}.{ext}" for figure in figures for ext in ("png", "svg")]
        + [f"{data}.json", f"{data}.csv"]
    )
    document = json.loads(files[f"{data}.json"]())
    assert document["page"] == "architectures" and document["query"]["generation"] == "on"
    panels = {panel["name"]: panel for panel in document["data"]["panels"]}
    assert panels["transformer"]["numbers"]["generating_path"] == 6 * 4
    assert panels["transformer"]["check"]["generating_mismatches"] == 0
    assert "grad_mask" not in json.dumps(document)
    table = files[f"{data}.csv"]().splitlines()
    assert len(table) == 1 + len(ARCHITECTURES)
