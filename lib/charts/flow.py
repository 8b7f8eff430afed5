"""Altair charts of the /flow page: the token × layer grid with the edges into one cell, the
measured gradient cone with the staircase, and the effect of a cache edit per later position.

Both grids use quantitative axes centred on whole numbers (token i spans i ± 0.5), so cells,
edges and the staircase share one coordinate system; the axis shows each token's text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd

from lib.flow import Cell, Cones, GradientCone, IncomingEdges, Staircase
from lib.surgery import Surgery

SELECTION = "cell"  # the selection parameter both grids share: fields token and layer
ROW_PX = 14  # height of one layer row, at least
DECORATION_PX = 170  # legend and slanted token labels around a grid's plot
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")  # height stays the plot's
ZONES = {  # zone → colour of the grid's cells
    "feeds it (backward cone)": "#c6dbef",
    "it can reach (forward cone)": "#fdd0a2",
    "selected": "#cb181d",
    "neither": "#eeeeee",
}
FILE_TOKEN_PX = 22  # width of one labelled token column in an exported figure
FILE_MIN_WIDTH = 640  # an exported figure is never narrower (the grid's legend fits)
EDGE_COLOR = "#08306b"
STAIR_COLOR = "#cb181d"


def token_axis_labels(labels: Sequence[str]) -> list[str]:
    """`position text` for every token: the grid's x-axis labels."""
    return [f"{position} {label}" for position, label in enumerate(labels)]


