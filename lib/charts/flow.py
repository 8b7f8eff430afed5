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

from lib.charts import palette
from lib.flow import Cones, GradientCone, IncomingEdges, Staircase
from lib.stepping import Cell
from lib.surgery import Surgery

SELECTION = "cell"  # the selection parameter both grids share: fields token and layer
ROW_PX = 14  # height of one layer row, at least
DECORATION_PX = 170  # legend and slanted token labels around a grid's plot
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")  # height stays the plot's
BACKWARD = "feeds it: backward cone (solid outline)"
FORWARD = "it can reach: forward cone (dashed outline)"
SELECTED = "selected (black outline)"
ZONES = {  # zone → colour of the grid's cells; drawn at ZONE_OPACITY, so edges stand out
    BACKWARD: palette.SKY,
    FORWARD: palette.ORANGE,
    SELECTED: palette.VERMILION,
    "neither": palette.LIGHT,
}
ZONE_OPACITY = 0.45
CONE_OUTLINES = {BACKWARD: (palette.BLUE, [1, 0]), FORWARD: (palette.VERMILION, [5, 3])}
FILE_TOKEN_PX = 22  # width of one labelled token column in an exported figure
FILE_MIN_WIDTH = 640  # an exported figure is never narrower (the grid's legend fits)
EDGE_COLOR = palette.BLACK
STAIR_COLOR = palette.VERMILION
TOP1_COLORS = {"same": palette.SKY, "changed (outlined)": palette.VERMILION}
LOWEST_SHADE = -4.0  # log₁₀ of a gradient relative to its row's largest: paler is clamped


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


def _box() -> dict[str, alt.SchemaBase]:
    """x2 and y2 of a cell rectangle; x and y come from the layered chart (`_layered`), so the
    axes are built and validated once per chart, not once per layer."""
    return {"x2": alt.X2("x1"), "y2": alt.Y2("y1")}


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


def _outlines(cell: Cell, labels: Sequence[str], n_rows: int, zones: Sequence[str]) -> alt.Chart:
    """One layer of unfilled rectangles: the selected cell (black, thick) and the edge of each
    structural cone in `zones` — the backward one solid, the forward one dashed — so that the
    zones are told apart without their colours. An empty cone (bottom or top row) has none."""
    t, layer, n_tokens = cell.token, cell.layer, len(labels)
    boxes = {
        SELECTED: (t - 0.5, t + 0.5, layer - 0.5, layer + 0.5),
        BACKWARD: (-0.5, t + 0.5, -0.5, layer - 0.5),
        FORWARD: (t - 0.5, n_tokens - 0.5, layer + 0.5, n_rows - 0.5),
    }
    rows = [
        {"zone": zone, "x0": x0, "x1": x1, "y0": y0, "y1": y1}
        for zone, (x0, x1, y0, y1) in boxes.items()
        if (zone == SELECTED or zone in zones) and x1 > x0 and y1 > y0
    ]
    styles = {SELECTED: (palette.BLACK, 2.5, [1, 0])} | {
        zone: (color, 2, dash) for zone, (color, dash) in CONE_OUTLINES.items()
    }
    domain = list(styles)
    return (
        alt.Chart(pd.DataFrame(rows))
        .mark_bar(filled=False)  # a rect mark ignores an encoded strokeDash; a bar keeps it
        .encode(
            **_box(),
            stroke=alt.Stroke(
                "zone",
                type="nominal",
                scale=alt.Scale(domain=domain, range=[styles[z][0] for z in domain]),
                legend=None,
            ),
            strokeWidth=alt.StrokeWidth(
                "zone",
                type="nominal",
                scale=alt.Scale(domain=domain, range=[styles[z][1] for z in domain]),
                legend=None,
            ),
            strokeDash=alt.StrokeDash(
                "zone",
                type="nominal",
                scale=alt.Scale(domain=domain, range=[styles[z][2] for z in domain]),
                legend=None,
            ),
        )
    )


