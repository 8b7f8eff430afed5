"""The /architectures figures: what each node and line of a diagram is marked as, the cues that
tell the marks apart without colour, the sampled-token wires, the curves' axes, a click → cell,
and the figures as files."""

from __future__ import annotations

import io
import itertools
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from PIL import Image

from lib import export
from lib.architectures import (
    ARCHITECTURES,
    FeedbackRule,
    Memory,
    RNNRule,
    TransformerRule,
    ancestors,
    descendants,
    edges,
    grid,
    make_rule,
)
from lib.charts import clicked, palette
from lib.charts.architectures import (
    DASH,
    FILE_WIDTHS,
    FILL,
    HALF,
    ROLES,
    SELECTION,
    diagram_chart,
    diagram_data,
    drawn_edges,
    edge_role,
    for_file,
    legend_chart,
    node_roles,
    serial_path_chart,
    state_size_chart,
)
from lib.config import ViewConfig
from lib.pages.architectures import architectures_page
from lib.stepping import Cell
from lib.toy import verify

NAMES = sorted(ARCHITECTURES)
GRIDS = [(1, 1), (3, 2), (4, 3)]  # (tokens, layers)
MEANINGS = {role: role for role in ROLES}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("generation", [False, True])
@pytest.mark.parametrize(("tokens", "layers"), GRIDS)
def test_cells_are_marked_with_the_rules_cones(name, generation, tokens, layers) -> None:
    """The drawn graph (memories and wires included) marks exactly the cells the rule's
    `parents` put before and after the selected one; a memory m_i is in the backward cone when
    a cell that reads it is (or is the selection), in the forward reach when a cell that writes
    it is."""
    rule = make_rule(name, layers, generation)
    for cell in grid(rule, tokens):
        roles = node_roles(rule, cell, tokens)
        past, future = ancestors(rule, cell), descendants(rule, cell, tokens)
        for node, role in roles.items():
            if isinstance(node, Memory):
                readers = {
                    (t, k) for t in range(node.token + 1, tokens) for k in range(1, layers + 1)
                }
                writers = {(node.token, k) for k in range(layers + 1)}
                expected = (
                    "past"
                    if readers & (past | {cell})
                    else "future"
                    if writers & (future | {cell})
                    else "none"
                )
            else:
                expected = (
                    "selected"
                    if node == cell
                    else "past"
                    if node in past
                    else "future"
                    if node in future
                    else "none"
                )
            assert role == expected, (name, cell, node)


@pytest.mark.parametrize("generation", [False, True])
def test_the_feedback_drawing_has_the_rules_dependencies(generation: bool) -> None:
    """Through memories instead of cell-to-cell lines, the same ancestors for every cell."""
    rule, tokens = FeedbackRule(2, generation), 3
    graph = drawn_edges(rule, tokens)
    assert len(graph) < len(edges(rule, tokens)) + 3 * 3  # fewer lines than the rule's pairs
    for cell in grid(rule, tokens):
        reached, todo = set(), [cell]
        while todo:
            node = todo.pop()
            for parent, child in graph:
                if child == node and parent not in reached:
                    reached.add(parent)
                    todo.append(parent)
        assert {node for node in reached if not isinstance(node, Memory)} == ancestors(rule, cell)


def test_lines_are_marked_by_their_ends() -> None:
    assert edge_role("past", "selected") == edge_role("past", "past") == "past"
    assert edge_role("selected", "future") == edge_role("future", "future") == "future"
    assert edge_role("past", "future") == edge_role("none", "past") == "none"


@pytest.mark.parametrize("name", NAMES)
def test_diagram_data(name: str) -> None:
    rule, tokens, cell = make_rule(name, 4), 6, Cell(5, 1)
    diagram = diagram_data(rule, cell, tokens, MEANINGS)
    assert len(diagram.cells) == tokens * (rule.layers + 1)
    selected = diagram.cells[diagram.cells["role"] == "selected"]
    assert list(zip(selected["token"], selected["layer"], strict=True)) == [cell]
    assert diagram.count("past") == len(ancestors(rule, cell))
    assert diagram.count("future") == len(descendants(rule, cell, tokens))
    assert len(diagram.memories) == (tokens if isinstance(rule, FeedbackRule) else 0)
    assert diagram.wires.empty and diagram.arrows.empty  # over a text: no sampled token
    # Highlighted lines come last, so they are drawn over the grey ones.
    highlighted = (diagram.lines["role"] != "none").to_numpy()
    assert highlighted.any() and not np.any(highlighted[:-1] & ~highlighted[1:])


