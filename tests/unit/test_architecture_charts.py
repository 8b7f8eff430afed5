"""The /architectures data builders: roles of drawn nodes and lines, click → cell, curves, the
per-step numbers under each diagram, and the figures as exported files."""

from __future__ import annotations

import dataclasses
import io
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from PIL import Image

from lib import export
from lib.architectures import (
    ARCHITECTURES,
    Cell,
    FeedbackRule,
    Memory,
    Node,
    RNNRule,
    TransformerRule,
    ancestors,
    descendants,
    edges,
    grid,
    make_rule,
    parallel_over_time,
    step_numbers,
)
from lib.charts import clicked
from lib.charts.architectures import (
    SELECTION,
    diagram_chart,
    diagram_data,
    drawn_edges,
    edge_role,
    legend_chart,
    node_roles,
    serial_path_chart,
    serial_path_data,
    state_size_chart,
    state_size_data,
)
from lib.toy import verify
from lib.ui.architectures import (
    EXPORT_WIDTHS,
    GridView,
    export_name,
    for_export,
    numbers_markdown,
    plural,
    verification_markdown,
)

NAMES = sorted(ARCHITECTURES)
GRIDS = [(1, 1), (3, 2), (4, 3)]  # (tokens, layers)


def reach(graph: tuple[tuple[Node, Node], ...], start: Node, forward: bool) -> set[Node]:
    """Brute-force reachability over drawn edges: what `start` reaches (or is reached from)."""
    found: set[Node] = set()
    todo = [start]
    while todo:
        node = todo.pop()
        for parent, child in graph:
            source, target = (parent, child) if forward else (child, parent)
            if source == node and target not in found:
                found.add(target)
                todo.append(target)
    return found


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("tokens", "layers"), GRIDS)
def test_roles_are_reachability_on_the_drawn_graph(name: str, tokens: int, layers: int) -> None:
    """Every drawn node and line is coloured exactly when it lies on a path into the selected
    cell (backward cone) or out of it (forward reach) — memories included."""
    rule = make_rule(name, layers)
    graph = drawn_edges(rule, tokens)
    for cell in grid(rule, tokens):
        roles = node_roles(rule, cell, tokens)
        past, future = reach(graph, cell, forward=False), reach(graph, cell, forward=True)
        for node, role in roles.items():
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
        for parent, child in graph:
            on_past_path = parent in past and (child in past or child == cell)
            on_future_path = (parent in future or parent == cell) and child in future
            role = edge_role(roles[parent], roles[child])
            assert (role == "past") == on_past_path
            assert (role == "future") == on_future_path


@pytest.mark.parametrize("name", NAMES)
def test_cell_roles_are_the_rules_cones(name: str) -> None:
    rule, tokens, cell = make_rule(name, 3), 5, (2, 1)
    roles = node_roles(rule, cell, tokens)
    past = {node for node, role in roles.items() if role == "past" and not isinstance(node, Memory)}
    future = {
        node for node, role in roles.items() if role == "future" and not isinstance(node, Memory)
    }
    assert past == ancestors(rule, cell)
    assert future == descendants(rule, cell, tokens)


def test_drawn_edges() -> None:
    assert drawn_edges(TransformerRule(2), 3) == edges(TransformerRule(2), 3)
    assert drawn_edges(RNNRule(2), 3) == edges(RNNRule(2), 3)
    feedback = FeedbackRule(2)
    drawn = drawn_edges(feedback, 3)
    # 9 memory writes + 2 layers × (0+1+2) reads + 3 tokens × 2 in-token edges = 21, not the
    # 24 cell-to-cell edges of `edges` (the saving grows with T and L).
    assert len(drawn) == 9 + 6 + 6
    assert ((1, 0), (1, 1)) in drawn and ((1, 1), Memory(1)) in drawn
    # Between two cells, only in-token edges: the past arrives through the memories alone.
    cell_to_cell = [(a, b) for a, b in drawn if not isinstance(a, Memory)]
    cell_to_cell = [(a, b) for a, b in cell_to_cell if not isinstance(b, Memory)]
    assert len(cell_to_cell) == 6 and all(a[0] == b[0] for a, b in cell_to_cell)


@pytest.mark.parametrize("name", NAMES)
def test_diagram_data_shapes(name: str) -> None:
    rule, tokens, cell = make_rule(name, 4), 6, (5, 1)
    diagram = diagram_data(rule, cell, tokens)
    assert len(diagram.cells) == tokens * (rule.layers + 1)
    selected = diagram.cells[diagram.cells["role"] == "selected"]
    assert list(zip(selected["token"], selected["layer"], strict=True)) == [cell]
    assert diagram.count("past") == len(ancestors(rule, cell))
    assert diagram.count("future") == len(descendants(rule, cell, tokens))
    assert len(diagram.lines) == len(drawn_edges(rule, tokens))
    assert len(diagram.memories) == (tokens if isinstance(rule, FeedbackRule) else 0)
    # Highlighted lines come last, so they are drawn over the grey ones.
    highlighted = (diagram.lines["role"] != "none").to_numpy()
    assert highlighted.any() and not np.any(highlighted[:-1] & ~highlighted[1:])


