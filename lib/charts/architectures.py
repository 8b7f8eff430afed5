"""Charts of the /architectures page: the three dependency diagrams and two comparison curves.

The diagrams draw each rule of `lib.architectures` on the token × layer grid; a selected cell
marks its backward cone and forward reach. Colour never works alone: the selected cell is black
and larger, the backward cone filled blue with solid lines, the forward reach hollow with a
dashed vermilion outline and dashed lines. The feedback transformer is drawn through its memory
nodes m_i (a row above the grid) instead of its every cell-to-cell edge: the same dependencies
with far fewer lines. While generating, a wire from the top of token t−1 down the gap to the
embedding of token t draws the sampled token. Data builders are pure and tested; chart builders
take their output.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import altair as alt
import pandas as pd

from lib.architectures import (
    Architecture,
    FeedbackRule,
    Memory,
    Node,
    edges,
    grid,
)
from lib.charts import palette
from lib.stepping import Cell

Role = Literal["selected", "past", "future", "none"]
ROLES: tuple[Role, ...] = ("selected", "past", "future", "none")
FILL = {
    "selected": palette.BLACK,
    "past": palette.BLUE,
    "future": palette.WHITE,
    "none": palette.LIGHT,
}
STROKE = {
    "selected": palette.BLACK,
    "past": palette.BLUE,
    "future": palette.VERMILION,
    "none": palette.GREY,
}
STROKE_WIDTH = {"selected": 2.0, "past": 1.0, "future": 2.0, "none": 0.5}
DASH = {"selected": [1, 0], "past": [1, 0], "future": [3, 2], "none": [1, 0]}
LINE = {
    "selected": palette.BLACK,
    "past": palette.BLUE,
    "future": palette.VERMILION,
    "none": palette.GREY,
}
HALF = {"selected": 0.42, "past": 0.3, "future": 0.3, "none": 0.3}  # half a cell's side
ARCH_STYLE = {  # colour and point shape of each architecture in the curves
    "transformer": (palette.BLUE, "circle"),
    "rnn": (palette.ORANGE, "square"),
    "feedback": (palette.GREEN, "triangle-up"),
}
SELECTION = "cell"  # the name of the click selection on the diagrams' cells
CURVE_HEIGHT = 240
DENSE_LINES = 300  # above this many lines, highlighted lines are drawn fainter
MIN_COLUMNS = 4  # the diagrams are at least this many tokens wide
WIRE_TOP = 0.45  # how far above the top row the sampled-token wire runs
HIDDEN = {"export": False}
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")  # height stays the plot's
FILE_WIDTHS = {"diagram": 400, "curve": 560}  # figures as files have no column to fill


def drawn_edges(rule: Architecture, tokens: int) -> tuple[tuple[Node, Node], ...]:
    """The lines to draw: every rule edge, except that the feedback transformer is drawn
    through its memories (cells → m_i → later cells) plus its in-token edges and, while
    generating, the sampled-token edges."""
    if not isinstance(rule, FeedbackRule):
        return edges(rule, tokens)
    in_token = tuple(
        (Cell(t, layer - 1), Cell(t, layer))
        for t in range(tokens)
        for layer in range(1, rule.layers + 1)
    )
    sampled = tuple((parent, cell) for parent, cell in edges(rule, tokens) if cell.layer == 0)
    return rule.memory_edges(tokens) + in_token + sampled


def reachable(graph: Sequence[tuple[Node, Node]], start: Node, forward: bool) -> set[Node]:
    """The nodes `start` reaches along `graph` (forward) or that reach it (backward)."""
    following: dict[Node, list[Node]] = defaultdict(list)
    for parent, child in graph:
        source, target = (parent, child) if forward else (child, parent)
        following[source].append(target)
    found: set[Node] = set()
    todo = [start]
    while todo:
        for node in following[todo.pop()]:
            if node not in found:
                found.add(node)
                todo.append(node)
    return found


def node_roles(
    rule: Architecture,
    cell: Cell,
    tokens: int,
    graph: Sequence[tuple[Node, Node]] | None = None,
) -> dict[Node, Role]:
    """The role of every drawn node (cells and memories) when `cell` is selected: reachability
    on the drawn graph (`drawn_edges`, unless given), into `cell` (past) or out of it (future)."""
    graph = drawn_edges(rule, tokens) if graph is None else graph
    past, future = reachable(graph, cell, False), reachable(graph, cell, True)
    nodes = [*grid(rule, tokens), *(Memory(i) for i in range(tokens) if _has_memory(rule))]
    return {
        node: "selected"
        if node == cell
        else "past"
        if node in past
        else "future"
        if node in future
        else "none"
        for node in nodes
    }


def _has_memory(rule: Architecture) -> bool:
    return isinstance(rule, FeedbackRule)


def edge_role(parent: Role, child: Role) -> Role:
    """An edge is in the backward cone when it leads from the cone into the cone or the
    selection, in the forward reach when it leads from the selection or the reach into the reach."""
    if parent == "past" and child in ("past", "selected"):
        return "past"
    if parent in ("future", "selected") and child == "future":
        return "future"
    return "none"


def position(node: Node, layers: int) -> tuple[float, float]:
    """Where a node is drawn: cell (t, l) at (t, l); memory m_i above the grid, between token i
    (which writes it) and token i+1 (the first to read it)."""
    if isinstance(node, Memory):
        return node.token + 0.5, layers + 1
    return float(node.token), float(node.layer)


def wire(parent: Cell, child: Cell) -> list[tuple[float, float]]:
    """The sampled-token wire from the top cell `parent` to the embedding `child`: up out of the
    top cell, along to the gap between the two tokens, down the gap, into the embedding from
    the left."""
    gap = child.token - 0.5
    top = parent.layer + WIRE_TOP
    return [
        (parent.token, parent.layer + HALF["none"]),
        (parent.token, top),
        (gap, top),
        (gap, 0.0),
        (child.token - HALF["none"], 0.0),
    ]


@dataclass(frozen=True)
class Diagram:
    """What one diagram draws: cells (token, layer, role, meaning), memories (token, x, y, role,
    meaning, label), lines (x, y, x2, y2, role), highlighted lines last so they are drawn on top,
    and the sampled-token wires (wire, order, x, y, role) with their arrowheads (x, y, role).
    `meaning` is the role in words, for tooltips."""

    name: str
    label: str
    tokens: int
    layers: int
    generation: bool
    cells: pd.DataFrame
    memories: pd.DataFrame = field(metadata=HIDDEN)
    lines: pd.DataFrame = field(metadata=HIDDEN)
    wires: pd.DataFrame = field(metadata=HIDDEN)
    arrows: pd.DataFrame = field(metadata=HIDDEN)

    def count(self, role: Role) -> int:
        """How many cells (memories aside) have `role`: the sizes of the cone and the reach."""
        return int((self.cells["role"] == role).sum())


def diagram_data(
    rule: Architecture, cell: Cell, tokens: int, meanings: Mapping[Role, str]
) -> Diagram:
    """The nodes and lines of `rule` over `tokens` tokens, marked for the selected `cell`;
    `meanings` names each role for the tooltips."""
    graph = drawn_edges(rule, tokens)
    roles = node_roles(rule, cell, tokens, graph)
    cells = pd.DataFrame(
        [
            {"token": t, "layer": layer, "role": roles[Cell(t, layer)]}
            for t, layer in grid(rule, tokens)
        ]
    )
    memories = pd.DataFrame(
        [
            {"token": node.token, "role": role, "label": f"m{node.token}"}
            for node, role in roles.items()
            if isinstance(node, Memory)
        ],
        columns=["token", "role", "label"],
    )
    memories["x"], memories["y"] = memories["token"] + 0.5, rule.layers + 1
    for frame in (cells, memories):
        frame["meaning"] = frame["role"].map(meanings)
    rows, wires, arrows = [], [], []
    for parent, child in graph:
        role = edge_role(roles[parent], roles[child])
        if isinstance(child, Cell) and child.layer == 0:  # the sampled token
            for order, (x, y) in enumerate(wire(parent, child)):
                wires.append({"wire": child.token, "order": order, "x": x, "y": y, "role": role})
            arrows.append({"x": child.token - HALF["none"] - 0.04, "y": 0.0, "role": role})
            continue
        (x, y), (x2, y2) = position(parent, rule.layers), position(child, rule.layers)
        rows.append({"x": x, "y": y, "x2": x2, "y2": y2, "role": role})
    lines = pd.DataFrame(rows, columns=["x", "y", "x2", "y2", "role"])
    lines = lines.sort_values("role", key=lambda role: role != "none", kind="stable")
    return Diagram(
        rule.name,
        rule.label,
        tokens,
        rule.layers,
        rule.generation,
        cells,
        memories,
        lines,
        pd.DataFrame(wires, columns=["wire", "order", "x", "y", "role"]),
        pd.DataFrame(arrows, columns=["x", "y", "role"]),
    )


def _scale(values: Mapping[Role, object]) -> alt.Scale:
    return alt.Scale(domain=list(ROLES), range=[values[role] for role in ROLES])


def _cell_marks(frame: pd.DataFrame, x: alt.X, y: alt.Y) -> alt.Chart:
    """Cells drawn by role: fill, outline colour, width and dash, and size (selected larger)."""
    half = "datum.role == 'selected' ? {} : {}".format(HALF["selected"], HALF["none"])
    return (
        alt.Chart(frame)
        .transform_calculate(
            x0=f"datum.token - ({half})",
            x1=f"datum.token + ({half})",
            y0=f"datum.layer - ({half})",
            y1=f"datum.layer + ({half})",
        )
        .mark_rect()
        .encode(
            x=x,
            x2=alt.X2(field="x1"),
            y=y,
            y2=alt.Y2(field="y1"),
            fill=alt.Fill(field="role", type="nominal", scale=_scale(FILL), legend=None),
            stroke=alt.Stroke(field="role", type="nominal", scale=_scale(STROKE), legend=None),
            strokeWidth=alt.StrokeWidth(
                field="role", type="nominal", scale=_scale(STROKE_WIDTH), legend=None
            ),
            strokeDash=alt.StrokeDash(
                field="role", type="nominal", scale=_scale(DASH), legend=None
            ),
        )
    )


def diagram_chart(diagram: Diagram) -> alt.LayerChart:
    """Lines under cells (and memories); clicking a cell selects its (token, layer)."""
    has_memory = not diagram.memories.empty
    top = diagram.layers + (1 if has_memory else 0)
    columns = max(diagram.tokens, MIN_COLUMNS)  # a short run keeps cells of a sensible width
    x_scale = alt.Scale(domain=[-0.5, columns - 0.5], nice=False, zero=False)
    y_scale = alt.Scale(domain=[-0.55, top + 0.55], nice=False, zero=False)
    every = 2 if diagram.tokens > 8 else 1  # token labels stay legible on a phone
    x_axis = alt.Axis(
        values=list(range(0, diagram.tokens, every)),
        format="d",
        grid=False,
        title="token",
        tickSize=0,
    )
    y_labels = f"datum.value > {diagram.layers} ? 'mem' : datum.value"
    y_axis = alt.Axis(
        values=list(range(top + 1)), grid=False, title="layer", labelExpr=y_labels, tickSize=0
    )
    x = alt.X(field="x0", type="quantitative", scale=x_scale, axis=x_axis)
    y = alt.Y(field="y0", type="quantitative", scale=y_scale, axis=y_axis)
    color = alt.Color(field="role", type="nominal", scale=_scale(LINE), legend=None)
    dash = alt.StrokeDash(field="role", type="nominal", scale=_scale(DASH), legend=None)
    # Hundreds of highlighted lines (a large feedback grid) would merge into one blot.
    dense = len(diagram.lines) > DENSE_LINES
    opacity, width, faint = (0.4, 0.8, 0.12) if dense else (0.85, 1.4, 0.3)
    lines = (
        alt.Chart(diagram.lines)
        .mark_rule()
        .encode(
            x=alt.X(field="x", type="quantitative", scale=x_scale, axis=x_axis),
            y=alt.Y(field="y", type="quantitative", scale=y_scale, axis=y_axis),
            x2=alt.X2(field="x2"),
            y2=alt.Y2(field="y2"),
            color=color,
            strokeDash=dash,
            opacity=alt.Opacity(
                field="role",
                type="nominal",
                scale=_scale({role: faint if role == "none" else opacity for role in ROLES}),
                legend=None,
            ),
            strokeWidth=alt.StrokeWidth(
                field="role",
                type="nominal",
                scale=_scale({role: 0.7 if role == "none" else width for role in ROLES}),
                legend=None,
            ),
        )
    )
    selection = alt.selection_point(name=SELECTION, fields=["token", "layer"], on="click")
    cells = (
        _cell_marks(diagram.cells, x, y)
        .mark_rect(cursor="pointer")
        .encode(
            tooltip=[
                alt.Tooltip(field="token", type="quantitative"),
                alt.Tooltip(field="layer", type="quantitative"),
                alt.Tooltip(field="meaning", type="nominal", title="here"),
            ]
        )
        .add_params(selection)
    )
    layers = [lines]
    if not diagram.wires.empty:
        wires = (
            alt.Chart(diagram.wires)
            .mark_line(strokeWidth=2.2, opacity=0.9)
            .encode(
                x=alt.X(field="x", type="quantitative", scale=x_scale, axis=x_axis),
                y=alt.Y(field="y", type="quantitative", scale=y_scale, axis=y_axis),
                order=alt.Order(field="order", type="quantitative"),
                detail=alt.Detail(field="wire", type="nominal"),
                color=color,
                strokeDash=dash,
            )
        )
        arrows = (
            alt.Chart(diagram.arrows)
            .mark_point(shape="triangle-right", filled=True, size=40, opacity=1)
            .encode(
                x=alt.X(field="x", type="quantitative", scale=x_scale, axis=x_axis),
                y=alt.Y(field="y", type="quantitative", scale=y_scale, axis=y_axis),
                color=color,
            )
        )
        layers += [wires, arrows]
    layers.append(cells)
    diamond = min(120, 12_000 // diagram.tokens**2)  # about half a token's width on screen
    if has_memory:
        memories = (
            alt.Chart(diagram.memories)
            .mark_point(shape="diamond", size=diamond, opacity=1)
            .encode(
                x=alt.X(field="x", type="quantitative", scale=x_scale, axis=x_axis),
                y=alt.Y(field="y", type="quantitative", scale=y_scale, axis=y_axis),
                fill=alt.Fill(field="role", type="nominal", scale=_scale(FILL), legend=None),
                stroke=alt.Stroke(field="role", type="nominal", scale=_scale(STROKE), legend=None),
                strokeWidth=alt.value(1.5),
                tooltip=[
                    alt.Tooltip(field="label", type="nominal", title="memory"),
                    alt.Tooltip(field="meaning", type="nominal", title="here"),
                ],
            )
        )
        layers.append(memories)
    # The same height for the three diagrams, memory row or not, so the text below lines up.
    height = min(340, max(170, 38 * (diagram.layers + 2)))
    return alt.layer(*layers).properties(
        height=height, width="container", title=diagram.label, autosize=FIT_WIDTH
    )


def legend_chart(labels: Mapping[str, str], columns: int = 3) -> alt.LayerChart:
    """The diagrams' key, drawn once for the three: a cell of each role and, when `labels` has
    a "sampled" entry, the sampled-token wire; `columns` entries per row, so it fits a phone."""
    entries = [role for role in ROLES if role in labels] + (
        ["sampled"] if "sampled" in labels else []
    )
    key = pd.DataFrame(
        [
            {"slot": i % columns, "row": i // columns, "role": entry, "label": labels[entry]}
            for i, entry in enumerate(entries)
        ]
    )
    rows = int(key["row"].max()) + 1
    x = alt.X("slot:Q", axis=None, scale=alt.Scale(domain=[-0.08, columns], nice=False))
    y = alt.Y(
        "row:Q", axis=None, scale=alt.Scale(domain=[-0.5, rows - 0.5], nice=False, reverse=True)
    )
    cells = key[key["role"] != "sampled"]
    squares = (
        alt.Chart(cells)
        .mark_square(size=150, opacity=1)
        .encode(
            x=x,
            y=y,
            fill=alt.Fill("role:N", scale=_scale(FILL), legend=None),
            stroke=alt.Stroke("role:N", scale=_scale(STROKE), legend=None),
            strokeWidth=alt.StrokeWidth("role:N", scale=_scale(STROKE_WIDTH), legend=None),
            strokeDash=alt.StrokeDash("role:N", scale=_scale(DASH), legend=None),
        )
    )
    sampled = key[key["role"] == "sampled"]
    wire_key = (
        alt.Chart(sampled)
        .mark_point(shape="triangle-right", filled=True, size=90, color=palette.BLACK, opacity=1)
        .encode(x=x, y=y)
    )
    texts = (
        alt.Chart(key).mark_text(align="left", dx=11, fontSize=13).encode(x=x, y=y, text="label:N")
    )
    return alt.layer(squares, wire_key, texts).properties(height=30 * rows, width="container")


def _arch_encoding(
    labels: Mapping[str, str], extra: Mapping[str, tuple[str, str]] | None = None
) -> dict:
    """Colour and point shape by architecture: two cues for one distinction. `extra` adds
    series of its own: label → (colour, shape)."""
    styles = {labels[name]: style for name, style in ARCH_STYLE.items()} | dict(extra or {})
    legend = alt.Legend(orient="bottom", direction="vertical", title=None, symbolOpacity=1)
    domain = list(styles)
    return {
        "color": alt.Color(
            "architecture:N",
            scale=alt.Scale(domain=domain, range=[color for color, _ in styles.values()]),
            legend=legend,
        ),
        "shape": alt.Shape(
            "architecture:N",
            scale=alt.Scale(domain=domain, range=[shape for _, shape in styles.values()]),
            legend=legend,
        ),
    }


def _zero_based(field_name: str, title: str, top: float) -> alt.Y:
    """A y axis from exactly 0 to a little above the largest value, with whole-number ticks."""
    return alt.Y(
        field_name,
        title=title,
        scale=alt.Scale(domain=[0, max(top, 1) * 1.05], nice=False, zero=True),
        axis=_axis(format=",d", tickMinStep=1),
    )


def _axis(**kwargs: object) -> alt.Axis:
    """An axis whose end labels stay on their ticks (Streamlit's theme flushes them inwards,
    which draws a 0 label above the zero line)."""
    return alt.Axis(labelFlush=False, **kwargs)


def state_size_chart(
    data: pd.DataFrame, step: int, labels: Mapping[str, str], title: str, subtitle: str
) -> alt.LayerChart:
    """State carried into step t against t; a vertical rule marks the selected step."""
    curves = (
        alt.Chart(data)
        .mark_line(point=alt.OverlayMarkDef(size=45, filled=True))
        .encode(
            x=alt.X(
                "step:Q",
                title="step t (tokens already seen)",
                axis=_axis(format="d", tickMinStep=1),
            ),
            y=_zero_based("bytes:Q", "bytes", float(data["bytes"].max())),
            tooltip=["architecture:N", "step:Q", "values:Q", "bytes:Q"],
            **_arch_encoding(labels),
        )
    )
    marker = (
        alt.Chart(pd.DataFrame({"step": [step]}))
        .mark_rule(strokeDash=[4, 4], color=palette.GREY)
        .encode(x="step:Q")
    )
    return alt.layer(curves, marker).properties(
        height=CURVE_HEIGHT,
        width="container",
        title=alt.Title(title, subtitle=subtitle.split("; ")),
        autosize=FIT_WIDTH,
    )


def serial_path_chart(
    data: pd.DataFrame, labels: Mapping[str, str], title: str, subtitle: str
) -> alt.LayerChart:
    """Longest serial path against distance in tokens: thin solid lines over a fixed text, wide
    dashed ones while generating (`mode`), drawn underneath so a line that coincides with one of
    the first stays visible around it; generating series that coincide are one series (its
    `architecture` says so)."""
    top = float(data["path"].max())
    x = alt.X("distance:Q", title="distance in tokens", axis=_axis(format="d", tickMinStep=1))
    y = _zero_based("path:Q", "layer computations in a row", top)
    encoding = _arch_encoding(labels, {labels["all"]: (palette.BLACK, "diamond")})
    tooltip = ["architecture:N", "mode:N", "distance:Q", "path:Q"]
    generating = (
        alt.Chart(data[data["mode"] == labels["generating"]])
        .mark_line(strokeWidth=5, opacity=0.5, strokeDash=[7, 4])
        .encode(x=x, y=y, detail="series:N", tooltip=tooltip, **encoding)
    )
    reading = (
        alt.Chart(data[data["mode"] == labels["reading"]])
        .mark_line(strokeWidth=2, point=alt.OverlayMarkDef(size=45, filled=True))
        .encode(x=x, y=y, detail="series:N", tooltip=tooltip, **encoding)
    )
    return alt.layer(generating, reading).properties(
        height=CURVE_HEIGHT,
        width="container",
        title=alt.Title(title, subtitle=subtitle.split("; ")),
        autosize=FIT_WIDTH,
    )


def for_file(chart: alt.TopLevelMixin, kind: Literal["diagram", "curve"]) -> alt.TopLevelMixin:
    """The chart as drawn, at a fixed width for a file (a shallow copy: no data is copied)."""
    return chart.properties(width=FILE_WIDTHS[kind])