def _layered(layers: list[alt.Chart], labels: Sequence[str], n_rows: int) -> alt.LayerChart:
    """The layers over one token axis and one layer axis: every layer draws at (x0, y0)."""
    return alt.LayerChart(
        layer=layers,
        encoding=alt.FacetedEncoding(x=_x(labels), y=_y(n_rows)),
        height=plot_height(n_rows),
        width="container",
        autosize=FIT_WIDTH,
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


def table_height(rows: int, n_rows: int) -> int:
    """Pixels for a table of `rows` rows (35 px each, and the header) beside a grid of
    `n_rows` rows: all rows when they fit, never taller than the grid chart."""
    return min(35 * (rows + 1) + 3, plot_height(n_rows) + DECORATION_PX)


def grid_chart(
    labels: Sequence[str], n_layers: int, cones: Cones, edges: IncomingEdges
) -> alt.LayerChart:
    """Every cell, tinted by the structural cones of the selected one, with the edges into it
    drawn from its parents one row below, wider and darker where the weight is larger."""
    n_rows = n_layers + 1
    cell = edges.cell
    cells = _cells(labels, n_rows)
    zone = np.full((n_rows, len(labels)), "neither", dtype=object)
    zone[cones.backward] = BACKWARD
    zone[cones.forward] = FORWARD
    zone[cell.layer, cell.token] = SELECTED
    cells["zone"] = zone.ravel()
    base = (
        alt.Chart(cells)
        .mark_rect(stroke=palette.WHITE, strokeWidth=0.5, fillOpacity=ZONE_OPACITY)
        .encode(
            **_box(),
            color=alt.Color(
                "zone",
                type="nominal",
                title=None,
                scale=alt.Scale(domain=list(ZONES), range=list(ZONES.values())),
                legend=alt.Legend(
                    orient="top",
                    direction="horizontal",
                    columns=2,
                    labelLimit=320,
                    symbolOpacity=ZONE_OPACITY,  # as the cells: filled at that opacity
                ),
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
                **_box(),
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
    layers.append(_outlines(cell, labels, n_rows, (BACKWARD, FORWARD)))
    return _layered(layers, labels, n_rows)


def cone_chart(
    labels: Sequence[str], cone: GradientCone, cones: Cones, stairs: Staircase
) -> alt.LayerChart:
    """The measured influence on the selected cell (log colour, each row against its largest
    gradient), its forward cone (orange, dashed outline), and one chain of dependent hops through
    it, a token further at each layer (the stepped line with dots)."""
    n_rows = cone.norms.shape[0]
    cells = _cells(labels, n_rows)
    cells["gradient"] = cone.norms.ravel()
    cells["relative"] = cone.row_relative.ravel()
    cells["fill"] = np.where(cones.forward.ravel(), palette.ORANGE, palette.LIGHT)
    measured = cells[cells["gradient"] > 0].assign(
        shade=lambda f: np.maximum(np.log10(f["relative"]), LOWEST_SHADE)
    )
    tips = _cell_tips(
        _tip("gradient", "quantitative", "‖∂s/∂h‖", ".3e"),
        _tip("relative", "quantitative", "÷ row's largest", ".3g"),
    )
    base = (
        alt.Chart(cells)
        .mark_rect(stroke=palette.WHITE, strokeWidth=0.5, fillOpacity=ZONE_OPACITY)
        .encode(
            **_box(),
            color=alt.Color("fill", type="nominal", scale=None),
            tooltip=tips,
        )
        .add_params(_selection())
    )
    heat = (
        alt.Chart(measured)
        .mark_rect(stroke=palette.WHITE, strokeWidth=0.5)
        .encode(
            **_box(),
            color=alt.Color(
                "shade",
                type="quantitative",
                title="log₁₀ (‖∂s/∂h‖ ÷ its row's largest)",
                scale=alt.Scale(scheme=palette.SEQUENTIAL, domain=[LOWEST_SHADE, 0]),
                legend=alt.Legend(
                    orient="top", gradientLength=220, titleLimit=320, gradientOpacity=1
                ),
            ),
            tooltip=tips,
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
        .encode()
    )
    outlines = _outlines(cone.cell, labels, n_rows, (FORWARD,))
    return _layered([base, heat, stair, outlines], labels, n_rows)


def surgery_chart(labels: Sequence[str], surgery: Surgery) -> alt.LayerChart:
    """KL divergence of the next-token distribution at every later position; a bar whose most
    likely next token changed is vermilion and outlined; a dashed rule marks the edited token."""
    same, changed = TOP1_COLORS
    frame = pd.DataFrame(
        {
            "position": surgery.positions,
            "text": np.asarray(labels, dtype=object)[surgery.positions],
            "x0": surgery.positions - 0.4,
            "x1": surgery.positions + 0.4,
            "kl": surgery.kl,
            "top1": np.where(surgery.top_changed, changed, same),
        }
    )
    bars = (
        alt.Chart(frame)
        .mark_bar(stroke=palette.BLACK)
        .encode(
            x2=alt.X2("x1"),
            y=alt.Y("kl", type="quantitative", title="KL(unedited ‖ edited), nats"),
            y2=alt.Y2Datum(0),
            color=alt.Color(
                "top1",
                type="nominal",
                title="most likely next token",
                scale=alt.Scale(domain=list(TOP1_COLORS), range=list(TOP1_COLORS.values())),
                legend=alt.Legend(orient="top"),
            ),
            strokeWidth=alt.StrokeWidth(
                "top1",
                type="nominal",
                scale=alt.Scale(domain=list(TOP1_COLORS), range=[0, 1.5]),
                legend=None,
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
        .mark_rule(color=palette.BLACK, strokeWidth=2, strokeDash=[4, 3])
        .encode()
    )
    return alt.LayerChart(
        layer=[source, bars],
        encoding=alt.FacetedEncoding(x=_x(labels)),
        height=180,
        width="container",
        autosize=FIT_WIDTH,
    )
