"""/flow on the tiny random model, without Streamlit: lib.flow's measurements against the model
itself and the dependency rule, and the page model's numbers against independent computations."""

import contextlib
import io
import json
import xml.etree.ElementTree as ElementTree
from dataclasses import replace
from itertools import pairwise

import altair as alt
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from lib import content, export, flow, site
from lib.architectures import TransformerRule, cone_mask
from lib.charts import clicked, palette
from lib.charts import flow as charts
from lib.config import ViewConfig
from lib.flow import (
    gradient_cone,
    incoming_edges,
    staircase,
    structural_cones,
    value_norms,
)
from lib.lab import Lab
from lib.pages.flow import flow_page
from lib.stepping import Cell
from lib.trace import run_trace

IDS = [5, 17, 99, 3, 42, 7, 61, 250, 8, 33]
CELL = ("token", "layer")


@pytest.fixture(scope="module")
def traced(tiny):
    trace = run_trace(tiny, IDS)
    return trace, value_norms(tiny, trace)


@pytest.fixture(scope="module")
def lab(tiny):
    return Lab.direct(tiny)


def page_of(lab, **settings):
    """/flow for the default prompt (22 tokens on the tiny byte-level tokenizer) + 4 new."""
    return flow_page(ViewConfig(model="tiny-random", new=4, **settings), lab)


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
            right = shape.kv_head_of(head)
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
    values = torch.from_numpy(np.array(trace.values[layer, shape.kv_head_of(head)]))  # (T, hd)
    one_head = torch.zeros(len(IDS), shape.heads * shape.head_dim)
    one_head[:, head * shape.head_dim : (head + 1) * shape.head_dim] = values
    with torch.inference_mode():
        expected = o_proj(one_head).norm(dim=-1).numpy()
    np.testing.assert_allclose(norms[layer, head], expected, rtol=1e-5)


def plain_attentions(tiny, ids):
    """A plain transformers forward with attention weights, no trace: (L, H, T, T)."""
    with torch.inference_mode():
        out = tiny.model(input_ids=torch.tensor([list(ids)]), output_attentions=True)
    return torch.stack(out.attentions)[:, 0].numpy()


@pytest.mark.parametrize("token, layer", [(7, 2), (25, 3), (0, 1)])
def test_the_pages_edges_are_the_models_attention(tiny, lab, token, layer):
    page = page_of(lab, token=token, layer=layer)
    ids = lab.prompt(ViewConfig().prompt).ids
    sequence = ids + lab.generation(ids, 4, None).new_ids
    weights = plain_attentions(tiny, sequence)[layer - 1, :, token, : token + 1]  # (H, t+1)
    np.testing.assert_allclose(page.edges.edges.attention, weights.mean(axis=0), atol=1e-6)
    for head in (0, 4):
        one = page_of(lab, token=token, layer=layer, head=head)
        np.testing.assert_allclose(one.edges.edges.attention, weights[head], atol=1e-6)
        assert f"it reads KV head {tiny.shape.kv_head_of(head)}" in one.edges.caption
    peak = page_of(lab, token=token, layer=layer, agg="max", weight="value")
    np.testing.assert_allclose(peak.edges.edges.attention, weights.max(axis=0), atol=1e-6)
    table = page.edges.table
    assert sorted(table["token"]) == list(range(token + 1))
    assert list(table["attention"]) == sorted(table["attention"], reverse=True)
    assert table["% of attention"].sum() == pytest.approx(100)
    assert not table.isna().any().any()