def _x(labels: Sequence[str], field: str = "x0", title: str | None = "token") -> alt.X:
    """Token axis: every token labelled (every k-th when there are many), texts as labels."""
    every = max(1, -(-len(labels) // 64))
    return alt.X(
        field,
        type="quantitative",
        title=title,
        scale=alt.Scale(domain=[-0.5, len(labels) - 0.5], nice=False, zero=False),
        axis=alt.Axis(
            values=list(range(0, len(labels), every)),
            labelExpr=f"{json.dumps(token_axis_labels(labels))}[datum.value]",
            labelAngle=-90,
            labelLimit=110,
            grid=False,
        ),
    )


def _y(n_rows: int, field: str = "y0") -> alt.Y:
    return alt.Y(
        field,
        type="quantitative",
        title="layer (0 = embedding)",
        scale=alt.Scale(domain=[-0.5, n_rows - 0.5], nice=False, zero=False),
        axis=alt.Axis(values=list(range(0, n_rows, 2 if n_rows > 16 else 1)), grid=False),
    )


def _box(labels: Sequence[str], n_rows: int) -> dict[str, alt.SchemaBase]:
    """x, x2, y, y2 of a cell rectangle, as channel objects (Altair parses strings slowly)."""
    return {"x": _x(labels), "x2": alt.X2("x1"), "y": _y(n_rows), "y2": alt.Y2("y1")}


def _tip(field: str, kind: str, title: str | None = None, fmt: str | None = None) -> alt.Tooltip:
    extra = {key: value for key, value in (("title", title), ("format", fmt)) if value}
    return alt.Tooltip(field, type=kind, **extra)


def _cell_tips(*extra: alt.Tooltip) -> list[alt.Tooltip]:
    return [
        _tip("token", "quantitative"),
        _tip("text", "nominal"),
        _tip("layer", "quantitative"),
    ] + list(extra)


def _cells(labels: Sequence[str], n_rows: int) -> pd.DataFrame:
    """One row per cell, with its rectangle's corners."""
    tokens, layers = np.meshgrid(np.arange(len(labels)), np.arange(n_rows))  # (rows, T) each
    frame = pd.DataFrame({"token": tokens.ravel(), "layer": layers.ravel()})
    frame["text"] = np.asarray(labels, dtype=object)[frame["token"]]
    frame["x0"], frame["x1"] = frame["token"] - 0.5, frame["token"] + 0.5
    frame["y0"], frame["y1"] = frame["layer"] - 0.5, frame["layer"] + 0.5
    return frame


def _selection() -> alt.Parameter:
    return alt.selection_point(name=SELECTION, fields=["token", "layer"], on="click")


def _outline(cell: Cell, labels: Sequence[str], n_rows: int) -> alt.Chart:
    box = pd.DataFrame(
        {"x0": [cell.token - 0.5], "x1": [cell.token + 0.5]}
        | {"y0": [cell.layer - 0.5], "y1": [cell.layer + 0.5]}
    )
    return (
        alt.Chart(box)
        .mark_rect(filled=False, stroke="black", strokeWidth=2.5)
        .encode(**_box(labels, n_rows))
    )


def _layered(layers: list[alt.Chart], n_rows: int) -> alt.LayerChart:
    return alt.LayerChart(
        layer=layers, height=plot_height(n_rows), width="container", autosize=FIT_WIDTH
    )


def for_file(chart: alt.TopLevelMixin, n_tokens: int) -> alt.TopLevelMixin:
    """The chart with a width in pixels, for PNG and SVG files: on the page it fills its
    container, but a server-side render has no container and would fall back to a narrow
    default that clips the legend and squeezes the tokens. A shallow copy: nothing is drawn."""
    labelled = min(n_tokens, 64)  # the token axis labels at most 64 tokens (see `_x`)
    return chart.properties(width=max(FILE_MIN_WIDTH, 140 + FILE_TOKEN_PX * labelled))


def plot_height(n_rows: int) -> int:
    """Height of a grid's plot area: rows of ROW_PX, and never a squashed sliver."""
    return max(160, ROW_PX * n_rows)


def grid_chart(
    labels: Sequence[str], n_layers: int, cones: Cones, edges: IncomingEdges
) -> alt.LayerChart:
    """Every cell, tinted by the structural cones of the selected one, with the edges into it
    drawn from its parents one row below, wider and darker where the weight is larger."""
    n_rows = n_layers + 1
    cell = edges.cell
    cells = _cells(labels, n_rows)
    zone = np.full((n_rows, len(labels)), "neither", dtype=object)
    zone[cones.backward] = "feeds it (backward cone)"
    zone[cones.forward] = "it can reach (forward cone)"
    zone[cell.layer, cell.token] = "selected"
    cells["zone"] = zone.ravel()
    base = (
        alt.Chart(cells)
        .mark_rect(stroke="white", strokeWidth=0.5)
        .encode(
            **_box(labels, n_rows),
            color=alt.Color(
                "zone",
                type="nominal",
                title=None,
                scale=alt.Scale(domain=list(ZONES), range=list(ZONES.values())),
                legend=alt.Legend(orient="top", direction="horizontal"),
            ),
            tooltip=_cell_tips(_tip("zone", "nominal")),
        )
        .add_params(_selection())
    )
    layers = [base]
    if edges.attention.size:
        title = "attention" if edges.weight == "attn" else "attention × ‖W_O v‖"
        frame = pd.DataFrame(
            {
                "source": edges.sources,
                "text": np.asarray(labels, dtype=object)[edges.sources],
                "row": edges.source_row,
                "x0": edges.sources.astype(float),
                "y0": float(edges.source_row),
                "x1": float(cell.token),
                "y1": float(cell.layer),
                "weight": edges.drawn,
            }
        )
        largest = float(edges.drawn.max()) or 1.0
        edge_lines = (
            alt.Chart(frame)
            .mark_rule(color=EDGE_COLOR, opacity=0.75)
            .encode(
                **_box(labels, n_rows),
                strokeWidth=alt.StrokeWidth(
                    "weight",
                    type="quantitative",
                    title=title,
                    scale=alt.Scale(domain=[0, largest], range=[0.3, 7]),
                    legend=None,  # the table beside the grid gives the numbers
                ),
            )
        )
        sources = (
            alt.Chart(frame)
            .mark_circle(color=EDGE_COLOR, opacity=0.9)
            .encode(
                _x(labels),
                _y(n_rows),
                size=alt.Size(
                    "weight",
                    type="quantitative",
                    legend=None,
                    scale=alt.Scale(domain=[0, largest], range=[4, 160]),
                ),
                tooltip=[
                    _tip("source", "quantitative"),
                    _tip("text", "nominal"),
                    _tip("row", "quantitative"),
                    _tip("weight", "quantitative", title, ".4f"),
                ],
            )
        )
        layers += [edge_lines, sources]
    layers.append(_outline(cell, labels, n_rows))
    return _layered(layers, n_rows)


def cone_chart(
    labels: Sequence[str], cone: GradientCone, cones: Cones, stairs: Staircase
) -> alt.LayerChart:
    """The measured influence on the selected cell (log colour), its forward cone (orange),
    and the staircase of one token-to-token hop per layer through it (red)."""
    n_rows = cone.norms.shape[0]
    cells = _cells(labels, n_rows)
    cells["gradient"] = cone.norms.ravel()
    cells["fill"] = np.where(cones.forward.ravel(), ZONES["it can reach (forward cone)"], "#eeeeee")
    measured = cells[cells["gradient"] > 0].assign(log_gradient=lambda f: np.log10(f["gradient"]))
    gradient_tip = _tip("gradient", "quantitative", "‖∂s/∂h‖", ".3e")
    base = (
        alt.Chart(cells)
        .mark_rect(stroke="white", strokeWidth=0.5)
        .encode(
            **_box(labels, n_rows),
            color=alt.Color("fill", type="nominal", scale=None),
            tooltip=_cell_tips(gradient_tip),
        )
        .add_params(_selection())
    )
    heat = (
        alt.Chart(measured)
        .mark_rect(stroke="white", strokeWidth=0.5)
        .encode(
            **_box(labels, n_rows),
            color=alt.Color(
                "log_gradient",
                type="quantitative",
                title="log₁₀ ‖∂s/∂h‖",
                scale=alt.Scale(scheme="blues"),
                legend=alt.Legend(orient="top", gradientLength=220),
            ),
            tooltip=_cell_tips(gradient_tip),
        )
    )
    steps = pd.DataFrame(
        {"x0": [c.token for c in stairs.cells], "y0": [c.layer for c in stairs.cells]}
    )
    stair = (
        alt.Chart(steps)
        .mark_line(
            interpolate="step-after",
            color=STAIR_COLOR,
            strokeWidth=2.5,
            point=alt.OverlayMarkDef(color=STAIR_COLOR, filled=True, size=30),
        )
        .encode(_x(labels), _y(n_rows))
    )
    return _layered([base, heat, stair, _outline(cone.cell, labels, n_rows)], n_rows)


def surgery_chart(labels: Sequence[str], surgery: Surgery) -> alt.LayerChart:
    """KL divergence of the next-token distribution at every later position, coloured by
    whether the most likely next token changed; a dashed red rule marks the edited token."""
    frame = pd.DataFrame(
        {
            "position": surgery.positions,
            "text": np.asarray(labels, dtype=object)[surgery.positions],
            "x0": surgery.positions - 0.4,
            "x1": surgery.positions + 0.4,
            "kl": surgery.kl,
            "top1": np.where(surgery.top_changed, "changed", "same"),
        }
    )
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            _x(labels),
            x2=alt.X2("x1"),
            y=alt.Y("kl", type="quantitative", title="KL(before ‖ after), nats"),
            y2=alt.Y2Datum(0),
            color=alt.Color(
                "top1",
                type="nominal",
                title="most likely next token",
                scale=alt.Scale(domain=["same", "changed"], range=["#9ecae1", "#e6550d"]),
                legend=alt.Legend(orient="top"),
            ),
            tooltip=[
                _tip("position", "quantitative"),
                _tip("text", "nominal"),
                _tip("kl", "quantitative", "KL (nats)", ".4f"),
                _tip("top1", "nominal", "top-1"),
            ],
        )
    )
    source = (
        alt.Chart(pd.DataFrame({"x0": [surgery.edit.src]}))
        .mark_rule(color=STAIR_COLOR, strokeWidth=2, strokeDash=[4, 3])
        .encode(_x(labels))
    )
    return alt.layer(source, bars).properties(height=180, width="container", autosize=FIT_WIDTH)