@pytest.mark.parametrize("name", NAMES)
def test_sampled_token_wires_run_down_the_gaps(name: str) -> None:
    """One wire per sampled token, from the top of token t−1 to the embedding of token t; its
    vertical run lies in the gap between the two columns, so it crosses no cell."""
    tokens, layers = 5, 3
    diagram = diagram_data(make_rule(name, layers, True), Cell(2, 1), tokens, MEANINGS)
    assert sorted(diagram.wires["wire"].unique()) == [1, 2, 3, 4]
    assert len(diagram.arrows) == tokens - 1
    for t, points in diagram.wires.groupby("wire"):
        xy = list(zip(points.sort_values("order")["x"], points["y"], strict=True))
        assert xy[0] == (t - 1, layers + HALF["none"]) and xy[-1] == (t - HALF["none"], 0)
        for (x0, y0), (x1, y1) in itertools.pairwise(xy):
            if y0 != y1 and y0 > layers and y1 < layers:  # the long way down
                assert x0 == x1 == t - 0.5
    # The wires of the selected cell's backward cone are marked: (1, 3) → (2, 0) feeds (2, 1).
    roles = diagram.wires.groupby("wire")["role"].first()
    assert roles[2] == "past" and roles[3] == "future"


def test_roles_differ_by_more_than_colour() -> None:
    """Every pair of marks differs in a cue other than hue: size, outline dash, or lightness
    (a filled mark against a hollow one, or fills of contrast ≥ 3)."""
    for a, b in itertools.combinations(ROLES, 2):
        cues = (
            HALF[a] != HALF[b],
            DASH[a] != DASH[b],
            palette.contrast(FILL[a], FILL[b]) >= 3,
        )
        assert any(cues), (a, b)
    assert FILL["selected"] != palette.VERMILION  # not the red next to an orange reach


@pytest.mark.parametrize("name", NAMES)
def test_charts_build_with_a_named_click_selection(name: str) -> None:
    rule = make_rule(name, 2, True)
    spec = diagram_chart(diagram_data(rule, Cell(1, 1), 3, MEANINGS)).to_dict()
    params = spec["params"]  # Altair lifts a layer's selection to the top level
    assert [param["name"] for param in params] == [SELECTION]
    assert params[0]["select"]["fields"] == ["token", "layer"]
    marks = [layer["mark"]["type"] for layer in spec["layer"]]
    assert marks[:4] == ["rule", "line", "point", "rect"]  # lines, wires, arrows, cells
    assert len(marks) == (5 if name == "feedback" else 4)  # (memories)
    assert spec["width"] == "container"  # a phone's column, not a fixed width


def test_legend_lists_what_the_diagrams_draw() -> None:
    labels = {role: f"the {role}" for role in ROLES}

    def listed(chart) -> list[str]:
        spec = chart.to_dict()
        return [row["label"] for row in spec["datasets"][spec["layer"][2]["data"]["name"]]]

    assert listed(legend_chart(labels)) == [f"the {role}" for role in ROLES]
    assert listed(legend_chart(labels | {"sampled": "wire"}))[-1] == "wire"


@pytest.fixture(scope="module")
def curves():
    page = architectures_page(ViewConfig(tokens=6, layers=4), verify, lambda: None)
    return (
        state_size_chart(page.sizes, 3, page.curve_labels, *page.size_title),
        serial_path_chart(page.paths, page.curve_labels, *page.path_title),
        page,
    )


def test_curves_start_at_zero_with_room_to_read(curves) -> None:
    """Zero at the bottom of the plot and labelled on its line (Streamlit's theme flushes end
    labels inwards), and a plot of at least 200 px, titles and legend around it."""
    for chart in curves[:2]:
        spec = chart.to_dict()
        y = spec["layer"][0]["encoding"]["y"]
        assert y["scale"]["domain"][0] == 0 and y["axis"]["labelFlush"] is False
        assert spec["height"] >= 200 and spec["autosize"]["type"] == "fit-x"