def test_a_link_without_a_cell_opens_on_one_that_shows_something(lab):
    page = page_of(lab)
    assert page.cell == page.auto_cell == Cell(page.n_tokens - 1, page.n_layers // 2)
    assert (page.token, page.layer) == page.cell and not page.notices
    assert page.edges.table is not None and len(page.edges.table) == page.n_tokens
    assert page.cone.summary.inside > 0 and page.cone.summary.inside_nonzero > 0
    assert f"last token at layer {page.n_layers // 2}" in page.example


def test_the_embedding_row_reads_no_other_token(lab):
    page = page_of(lab, token=4, layer=0)
    assert page.edges.table is None and page.edges.edges.attention.size == 0
    assert "the word itself" in page.edges.caption
    assert page.cone.summary.outside_max == 0  # an embedding depends on its own token only


def test_the_edges_say_whether_they_read_words_or_internal_states(lab):
    assert "the words themselves" in page_of(lab, token=5, layer=1).edges.caption
    assert "internal states" in page_of(lab, token=5, layer=2).edges.caption


@pytest.mark.parametrize("cell", [Cell(0, 0), Cell(4, 2), Cell(9, 3), Cell(0, 3), Cell(9, 0)])
def test_structural_cones_follow_the_transformer_rule(cell):
    rule = TransformerRule(3)
    cones = structural_cones(cell, 10, 3)
    np.testing.assert_array_equal(cones.backward, cone_mask(rule, cell, 10, "past").T)
    np.testing.assert_array_equal(cones.forward, cone_mask(rule, cell, 10, "future").T)


def test_layer_by_layer_pass_gives_the_plain_pass_gradients_and_restores_the_model(
    tiny, monkeypatch
):
    cell = Cell(8, 3)
    checkpointed = gradient_cone(tiny, IDS, cell).norms
    assert not tiny.model.training and not tiny.model.is_activation_checkpointing
    monkeypatch.setattr(flow, "layer_by_layer", lambda model: contextlib.nullcontext())
    plain = gradient_cone(tiny, IDS, cell).norms
    np.testing.assert_allclose(checkpointed, plain, rtol=1e-6, atol=0)  # zeros stay zeros


def test_checkpointing_is_on_only_inside_the_pass_and_only_without_dropout(tiny, monkeypatch):
    with flow.layer_by_layer(tiny.model):
        assert tiny.model.training and tiny.model.is_activation_checkpointing
    assert not tiny.model.training and not tiny.model.is_activation_checkpointing
    monkeypatch.setattr(tiny.model.config, "attention_dropout", 0.1)
    with flow.layer_by_layer(tiny.model):
        assert not tiny.model.training and not tiny.model.is_activation_checkpointing


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
    relative = cone.row_relative
    assert np.allclose(relative.max(axis=1)[: cell.layer + 1], 1.0)  # each row: its own scale
    assert np.array_equal(relative > 0, cone.norms > 0)


def test_the_pages_cone_is_what_the_model_measures_and_the_rule_allows(tiny, lab):
    page = page_of(lab, token=20, layer=2)
    structure = page.cone.structure
    summary = page.cone.summary
    assert summary.inside == structure.backward.sum() == 21 * 2
    assert summary.inside_nonzero == summary.inside and summary.outside_max == 0
    norms = page.cone.gradient.norms
    outside = ~structure.backward
    outside[2, 20] = False  # the cell itself
    assert np.all(norms[outside] == 0) and norms[2, 20] == pytest.approx(1, rel=1e-5)
    assert f"is {summary.outside_max:g}." in page.cone.caption and "is 0." in page.cone.caption
    parents = norms[1, :21]  # the direct parents: row 1, tokens 0…20; token 20 is its own
    assert summary.strongest_parent == int(np.argmax(parents[:20]))
    assert summary.strongest_parent_ratio == pytest.approx(parents[:20].max() / parents[20])


def longest_hops(rule, n_tokens):
    """Brute force on the rule's graph: the most token-to-token hops on a chain of dependent
    cells ending at each cell (into) and starting at each cell (out of)."""
    rows = rule.layers + 1
    into = np.zeros((n_tokens, rows), dtype=int)
    for layer in range(1, rows):
        for token in range(n_tokens):
            into[token, layer] = max(
                into[p.token, p.layer] + (p.token != token) for p in rule.parents((token, layer))
            )
    out = np.zeros((n_tokens, rows), dtype=int)
    for layer in range(rows - 2, -1, -1):
        for token in range(n_tokens):
            out[token, layer] = max(
                out[child, layer + 1] + (child != token)
                for child in range(n_tokens)
                if (token, layer) in rule.parents((child, layer + 1))
            )
    return into, out


def test_the_staircase_counts_the_hops_the_rule_allows():
    """A state reaches every later token one row up; a chain of dependent hops climbs a row per
    hop. Checked on the graph itself, with room for every chain to the top (T > L)."""
    layers, n_tokens = 4, 12
    rule = TransformerRule(layers)
    into, out = longest_hops(rule, n_tokens)
    for token in range(n_tokens - layers):
        for layer in range(layers + 1):
            stairs = staircase(Cell(token, layer), n_tokens, layers)
            assert stairs.hops_below == into[token, layer]
            assert stairs.hops_above == out[token, layer]
            for later in range(token, n_tokens):
                if layer < layers:  # every later token, one row up: no climb for distance
                    assert (token, layer) in rule.parents((later, layer + 1))
            for a, b in pairwise(stairs.cells):
                assert (b.token - a.token, b.layer - a.layer) == (1, 1)
                assert a in rule.parents(b)  # each step of the line is a real dependency


def test_the_staircase_text_counts_hops_of_this_cell(lab):
    page = page_of(lab, token=20, layer=1)
    stairs = page.cone.staircase
    assert (stairs.hops_above, stairs.hops_below) == (2, 1)
    text = page.cone.staircase_text
    assert "room for 2 more dependent hops" in text and "at most 1 dependent hop can" in text
    assert "**every** later token" in text and "257" in text


def test_surgery_numbers_are_the_edits_own(lab):
    page = page_of(lab, src=3, from_=1, to=2, edit="zero")
    view = page.surgery
    result = view.result
    assert view.edit == {"src": 3, "from": 1, "to": 2, "edit": "zero"}
    assert view.kl_mean == pytest.approx(result.kl.mean()) and view.kl_max == result.kl.max()
    assert np.all(result.kl >= 0) and view.kl_max > 0
    assert view.metrics[2].value == f"{view.top_changed} of {page.n_tokens - 4}"
    assert len(view.table) == page.n_tokens - 4 and not view.table.isna().any().any()
    assert "Rows 0–1 of later tokens" in view.rounding_caption
    assert f"moved by at most {result.below_edit_change:.1e}" in view.rounding_caption
    assert result.below_edit_change == 0 < result.above_edit_change
    assert "Layer 0's K and V" not in view.description  # from layer 1: internal states only
    assert "Layer 0's K and V" in page_of(lab, src=3, from_=0).surgery.description


def test_a_copy_of_the_same_word_at_layer_0_moves_nothing_on_the_page(lab):
    """The prompt has `c` at positions 4 and 13: layer 0 holds the word alone."""
    page = page_of(lab)
    assert page.tokens[4] == page.tokens[13] == "c"
    view = page_of(lab, src=4, from_=0, to=0, edit="token", other=13).surgery
    assert view.kl_max < 1e-6 and view.row_change.max() < 1e-5
    assert view.first_divergence is None
    another_word = page_of(lab, src=4, from_=0, to=0, edit="token", other=5).surgery
    assert another_word.row_change[1] > 1e-2
    assert "rotated from position 13 to position 4" in view.description
    assert "They agree token for token." in view.continuation_caption


def test_the_continuation_caption_counts_each_side(lab, monkeypatch):
    real = lab.surgery

    def stopped_early(*args):
        result = real(*args)
        return replace(result, continuation_after=result.continuation_after[:2], ended_after=True)

    monkeypatch.setattr(lab, "surgery", stopped_early)
    caption = page_of(lab, src=2).surgery.continuation_caption
    assert "unedited cache has 4 greedy tokens" in caption
    assert "it stopped after 2 greedy tokens (end of sequence)" in caption
    assert "They part at regenerated token 2 (position 24)" in caption


def test_out_of_range_controls_are_clamped_with_notices(lab):
    page = page_of(lab, token=999, layer=9, head=40, src=500, from_=3, to=1, edit="token", other=77)
    assert (page.token, page.layer, page.head) == (page.n_tokens - 1, 3, 5)
    assert (page.src, page.from_layer, page.to_layer, page.other) == (24, 2, 1, 25)
    assert page.surgery.edit == {"src": 24, "from": 1, "to": 2, "edit": "token", "other": 25}
    shown = " ".join(page.notices)
    for notice in ("`token` must be 0–25", "`layer` must be 0–3", "`head` must be 0–5",
                   "`src` must be 0–24", "`from` must be 0–2", "`other` must be 0–25",
                   "editing layers 1–2"):  # fmt: skip
        assert notice in shown, notice


def test_every_template_of_the_page_is_used(lab, monkeypatch):
    """Pages that reach every branch — the embedding row, the top row, a single source, one
    head, a seeded run, each edit, swapped layers, continuations that part or are empty — leave
    no template of content/flow.toml unused."""
    for settings in (
        {},
        {"token": 3, "layer": 0},
        {"token": 0, "layer": 2},
        {"token": 9, "layer": 3, "head": 2},
        {"agg": "max", "seed": 3, "edit": "mean", "src": 23},
        {"edit": "token", "other": 5, "from_": 2, "to": 1},
    ):
        page_of(lab, **settings)
    real = lab.surgery
    for change in ({"continuation_after": (1, 2)}, {"wanted": 0}):
        monkeypatch.setattr(
            lab, "surgery", lambda *args, change=change: replace(real(*args), **change)
        )
        page_of(lab)
    unused = set(content.templates("flow")) - {k for p, k in content.FILLED if p == "flow"}
    assert not unused


def test_the_exported_data_uses_the_urls_names(lab):
    cfg = ViewConfig(model="tiny-random", new=4, src=2, from_=1, to=2, token=9, layer=2)
    page = flow_page(cfg, lab)
    text = export.view_json(site.page("flow"), cfg, page)
    assert "from_" not in text
    data = json.loads(text)["data"]
    assert data["surgery"]["edit"] == {"src": 2, "from": 1, "to": 2, "edit": "zero"}
    assert (data["token"], data["layer"]) == (9, 2)
    assert sorted(row["token"] for row in data["edges"]["table"]) == list(range(10))
    assert len(data["cone"]["gradient"]["norms"]) == 4
    assert len(data["surgery"]["table"]) == page.n_tokens - 3
    assert None not in data["surgery"]["table"][0].values()


@pytest.mark.parametrize(
    "event, expected",
    [
        ({"selection": {charts.SELECTION: [{"token": 7, "layer": 12}]}}, (7, 12)),
        ({"selection": {charts.SELECTION: [{"token": 7.0, "layer": "3"}]}}, (7, 3)),
        ({"selection": {charts.SELECTION: []}}, None),
        ({"selection": {charts.SELECTION: [{"zone": "selected"}]}}, None),
    ],
)
def test_a_click_on_either_grid_becomes_a_cell(event, expected):
    assert clicked(event, charts.SELECTION, CELL) == expected


def colours(spec) -> set[str]:
    """Every colour literal in a Vega-Lite spec."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in {"color", "stroke", "fill"} and isinstance(value, str):
                    found.add(value.upper())
                elif key == "range" and isinstance(value, list):
                    found.update(v.upper() for v in value if isinstance(v, str))
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(spec)
    return found


PALETTE = {c.upper() for c in vars(palette).values() if isinstance(c, str) and c[:1] == "#"}


def test_the_grid_draws_every_cell_every_edge_and_both_cones_apart(traced):
    trace, norms = traced
    cell = Cell(6, 2)
    cones = structural_cones(cell, len(IDS), 3)
    edges = incoming_edges(trace, norms, cell)
    grid = charts.grid_chart(trace.tokens, 3, cones, edges).to_dict()
    layers = grid["layer"]
    cells = layers[0]
    assert len(grid["datasets"][cells["data"]["name"]]) == 4 * len(IDS)
    (outlines,) = [layer for layer in layers if layer["mark"].get("filled") is False]
    boxes = {row["zone"]: row for row in grid["datasets"][outlines["data"]["name"]]}
    assert boxes[charts.SELECTED] | {"zone": 0} == {"zone": 0, "x0": 5.5, "x1": 6.5} | {
        "y0": 1.5,
        "y1": 2.5,
    }
    assert (boxes[charts.BACKWARD]["x1"], boxes[charts.BACKWARD]["y1"]) == (6.5, 1.5)
    assert (boxes[charts.FORWARD]["x0"], boxes[charts.FORWARD]["y0"]) == (5.5, 2.5)
    dash = outlines["encoding"]["strokeDash"]["scale"]
    dashes = dict(zip(dash["domain"], map(str, dash["range"]), strict=True))
    assert dashes[charts.BACKWARD] != dashes[charts.FORWARD]  # solid and dashed, not colour only
    (edge_layer,) = [layer for layer in layers if layer["mark"]["type"] == "rule"]
    edge_rows = grid["datasets"][edge_layer["data"]["name"]]
    assert [row["source"] for row in edge_rows] == list(range(7))
    assert {(row["x1"], row["y1"], row["y0"]) for row in edge_rows} == {(6.0, 2.0, 1.0)}
    (selection,) = grid["params"]  # Altair lifts a layer's selection to the top
    assert selection["name"] == charts.SELECTION and selection["views"] == [cells["name"]]
    assert selection["select"]["fields"] == list(CELL)
    assert colours(grid) <= PALETTE


def test_the_cone_and_surgery_charts_use_the_palette_with_second_cues(tiny, traced, lab):
    cell = Cell(6, 2)
    cone = gradient_cone(tiny, IDS, cell)
    chart = charts.cone_chart(
        traced[0].tokens, cone, structural_cones(cell, 10, 3), staircase(cell, 10, 3)
    )
    spec = chart.to_dict()
    assert colours(spec) <= PALETTE
    line = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "line")
    assert line["mark"]["point"]  # the staircase: a line with dots, not a colour alone
    page = page_of(lab, src=2, from_=1, to=2)
    surgery = charts.surgery_chart(page.tokens, page.surgery.result).to_dict()
    assert colours(surgery) <= PALETTE
    bars = next(layer for layer in surgery["layer"] if layer["mark"]["type"] == "bar")
    assert bars["encoding"]["strokeWidth"]["scale"]["range"] == [0, 1.5]  # changed: outlined


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
    text = export.chart_svg(charts.for_file(cone, len(IDS)))
    assert 'stroke-dasharray="5,3"' in text  # the forward cone's dashed outline is drawn
    svg = ElementTree.fromstring(text)
    assert svg.tag.endswith("svg") and float(svg.get("width")) == charts.FILE_MIN_WIDTH
    cells = [node for node in svg.iter() if node.tag.endswith("path")]
    assert len(cells) >= 4 * len(IDS)  # a rectangle per cell, and the measured heat over them
    assert "layer (0 = embedding)" in "".join(svg.itertext())


def test_exported_figures_widen_with_the_tokens_up_to_the_labelled_ones():
    chart = alt.Chart(pd.DataFrame({"x": [0]})).mark_point().encode(x="x:Q")
    widths = [charts.for_file(chart, n).to_dict()["width"] for n in (2, 30, 64, 500)]
    assert widths[0] == charts.FILE_MIN_WIDTH < widths[1] < widths[2] == widths[3]
    assert "width" not in chart.to_dict()  # a copy: the page's chart keeps its container width
