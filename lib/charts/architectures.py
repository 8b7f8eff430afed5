"""Charts of the /architectures page: the three dependency diagrams and two comparison curves.

The diagrams draw each rule of `lib.architectures` on the token × layer grid; a selected cell
colours its backward cone and forward reach. The feedback transformer is drawn through its memory
nodes m_i (a row above the grid) instead of its every cell-to-cell edge: the same dependencies
with far fewer lines. Data builders are pure and tested; chart builders take their output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import altair as alt
import pandas as pd

from lib.architectures import (
    ARCHITECTURES,
    Architecture,
    Cell,
    FeedbackRule,
    Memory,
    Node,
    cone_mask,
    edges,
    grid,
    longest_path,
    make_rule,
)

Role = Literal["selected", "past", "future", "none"]
ROLE_LABELS: dict[Role, str] = {
    "selected": "selected cell",
    "past": "backward cone",
    "future": "forward reach",
    "none": "not connected",
}
ROLE_COLORS: dict[Role, str] = {
    "selected": "#d62728",
    "past": "#1f77b4",
    "future": "#ff7f0e",
    "none": "#d0d0d0",
}
ARCH_COLORS = {"transformer": "#1f77b4", "rnn": "#2ca02c", "feedback": "#9467bd"}
SELECTION = "cell"  # the name of the click selection on the diagrams' cells
CURVE_HEIGHT = 300
DENSE_LINES = 300  # above this many lines, highlighted lines are drawn fainter
MIN_COLUMNS = 4  # the diagrams are at least this many tokens wide
CELL_HALF = 0.3  # half the side of a drawn cell, in grid units


def drawn_edges(rule: Architecture, tokens: int) -> tuple[tuple[Node, Node], ...]:
    """The lines to draw: every rule edge, except that the feedback transformer is drawn
    through its memories (cells → m_i → later cells) plus its in-token edges."""
    if isinstance(rule, FeedbackRule):
        in_token = tuple(
            ((t, layer - 1), (t, layer))
            for t in range(tokens)
            for layer in range(1, rule.layers + 1)
        )
        return rule.memory_edges(tokens) + in_token
    return edges(rule, tokens)


def node_roles(rule: Architecture, cell: Cell, tokens: int) -> dict[Node, Role]:
    """The role of every drawn node when `cell` is selected.

    A memory m_i takes the role of its token's top cell (i, L): the top cell feeds nothing but
    m_i, so m_i lies on a path into `cell` exactly when (i, L) does; and any cell of token i that
    `cell` reaches also reaches (i, L) up the token, so m_i is in the forward reach exactly when
    (i, L) is (or is `cell` itself)."""
    past = cone_mask(rule, cell, tokens, "past")  # (T, L+1)
    future = cone_mask(rule, cell, tokens, "future")  # (T, L+1)
    roles: dict[Node, Role] = {}
    for node in grid(rule, tokens):
        roles[node] = (
            "selected"
            if node == cell
            else "past"
            if past[node]
            else "future"
            if future[node]
            else "none"
        )
    if isinstance(rule, FeedbackRule):
        for i in range(tokens):
            top = roles[(i, rule.layers)]
            roles[Memory(i)] = "future" if top == "selected" else top
    return roles


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
    return float(node[0]), float(node[1])


@dataclass(frozen=True)
class Diagram:
    """What one diagram draws: cells (token, layer, role, meaning), memories (token, x, y, role,
    meaning, label) and lines (x, y, x2, y2, role), highlighted lines last so they are drawn on
    top. `meaning` is the role in words, for tooltips."""

    name: str
    label: str
    tokens: int
    layers: int
    cells: pd.DataFrame
    memories: pd.DataFrame
    lines: pd.DataFrame

    def count(self, role: Role) -> int:
        """How many cells (memories aside) have `role`: the sizes of the cone and the reach."""
        return int((self.cells["role"] == role).sum())


def diagram_data(rule: Architecture, cell: Cell, tokens: int) -> Diagram:
    """The nodes and lines of `rule` over `tokens` tokens, coloured for the selected `cell`."""
    roles = node_roles(rule, cell, tokens)
    cells = pd.DataFrame(
        [{"token": t, "layer": layer, "role": roles[(t, layer)]} for t, layer in grid(rule, tokens)]
    )
    memories = pd.DataFrame(
        [
            {
                "token": node.token,
                "role": role,
                "label": f"m{node.token}: a mix of layers 0–{rule.layers} of token {node.token}",
            }
            for node, role in roles.items()
            if isinstance(node, Memory)
        ],
        columns=["token", "role", "label"],
    )
    memories["x"], memories["y"] = memories["token"] + 0.5, rule.layers + 1
    for frame in (cells, memories):
        frame["meaning"] = frame["role"].map(ROLE_LABELS)
    rows = []
    for parent, child in drawn_edges(rule, tokens):
        (x, y), (x2, y2) = position(parent, rule.layers), position(child, rule.layers)
        rows.append(
            {"x": x, "y": y, "x2": x2, "y2": y2, "role": edge_role(roles[parent], roles[child])}
        )
    lines = pd.DataFrame(rows, columns=["x", "y", "x2", "y2", "role"])
    lines = lines.sort_values("role", key=lambda role: role != "none", kind="stable")
    return Diagram(rule.name, rule.label, tokens, rule.layers, cells, memories, lines)


def _role_color() -> alt.Color:
    return alt.Color(
        "role:N",
        scale=alt.Scale(domain=list(ROLE_COLORS), range=list(ROLE_COLORS.values())),
        legend=None,
    )


def diagram_chart(diagram: Diagram) -> alt.LayerChart:
    """Lines under cells (and memories); clicking a cell selects its (token, layer)."""
    has_memory = not diagram.memories.empty
    top = diagram.layers + (1 if has_memory else 0)
    columns = max(diagram.tokens, MIN_COLUMNS)  # a short run keeps cells of a sensible width
    x_scale = alt.Scale(domain=[-0.5, columns - 0.5], nice=False, zero=False)
    y_scale = alt.Scale(domain=[-0.5, top + 0.5], nice=False, zero=False)
    x_axis = alt.Axis(
        values=list(range(diagram.tokens)), format="d", grid=False, title="token", tickSize=0
    )
    y_labels = f"datum.value > {diagram.layers} ? 'memory' : datum.value"
    y_axis = alt.Axis(
        values=list(range(top + 1)), grid=False, title="layer", labelExpr=y_labels, tickSize=0
    )
    color = _role_color()
    # Hundreds of highlighted lines (a large feedback grid) would merge into one blot.
    dense = len(diagram.lines) > DENSE_LINES
    opacity, width = (0.3, 0.7) if dense else (0.8, 1.4)
    lines = (
        alt.Chart(diagram.lines)
        .mark_rule()
        .encode(
            x=alt.X("x:Q", scale=x_scale, axis=x_axis),
            y=alt.Y("y:Q", scale=y_scale, axis=y_axis),
            x2="x2:Q",
            y2="y2:Q",
            color=color,
            opacity=alt.condition("datum.role == 'none'", alt.value(0.35), alt.value(opacity)),
            strokeWidth=alt.condition("datum.role == 'none'", alt.value(0.7), alt.value(width)),
        )
    )
    selection = alt.selection_point(name=SELECTION, fields=["token", "layer"], on="click")
    cells = (
        alt.Chart(diagram.cells)
        .transform_calculate(
            x0=f"datum.token - {CELL_HALF}",
            x1=f"datum.token + {CELL_HALF}",
            y0=f"datum.layer - {CELL_HALF}",
            y1=f"datum.layer + {CELL_HALF}",
        )
        .mark_rect(cursor="pointer", stroke="white", strokeWidth=1)
        .encode(
            x=alt.X("x0:Q", scale=x_scale, axis=x_axis),
            x2="x1:Q",
            y=alt.Y("y0:Q", scale=y_scale, axis=y_axis),
            y2="y1:Q",
            color=color,
            tooltip=["token:Q", "layer:Q", alt.Tooltip("meaning:N", title="here")],
        )
        .add_params(selection)
    )
    layers = [lines, cells]
    diamond = min(120, 12_000 // diagram.tokens**2)  # about half a token's width on screen
    if has_memory:
        memories = (
            alt.Chart(diagram.memories)
            .mark_point(shape="diamond", filled=True, size=diamond, opacity=1)
            .encode(
                x=alt.X("x:Q", scale=x_scale, axis=x_axis),
                y=alt.Y("y:Q", scale=y_scale, axis=y_axis),
                color=color,
                tooltip=[
                    alt.Tooltip("label:N", title="memory"),
                    alt.Tooltip("meaning:N", title="here"),
                ],
            )
        )
        layers.append(memories)
    # The same height for the three diagrams, memory row or not, so the text below lines up.
    height = min(400, max(200, 46 * (diagram.layers + 2)))
    return alt.layer(*layers).properties(height=height, width="container", title=diagram.label)


def legend_chart() -> alt.LayerChart:
    """The diagrams' colour key, drawn once for the three (same colours, not three legends)."""
    key = pd.DataFrame(
        [
            {"slot": i, "role": role, "label": ROLE_LABELS[role]}
            for i, role in enumerate(ROLE_COLORS)
        ]
    )
    x = alt.X("slot:Q", axis=None, scale=alt.Scale(domain=[-0.1, len(key)]))
    squares = alt.Chart(key).mark_square(size=140, opacity=1).encode(x=x, color=_role_color())
    labels = alt.Chart(key).mark_text(align="left", dx=10, fontSize=13).encode(x=x, text="label:N")
    return alt.layer(squares, labels).properties(height=24, width="container")


