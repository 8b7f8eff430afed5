"""/architectures through AppTest: three diagrams, numbers that follow the grid, selection by
the URL-bound controls, clamping, the cached live check, the export menus, and no language model
anywhere."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from lib import export, models, toy
from lib.architectures import ARCHITECTURES, Cell, make_rule, step_numbers
from lib.charts.architectures import node_roles
from lib.ui import resources

APP = Path(__file__).resolve().parents[2] / "app.py"
PAGE = "views/architectures.py"


@pytest.fixture
def page(monkeypatch):
    """Open the page inside app.py with a URL query; count live checks; make any model load
    fail loudly."""
    st.cache_resource.clear()
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
    return run


def diagrams(at: AppTest) -> dict[str, pd.DataFrame]:
    """The cells (token, layer, role) of each diagram, by architecture, from the charts' data."""
    found = {}
    for chart in at.get("vega_lite_chart"):
        match = re.search(r"-diagram-(\w+)-\d+-\d+$", chart.proto.id)
        if match is None:
            continue
        for dataset in chart.proto.datasets:
            frame = convert_arrow_bytes_to_pandas_df(dataset.data.data)
            if "layer" in frame.columns:  # the cells, not the lines or the memories
                found[match.group(1)] = frame[["token", "layer", "role"]]
    return found


def selected(frame: pd.DataFrame) -> list[Cell]:
    rows = frame[frame["role"] == "selected"]
    return list(zip(rows["token"].tolist(), rows["layer"].tolist(), strict=True))


def assert_highlights(at: AppTest, cell: Cell, tokens: int, layers: int) -> None:
    """Every diagram colours exactly the rule's cones of `cell`."""
    found = diagrams(at)
    assert sorted(found) == sorted(ARCHITECTURES)
    for name, frame in found.items():
        roles = node_roles(make_rule(name, layers), cell, tokens)
        assert len(frame) == tokens * (layers + 1)
        assert selected(frame) == [cell]
        for token, layer, role in frame.itertuples(index=False):
            assert role == roles[(token, layer)], (name, token, layer)


def text(at: AppTest) -> str:
    return "\n".join(element.value for element in [*at.markdown, *at.caption])


def test_three_diagrams_highlight_the_linked_cell(page):
    at = page(tokens="6", layers="4", token="5", layer="1")
    assert not at.exception
    assert not at.warning
    assert at.text_area(key="prompt").value  # inside app.py: the shared sidebar is there
    assert_highlights(at, (5, 1), tokens=6, layers=4)
    # The live check ran once per architecture, on this grid, and passed.
    assert sorted(page.calls) == sorted((name, 6, 4) for name in ARCHITECTURES)
    assert text(at).count(f"0 of {(6 * 5) ** 2:,} cell pairs differ") == 3


def test_numbers_follow_tokens_layers_and_width(page):
    at = page(token="5", layer="1")

    def expected(tokens: int, layers: int, width: int) -> list[str]:
        lines = []
        for name in ARCHITECTURES:
            numbers = step_numbers(make_rule(name, layers), 5, tokens, width)
            lines += [
                f"State carried into step 5: **{numbers.state_values:,} values",
                f"Sequential steps to train on {tokens} tokens: **{numbers.training_steps} ",
                f"Longest serial path, token 0 → 5: **{numbers.longest_path} computations",
            ]
        return lines

    before = text(at)
    assert all(line in before for line in expected(6, 4, 64))
    at.slider(key="tokens").set_value(10)
    at.slider(key="layers").set_value(6)
    at.number_input(key="width").set_value(128)
    at.run()
    assert not at.exception
    after = text(at)
    assert all(line in after for line in expected(10, 6, 128))
    transformer = step_numbers(make_rule("transformer", 4), 5, 6, 64)
    assert f"**{transformer.state_values:,} values" not in after
    assert_highlights(at, (5, 1), tokens=10, layers=6)