def test_memories_sit_above_the_grid_between_writer_and_first_reader() -> None:
    diagram = diagram_data(FeedbackRule(3), (1, 2), 4)
    assert diagram.memories["y"].eq(4).all()
    assert diagram.memories["x"].tolist() == [0.5, 1.5, 2.5, 3.5]
    # (1, 2) reads m_0 (backward cone); it reaches (1, 3), hence m_1, which every later layer
    # reads, so every later memory is in its forward reach.
    assert diagram.memories["role"].tolist() == ["past", "future", "future", "future"]


@pytest.mark.parametrize("name", NAMES)
def test_charts_build_with_a_named_click_selection(name: str) -> None:
    rule = make_rule(name, 2)
    spec = diagram_chart(diagram_data(rule, (1, 1), 3)).to_dict()
    params = spec["params"]  # Altair lifts a layer's selection to the top level
    assert [param["name"] for param in params] == [SELECTION]
    assert params[0]["select"]["fields"] == ["token", "layer"]
    assert len(spec["layer"]) == (3 if name == "feedback" else 2)  # lines, cells (, memories)
    for chart in (
        legend_chart(),
        state_size_chart(state_size_data(2, 3, 8), 1),
        serial_path_chart(serial_path_data(2, 3), 2),
    ):
        assert chart.to_dict()["layer"]


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"selection": {SELECTION: [{"token": 2, "layer": 3}]}}, (2, 3)),
        ({"selection": {SELECTION: [{"token": 2.0, "layer": 0.0}]}}, (2, 0)),  # JSON numbers
        ({"selection": {SELECTION: [{"token": 1, "layer": 1}, {"token": 4, "layer": 2}]}}, (4, 2)),
        ({"selection": {SELECTION: []}}, None),  # a click on empty space clears the selection
        ({"selection": {}}, None),
        ({}, None),
        ({"selection": {SELECTION: [{"x": 0.5}]}}, None),  # a line or a memory
        ({"selection": {SELECTION: [{"token": None, "layer": 1}]}}, None),
        ({"selection": {SELECTION: [{"token": 6, "layer": 1}]}}, None),  # off the 6-token grid
        ({"selection": {SELECTION: [{"token": 1, "layer": 5}]}}, None),  # above layer 4
        ({"selection": {SELECTION: [{"token": -1, "layer": 1}]}}, None),
    ],
)
def test_clicked_cell(state: dict, expected: Cell | None) -> None:
    assert clicked(state, SELECTION, ("token", "layer"), (6, 5)) == expected


def test_state_size_data() -> None:
    layers, tokens, width = 3, 5, 16
    data = state_size_data(layers, tokens, width)
    assert len(data) == 3 * tokens
    for name, rows in data.groupby("name"):
        rule = make_rule(name, layers)
        assert rows["step"].tolist() == list(range(tokens))
        assert rows["bytes"].tolist() == [rule.state_bytes(t, width) for t in range(tokens)]
        growth = set(np.diff(rows["values"]))
        assert len(growth) == 1  # each is linear in t (the RNN with slope 0)
        assert (
            growth.pop() == {"transformer": 2 * layers * width, "rnn": 0, "feedback": width}[name]
        )


def test_serial_path_data() -> None:
    layers, tokens = 3, 8
    data = serial_path_data(layers, tokens)
    paths = {name: rows["path"].tolist() for name, rows in data.groupby("name")}
    assert max(paths["transformer"]) == layers  # bounded by the depth ...
    for name in ("rnn", "feedback"):  # ... while the other two keep growing
        assert (np.diff(paths[name]) > 0).all()
        assert paths[name][-1] > layers