def _per_architecture(
    layers: int, tokens: int, row: Callable[[Architecture, int], dict]
) -> pd.DataFrame:
    """One row per (architecture, t = 0..tokens-1), labelled with the architecture's names."""
    rules = [make_rule(name, layers) for name in ARCHITECTURES]
    return pd.DataFrame(
        [
            {"architecture": rule.label, "name": rule.name, **row(rule, t)}
            for rule in rules
            for t in range(tokens)
        ]
    )


def state_size_data(layers: int, tokens: int, width: int) -> pd.DataFrame:
    """Bytes carried into step t = 0..tokens-1 by each architecture (float32, hidden `width`)."""
    return _per_architecture(
        layers,
        tokens,
        lambda rule, t: {
            "step": t,
            "values": rule.state_values(t, width),
            "bytes": rule.state_bytes(t, width),
        },
    )


def serial_path_data(layers: int, tokens: int) -> pd.DataFrame:
    """Longest serial path from token 0 to token d, for d = 0..tokens-1, per architecture."""
    return _per_architecture(
        layers, tokens, lambda rule, d: {"distance": d, "path": longest_path(rule, 0, d)}
    )


def _arch_color() -> alt.Color:
    labels = [make_rule(name, 1).label for name in ARCH_COLORS]
    return alt.Color(
        "architecture:N",
        scale=alt.Scale(domain=labels, range=list(ARCH_COLORS.values())),
        legend=alt.Legend(orient="bottom", title=None),
    )