def test_serial_paths_over_a_text_and_while_generating(curves) -> None:
    paths = curves[2].paths
    generating = paths[paths["mode"] == curves[2].curve_labels["generating"]]
    assert generating["name"].unique().tolist() == ["all"]  # the three coincide
    assert generating["path"].tolist() == [(d + 1) * 4 for d in range(6)]
    reading = paths[paths["mode"] == curves[2].curve_labels["reading"]]
    by_name = {name: rows["path"].tolist() for name, rows in reading.groupby("name")}
    assert by_name["transformer"] == [4] * 6 and by_name["rnn"] == [4 + d for d in range(6)]


def test_state_sizes_follow_the_rules(curves) -> None:
    sizes = curves[2].sizes
    for name, rows in sizes.groupby("name"):
        rule = make_rule(name, 4)
        assert rows["bytes"].tolist() == [rule.state_bytes(t, 64) for t in range(6)]


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"selection": {SELECTION: [{"token": 2, "layer": 3}]}}, (2, 3)),
        ({"selection": {SELECTION: [{"token": 2.0, "layer": 0.0}]}}, (2, 0)),  # JSON numbers
        ({"selection": {SELECTION: [{"token": 1, "layer": 1}, {"token": 4, "layer": 2}]}}, (4, 2)),
        ({"selection": {SELECTION: []}}, None),  # a click on empty space clears the selection
        ({"selection": {SELECTION: [{"x": 0.5}]}}, None),  # a line, a wire or a memory
        ({"selection": {SELECTION: [{"token": 6, "layer": 1}]}}, None),  # off the 6-token grid
        ({"selection": {SELECTION: [{"token": 1, "layer": 5}]}}, None),  # above layer 4
    ],
)
def test_clicked_cell(state: dict, expected) -> None:
    assert clicked(state, SELECTION, ("token", "layer"), (6, 5)) == expected


def mark_paths(svg: str, mark: str) -> list[ElementTree.Element]:
    """The drawn shapes of one mark type (`rect`, `symbol`, ...) in a Vega SVG."""
    groups = [
        node
        for node in ElementTree.fromstring(svg).iter()
        if {f"mark-{mark}", "role-mark"} <= set(node.get("class", "").split())
    ]
    return [path for group in groups for path in group.iter() if path.tag.endswith("path")]


def test_a_diagram_exports_as_png_and_svg() -> None:
    """The feedback diagram while generating (lines, wires, cells, memories) at its file width:
    a PNG at twice that width, an SVG with one rect per cell and a symbol per memory and arrow."""
    tokens, layers = 3, 2
    rule = make_rule("feedback", layers, True)
    chart = for_file(diagram_chart(diagram_data(rule, Cell(2, 1), tokens, MEANINGS)), "diagram")
    assert chart.to_dict()["width"] == FILE_WIDTHS["diagram"]
    image = Image.open(io.BytesIO(export.chart_png(chart)))
    image.load()
    assert image.format == "PNG" and image.width >= 2 * FILE_WIDTHS["diagram"]
    svg = export.chart_svg(chart)
    assert len(mark_paths(svg, "rect")) == tokens * (layers + 1)
    assert len(mark_paths(svg, "symbol")) == tokens + (tokens - 1)


def test_a_curve_exports_wide_enough_for_its_legend(curves) -> None:
    root = ElementTree.fromstring(export.chart_svg(for_file(curves[0], "curve")))
    assert float(root.get("width")) >= FILE_WIDTHS["curve"]
    labels = {node.text for node in root.iter() if node.tag.endswith("text")}
    assert {"Transformer", "RNN (stacked)", "Feedback transformer"} <= labels


def test_rules_drawn_without_memories_draw_every_edge() -> None:
    assert drawn_edges(TransformerRule(2), 3) == edges(TransformerRule(2), 3)
    assert drawn_edges(RNNRule(2, True), 3) == edges(RNNRule(2, True), 3)
