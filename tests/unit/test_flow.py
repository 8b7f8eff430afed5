"""lib.flow on the tiny random model: edges, the GQA mapping, cones, gradients, staircase."""

import io
import xml.etree.ElementTree as ElementTree
from itertools import pairwise

import altair as alt
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from lib import export
from lib.architectures import TransformerRule, cone_mask
from lib.charts import clicked
from lib.charts import flow as charts
from lib.flow import (
    Cell,
    cone_summary,
    gradient_cone,
    incoming_edges,
    kv_head_of,
    staircase,
    structural_cones,
    value_norms,
)
from lib.trace import run_trace
from lib.ui.flow import CELL_FIELDS

IDS = [5, 17, 99, 3, 42, 7, 61, 250, 8, 33]


@pytest.fixture(scope="module")
def traced(tiny):
    trace = run_trace(tiny, IDS)
    return trace, value_norms(tiny, trace)


def test_kv_head_mapping_groups_consecutive_query_heads():
    assert [kv_head_of(h, 9, 3) for h in range(9)] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [kv_head_of(h, 6, 2) for h in range(6)] == [0, 0, 0, 1, 1, 1]
    assert [kv_head_of(h, 4, 4) for h in range(4)] == [0, 1, 2, 3]


def head_outputs(tiny, decoder_layer):
    """What the model itself feeds its output projection: (T, H * hd), per head side by side."""
    captured = {}
    o_proj = tiny.model.model.layers[decoder_layer].self_attn.o_proj
    handle = o_proj.register_forward_pre_hook(lambda module, args: captured.update(x=args[0]))
    try:
        with torch.inference_mode():
            tiny.model(input_ids=torch.tensor([IDS]))
    finally:
        handle.remove()
    return captured["x"][0].numpy()


def test_query_heads_read_the_kv_head_of_their_group(tiny, traced):
    """attention(h) @ V(kv_head_of(h)) is exactly what the model computes per head; another
    mapping (h % H_kv) is not: the test tells them apart."""
    trace, _ = traced
    shape = tiny.shape
    for decoder_layer in range(shape.layers):
        model_out = head_outputs(tiny, decoder_layer)
        for head in range(shape.heads):
            right = kv_head_of(head, shape.heads, shape.kv_heads)
            wrong = head % shape.kv_heads
            mixed = trace.attentions[decoder_layer, head] @ trace.values[decoder_layer, right]
            columns = slice(head * shape.head_dim, (head + 1) * shape.head_dim)
            np.testing.assert_allclose(mixed, model_out[:, columns], atol=1e-5)
            if wrong != right:
                other = trace.attentions[decoder_layer, head] @ trace.values[decoder_layer, wrong]
                assert not np.allclose(other, model_out[:, columns], atol=1e-3)


def test_value_norms_are_norms_of_the_models_output_projection(tiny, traced):
    trace, norms = traced
    shape = tiny.shape
    assert norms.shape == (shape.layers, shape.heads, len(IDS))
    layer, head = 1, 4
    o_proj = tiny.model.model.layers[layer].self_attn.o_proj
    values = torch.from_numpy(np.array(trace.values[layer, kv_head_of(head, 6, 2)]))  # (T, hd)
    one_head = torch.zeros(len(IDS), shape.heads * shape.head_dim)
    one_head[:, head * shape.head_dim : (head + 1) * shape.head_dim] = values
    with torch.inference_mode():
        expected = o_proj(one_head).norm(dim=-1).numpy()
    np.testing.assert_allclose(norms[layer, head], expected, rtol=1e-5)