def state_size_chart(data: pd.DataFrame, step: int) -> alt.LayerChart:
    """State carried into step t against t; a vertical rule marks the selected step."""
    curves = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("step:Q", title="step t (tokens already seen)", axis=alt.Axis(format="d")),
            y=alt.Y("bytes:Q", title="bytes"),
            color=_arch_color(),
            tooltip=["architecture:N", "step:Q", "values:Q", "bytes:Q"],
        )
    )
    marker = (
        alt.Chart(pd.DataFrame({"step": [step]})).mark_rule(strokeDash=[4, 4]).encode(x="step:Q")
    )
    title = alt.Title(
        "State size against tokens", subtitle="bytes carried into step t (float32); dashed: t"
    )
    return alt.layer(curves, marker).properties(height=CURVE_HEIGHT, width="container", title=title)


def serial_path_chart(data: pd.DataFrame, layers: int) -> alt.LayerChart:
    """Longest serial path against distance in tokens; a dashed rule marks the depth L."""
    curves = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("distance:Q", title="distance in tokens", axis=alt.Axis(format="d")),
            y=alt.Y("path:Q", title="computations"),
            color=_arch_color(),
            tooltip=["architecture:N", "distance:Q", "path:Q"],
        )
    )
    depth = pd.DataFrame({"path": [layers]})
    rule = alt.Chart(depth).mark_rule(strokeDash=[4, 4], color="gray").encode(y="path:Q")
    title = alt.Title(
        "Longest serial path against distance",
        subtitle=f"dependent computations in a row, token 0 → token d; dashed: depth L = {layers}",
    )
    return alt.layer(curves, rule).properties(height=CURVE_HEIGHT, width="container", title=title)