def test_step_numbers_by_hand() -> None:
    # L = 2, step t = 2 of a 3-token run, width 8: 2 earlier tokens, 2 × 3 = 6 past cells.
    tr, rnn, fb = (
        step_numbers(make_rule(name, 2), 2, 3, 8) for name in ("transformer", "rnn", "feedback")
    )
    assert (tr.state_values, rnn.state_values, fb.state_values) == (64, 16, 16)
    assert (tr.state_bytes, rnn.state_bytes, fb.state_bytes) == (256, 64, 64)
    assert (tr.state_growth, rnn.state_growth, fb.state_growth) == (32, 0, 8)
    assert (tr.longest_path, rnn.longest_path, fb.longest_path) == (2, 4, 6)
    assert (tr.training_steps, rnn.training_steps, fb.training_steps) == (2, 4, 6)
    assert (tr.parallel_over_time, rnn.parallel_over_time, fb.parallel_over_time) == (
        True,
        False,
        False,
    )
    assert tr.past_cells == rnn.past_cells == fb.past_cells == 6
    # Transformer: layers 0 and 1 of both earlier tokens; RNN: (1, 1) and (1, 2); feedback: all.
    assert (tr.past_cells_read, rnn.past_cells_read, fb.past_cells_read) == (4, 2, 6)
    # The top cell (2, 2): the transformer never reaches a top layer of the past.
    assert (tr.past_cells_in_cone, rnn.past_cells_in_cone, fb.past_cells_in_cone) == (4, 6, 6)
    assert (tr.past_tops_in_cone, rnn.past_tops_in_cone, fb.past_tops_in_cone) == (0, 2, 2)


@pytest.mark.parametrize("name", NAMES)
def test_parallel_over_time(name: str) -> None:
    rule = make_rule(name, 3)
    assert parallel_over_time(rule, 5) == (name == "transformer")


def test_numbers_markdown_shows_the_numbers() -> None:
    numbers = step_numbers(TransformerRule(4), 5, 6, 64)
    text = numbers_markdown(numbers, 4)
    assert f"{numbers.state_values:,} values" in text and "+512 per token" in text
    assert "parallel over time" in text
    rnn = numbers_markdown(step_numbers(RNNRule(4), 5, 6, 64), 4)
    assert "fixed size" in rnn and "token after token" in rnn


def test_verification_markdown_reports_pass_and_failure() -> None:
    result = verify("rnn", 3, 2)
    assert "0 of 81 cell pairs differ" in verification_markdown(result)
    assert ":material/cancel:" not in verification_markdown(result)
    wrong = dataclasses.replace(
        result,
        autograd_matches_rule=False,
        mismatched_cells=(((1, 1), (0, 1)),),
        step_equals_full=False,
        max_abs_diff=0.5,
    )
    text = verification_markdown(wrong)
    assert "1 of 81 cell pairs differ" in text and "5.0e-01" in text
    assert text.count(":material/cancel:") == 2


def test_plural() -> None:
    assert plural(1, "token") == "1 token"
    assert plural(0, "token") == "0 tokens"
    assert plural(2048, "computation") == "2,048 computations"


def mark_paths(svg: str, mark: str) -> list[ElementTree.Element]:
    """The drawn shapes of one mark type (`rect`, `symbol`, ...) in a Vega SVG."""
    groups = [
        node
        for node in ElementTree.fromstring(svg).iter()
        if {f"mark-{mark}", "role-mark"} <= set(node.get("class", "").split())
    ]
    return [path for group in groups for path in group.iter() if path.tag.endswith("path")]


def test_a_diagram_exports_as_png_and_svg() -> None:
    """The feedback diagram (lines, cells and memories) at the page's export width: a PNG that
    decodes at twice that width, an SVG with one rect per cell and one diamond per memory."""
    tokens, layers = 3, 2
    rule = make_rule("feedback", layers)
    chart = for_export(diagram_chart(diagram_data(rule, (2, 1), tokens)), "diagram")
    assert chart.to_dict()["width"] == EXPORT_WIDTHS["diagram"]
    image = Image.open(io.BytesIO(export.chart_png(chart)))
    image.load()
    assert image.format == "PNG"
    assert image.width > 2 * EXPORT_WIDTHS["diagram"] and image.height > 2 * 200
    svg = export.chart_svg(chart)
    assert len(mark_paths(svg, "rect")) == tokens * (layers + 1)
    assert len(mark_paths(svg, "symbol")) == tokens


def test_a_curve_exports_wide_enough_for_its_legend() -> None:
    """Left at "container" width, a server render is 200 px wide and clips the legend."""
    chart = for_export(state_size_chart(state_size_data(2, 3, 8), 1), "curve")
    root = ElementTree.fromstring(export.chart_svg(chart))
    assert float(root.get("width")) > EXPORT_WIDTHS["curve"]
    labels = {node.text for node in root.iter() if node.tag.endswith("text")}
    assert {"Transformer", "RNN (stacked)", "Feedback transformer"} <= labels


def test_export_names_follow_what_changes_each_figure() -> None:
    view = GridView(tokens=6, layers=4, width=64, cell=(5, 1))
    assert export_name(view, "rnn") == "architectures-tokens6-layers4-token5-layer1-figrnn"
    assert (
        export_name(view, "state-size")
        == "architectures-tokens6-layers4-width64-token5-figstate-size"
    )
    assert export_name(view, "serial-path") == "architectures-tokens6-layers4-figserial-path"
    assert export_name(view) == "architectures-tokens6-layers4-width64-token5-layer1"