@pytest.mark.parametrize("token, layer", [(0, 1), (6, 2), (9, 3)])
def test_edges_are_the_models_attention_weights(traced, token, layer):
    trace, norms = traced
    cell = Cell(token, layer)
    weights = trace.attentions[layer - 1, :, token, : token + 1]  # (H, t+1)
    for head in range(weights.shape[0]):
        edges = incoming_edges(trace, norms, cell, head)
        np.testing.assert_array_equal(edges.attention, weights[head])
        np.testing.assert_allclose(
            edges.value_weighted, weights[head] * norms[layer - 1, head, : token + 1]
        )
    mean = incoming_edges(trace, norms, cell, "all", "mean")
    np.testing.assert_allclose(mean.attention, weights.mean(axis=0))
    assert mean.attention.sum() == pytest.approx(1.0, abs=1e-5)
    peak = incoming_edges(trace, norms, cell, "all", "max", "value")
    np.testing.assert_allclose(peak.attention, weights.max(axis=0))
    np.testing.assert_allclose(peak.drawn, peak.value_weighted)
    assert peak.source_row == layer - 1 and list(peak.sources) == list(range(token + 1))


def test_the_embedding_row_has_no_incoming_edges(traced):
    trace, norms = traced
    edges = incoming_edges(trace, norms, Cell(4, 0))
    assert edges.attention.size == 0 and edges.value_weighted.size == 0


def test_edge_table_lists_every_source_strongest_first(traced):
    trace, norms = traced
    edges = incoming_edges(trace, norms, Cell(7, 2), 3, weight="value")
    table = edges.table(trace.tokens)
    assert sorted(table["token"]) == list(range(8))
    assert list(table["attn × ‖W_O v‖"]) == sorted(edges.value_weighted, reverse=True)
    assert table["% of attention"].sum() == pytest.approx(100)
    assert table["% of value-weighted"].sum() == pytest.approx(100)


@pytest.mark.parametrize("cell", [Cell(0, 0), Cell(4, 2), Cell(9, 3), Cell(0, 3), Cell(9, 0)])
def test_structural_cones_follow_the_transformer_rule(cell):
    rule = TransformerRule(3)
    cones = structural_cones(cell, 10, 3)
    at = (cell.token, cell.layer)
    np.testing.assert_array_equal(cones.backward, cone_mask(rule, at, 10, "past").T)
    np.testing.assert_array_equal(cones.forward, cone_mask(rule, at, 10, "future").T)


@pytest.mark.parametrize("cell", [Cell(6, 2), Cell(9, 3), Cell(3, 1)])
def test_gradient_cone_is_zero_outside_and_alive_inside_the_structural_cone(tiny, cell):
    cone = gradient_cone(tiny, IDS, cell)
    cones = structural_cones(cell, len(IDS), tiny.shape.layers)
    outside = ~cones.backward
    outside[cell.layer, cell.token] = False
    assert cone.norms.shape == (tiny.shape.layers + 1, len(IDS))
    assert np.all(cone.norms[outside] == 0)
    assert np.all(cone.norms[cell.layer - 1, : cell.token + 1] > 0)  # the direct parents
    assert cone.norms[cell.layer, cell.token] == pytest.approx(1.0, rel=1e-5)  # unit direction
    assert all(parameter.grad is None for parameter in tiny.model.parameters())


def test_cone_summary_counts_what_the_gradient_shows(tiny):
    cell = Cell(6, 2)
    cone = gradient_cone(tiny, IDS, cell)
    summary = cone_summary(cone, structural_cones(cell, len(IDS), 3))
    assert summary.inside == 7 * 2
    assert summary.inside_nonzero == summary.inside
    assert summary.outside == 4 * len(IDS) - 14 - 1 and summary.outside_max == 0
    parents = cone.norms[1, :7]  # row 1, tokens 0..6; token 6 is the cell's own parent
    strongest = int(np.argmax(parents[:6]))
    assert summary.strongest_parent == strongest
    assert summary.strongest_parent_ratio == pytest.approx(parents[strongest] / parents[6])