def test_token_and_layer_controls_move_the_highlight_without_recomputing(page):
    at = page(token="5", layer="1")
    assert len(page.calls) == 3
    at.number_input(key="token").set_value(2)
    at.number_input(key="layer").set_value(3)
    at.run()
    assert not at.exception
    assert_highlights(at, (2, 3), tokens=6, layers=4)
    assert "Selected cell: token 2, layer 3." in text(at)
    assert len(page.calls) == 3  # a new selection reuses the cached live checks
    at.slider(key="layers").set_value(2)  # the grid changes: layer 3 is clamped to 2
    at.run()
    assert len(page.calls) == 6
    assert any("`layer` must be 0–2" in warning.value for warning in at.warning)
    assert_highlights(at, (2, 2), tokens=6, layers=2)


@pytest.mark.parametrize(
    ("query", "notices", "cell", "tokens"),
    [
        ({"token": "12", "layer": "9"}, ["`token` must be 0–5", "`layer` must be 0–4"], (5, 4), 6),
        ({"tokens": "99", "token": "40"}, ["must be 1–16", "`token` must be 0–15"], (15, 0), 16),
        ({"layers": "x", "layer": "-3"}, ["whole number", "must be 0–64"], (0, 0), 6),
    ],
)
def test_bad_selections_are_clamped_with_a_notice(page, query, notices, cell, tokens):
    at = page(**query)
    assert not at.exception
    warnings = " ".join(warning.value for warning in at.warning)
    assert all(notice in warnings for notice in notices), warnings
    assert_highlights(at, cell, tokens=tokens, layers=4)


def test_link_to_flow_carries_the_prompt(page):
    at = page(prompt="Hello there", model="tiny-random")
    assert not at.exception
    links = [link for link in at.get("page_link") if "flow" in link.proto.label]
    assert len(links) == 1
    assert "prompt=Hello+there" in links[0].proto.query_string
    assert "model=tiny-random" in links[0].proto.query_string


def test_export_menus_under_each_figure_named_after_the_view(page, monkeypatch):
    """Five "Export figure" menus (three diagrams, two curves) and one "Export data", with file
    names from the view; nothing is rendered or serialised until a button asks for it."""
    deferred = {}  # a download button's deferred file id → (file name, data callable)
    real_add = MediaFileManager.add_deferred

    def recording_add(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        file_id = real_add(self, data_callable, mimetype, coordinates, file_name, **kwargs)
        deferred[file_id] = (file_name, data_callable)
        return file_id

    monkeypatch.setattr(MediaFileManager, "add_deferred", recording_add)
    made = []
    for function in ("chart_png", "chart_svg", "view_json", "table_csv"):
        real = getattr(export, function)

        def counted(*args, _name=function, _real=real, **kwargs):
            made.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(export, function, counted)

    at = page(tokens="6", layers="4", width="64", token="5", layer="1")
    assert not at.exception
    labels = [menu.proto.popover.label for menu in at.get("popover")]
    assert sorted(labels) == ["Export data"] + ["Export figure"] * 5
    files = {
        deferred[button.proto.deferred_file_id][0]: deferred[button.proto.deferred_file_id][1]
        for button in at.get("download_button")
    }
    base = "architectures-tokens6-layers4"
    figures = [f"{base}-token5-layer1-fig{name}" for name in ARCHITECTURES]
    figures += [f"{base}-width64-token5-figstate-size", f"{base}-figserial-path"]
    data = f"{base}-width64-token5-layer1"
    assert sorted(files) == sorted(
        [f"{figure}.{ext}" for figure in figures for ext in ("png", "svg")]
        + [f"{data}.json", f"{data}.csv"]
    )
    assert made == []  # drawing the page rendered no file

    document = json.loads(files[f"{data}.json"]())
    assert document["page"] == "architectures"
    assert document["model"] == document["config"]["model"]
    assert document["query"]["token"] == "5" and document["config"]["tokens"] == 6
    numbers = {row["architecture"]: row for row in document["data"]["numbers"]}
    for name in ARCHITECTURES:
        expected = step_numbers(make_rule(name, 4), 5, 6, 64)
        assert numbers[name]["state_values"] == expected.state_values
        assert numbers[name]["longest_path"] == expected.longest_path
        assert numbers[name]["check_mismatched_pairs"] == 0
        assert len(document["data"]["diagram_cells"][name]) == 6 * 5
    table = pd.read_csv(io.StringIO(files[f"{data}.csv"]()))
    assert table["architecture"].tolist() == list(ARCHITECTURES)
    assert made == ["view_json", "table_csv"]