def test_staircase_climbs_one_layer_per_token():
    stairs = staircase(Cell(3, 5), n_tokens=20, n_layers=30)
    assert stairs.cells[0] == Cell(0, 2) and Cell(3, 5) in stairs.cells
    assert stairs.cells[-1] == Cell(19, 21)  # the sequence ends before the top row
    steps = {(b.token - a.token, b.layer - a.layer) for a, b in pairwise(stairs.cells)}
    assert steps == {(1, 1)}
    assert (stairs.hops_above, stairs.hops_below) == (25, 5)
    top = staircase(Cell(0, 0), n_tokens=100, n_layers=30)
    assert top.cells[-1] == Cell(30, 30) and top.hops_above == 30


@pytest.mark.parametrize(
    "event, expected",
    [
        ({"selection": {charts.SELECTION: [{"token": 7, "layer": 12}]}}, (7, 12)),
        ({"selection": {charts.SELECTION: [{"token": 7.0, "layer": "3"}]}}, (7, 3)),
        ({"selection": {charts.SELECTION: []}}, None),
        ({"selection": {}}, None),
        ({}, None),
        (None, None),
        ({"selection": {charts.SELECTION: [{"token": "x", "layer": 1}]}}, None),
        ({"selection": {charts.SELECTION: [{"zone": "selected"}]}}, None),
    ],
)
def test_a_click_event_becomes_a_cell(event, expected):
    assert clicked(event, charts.SELECTION, CELL_FIELDS) == expected


def test_charts_draw_every_cell_and_every_edge(traced):
    trace, norms = traced
    cell = Cell(6, 2)
    cones = structural_cones(cell, len(IDS), 3)
    edges = incoming_edges(trace, norms, cell)
    grid = charts.grid_chart(trace.tokens, 3, cones, edges).to_dict()
    cells, lines = grid["layer"][0], grid["layer"][1]
    assert len(grid["datasets"][cells["data"]["name"]]) == 4 * len(IDS)
    edge_rows = grid["datasets"][lines["data"]["name"]]
    assert [row["source"] for row in edge_rows] == list(range(7))
    assert {(row["x1"], row["y1"], row["y0"]) for row in edge_rows} == {(6.0, 2.0, 1.0)}
    (selection,) = grid["params"]  # Altair lifts a layer's selection to the top
    assert selection["name"] == charts.SELECTION and selection["views"] == [cells["name"]]
    assert selection["select"]["fields"] == ["token", "layer"]


def test_the_grid_and_the_cone_export_as_png_and_svg(tiny, traced):
    """The page's own charts, rendered on the server at a file width: the container width they
    use on the page means nothing to vl-convert."""
    trace, norms = traced
    cell = Cell(6, 2)
    cones = structural_cones(cell, len(IDS), 3)
    grid = charts.grid_chart(trace.tokens, 3, cones, incoming_edges(trace, norms, cell))
    image = Image.open(io.BytesIO(export.chart_png(charts.for_file(grid, len(IDS)))))
    image.load()
    assert image.format == "PNG" and image.width == 2 * charts.FILE_MIN_WIDTH
    assert image.height > 2 * charts.plot_height(4)
    cone = charts.cone_chart(
        trace.tokens, gradient_cone(tiny, IDS, cell), cones, staircase(cell, 10, 3)
    )
    svg = ElementTree.fromstring(export.chart_svg(charts.for_file(cone, len(IDS))))
    assert svg.tag.endswith("svg") and float(svg.get("width")) == charts.FILE_MIN_WIDTH
    cells = [node for node in svg.iter() if node.tag.endswith("path")]
    assert len(cells) >= 4 * len(IDS)  # a rectangle per cell, and the measured heat over them
    assert "layer (0 = embedding)" in "".join(svg.itertext())


def test_exported_figures_widen_with_the_tokens_up_to_the_labelled_ones():
    chart = alt.Chart(pd.DataFrame({"x": [0]})).mark_point().encode(x="x:Q")
    widths = [charts.for_file(chart, n).to_dict()["width"] for n in (2, 30, 64, 500)]
    assert widths[0] == charts.FILE_MIN_WIDTH < widths[1] < widths[2] == widths[3]
    assert "width" not in chart.to_dict()  # a copy: the page's chart keeps its container width
