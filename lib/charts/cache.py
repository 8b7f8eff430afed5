"""Charts of /cache: the cost of the two runs, the token × layer grid, and the cached rows."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd

from lib.cache_compare import STATE_LABELS, CacheView, CellState
from lib.charts import palette

RUN_COLORS = {"cache on": palette.BLUE, "cache off": palette.VERMILION}
RUN_DASHES = {"cache on": [1, 0], "cache off": [6, 3]}  # the second cue: solid against dashed
STATE_COLORS = {
    CellState.NOT_YET: palette.LIGHT,
    CellState.COMPUTED: palette.ORANGE,
    CellState.CACHED: palette.SKY,
    CellState.RECOMPUTED: palette.PURPLE,
}
RECOMPUTED_DASH = [2, 2]  # the grid's second cue: recomputed cells carry a dashed outline
GRID_SELECTION = "cell"
PARTS_HEIGHT = (96, 560)  # the cached-rows heatmaps' plot: 16 px a row within these bounds
# Streamlit fits a stretched chart, title, axes and legend included, into its height: room for
# those around the plot.
DECORATION_PX = {"heatmap": 120, "line": 110}
LINE_PLOT_PX = 220


def _run_encoding() -> dict[str, alt.SchemaBase]:
    """Colour and dash by run, one legend for both."""
    legend = alt.Legend(orient="top", symbolStrokeWidth=2, symbolSize=200)
    return {
        "color": alt.Color(
            "run:N",
            title=None,
            scale=alt.Scale(domain=list(RUN_COLORS), range=list(RUN_COLORS.values())),
            legend=legend,
        ),
        "strokeDash": alt.StrokeDash(
            "run:N",
            title=None,
            scale=alt.Scale(domain=list(RUN_DASHES), range=list(RUN_DASHES.values())),
            legend=legend,
        ),
    }


def _per_step(on: np.ndarray, off: np.ndarray, column: str) -> pd.DataFrame:
    return pd.concat(
        [
            pd.DataFrame({"step": np.arange(len(on)), column: on, "run": "cache on"}),
            pd.DataFrame({"step": np.arange(len(off)), column: off, "run": "cache off"}),
        ]
    )


def step_times(context: np.ndarray, ms_on: np.ndarray, ms_off: np.ndarray) -> alt.Chart:
    """Wall time of each timed step against the context it attends over, both modes."""
    data = pd.concat(
        [
            pd.DataFrame({"context": context, "ms": ms_on, "run": "cache on"}),
            pd.DataFrame({"context": context, "ms": ms_off, "run": "cache off"}),
        ]
    )
    return (
        alt.Chart(data, title="Time per step against context length")
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "context:Q",
                title="tokens of context (prompt + tokens so far)",
                scale=alt.Scale(zero=False),
                axis=alt.Axis(tickMinStep=1),
            ),
            y=alt.Y("ms:Q", title="milliseconds", scale=alt.Scale(zero=True, nice=True)),
            **_run_encoding(),
            tooltip=["run", "context", alt.Tooltip("ms:Q", format=".1f")],
        )
        .properties(height=LINE_PLOT_PX + DECORATION_PX["line"])
    )


def step_cells(cells_on: np.ndarray, cells_off: np.ndarray) -> alt.Chart:
    """(token, layer) cells each step computed, as counted by hooks on the decoder layers."""
    data = _per_step(cells_on, cells_off, "cells")
    return (
        alt.Chart(data, title="(token, layer) cells computed per step")
        .mark_line(point=True)
        .encode(
            x=alt.X("step:Q", title="decoding step", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("cells:Q", title="cells computed", scale=alt.Scale(zero=True, nice=True)),
            **_run_encoding(),
            tooltip=["run", "step", "cells"],
        )
        .properties(height=LINE_PLOT_PX + DECORATION_PX["line"])
    )


def cache_size(tokens: np.ndarray, measured: np.ndarray, formula: np.ndarray) -> alt.LayerChart:
    """Bytes held by the cache tensors after each step, on the line the formula draws."""
    kib = 1024
    line = pd.DataFrame({"tokens": tokens, "KiB": formula / kib, "source": "formula"})
    points = pd.DataFrame({"tokens": tokens, "KiB": measured / kib, "source": "measured"})
    color = alt.Color(
        "source:N",
        title=None,
        scale=alt.Scale(domain=["formula", "measured"], range=[palette.GREY, palette.BLUE]),
        legend=alt.Legend(orient="top"),
    )
    x = alt.X("tokens:Q", title="tokens in the cache", scale=alt.Scale(zero=False))
    y = alt.Y("KiB:Q", title="KiB")
    tooltip = ["source", "tokens", alt.Tooltip("KiB:Q", format=",.1f")]
    return alt.layer(
        alt.Chart(line).mark_line(strokeDash=[6, 3]).encode(x=x, y=y, color=color),
        alt.Chart(points)
        .mark_point(filled=True, size=45)
        .encode(x=x, y=y, color=color, tooltip=tooltip),
    ).properties(title="Cache size against tokens", height=LINE_PLOT_PX + DECORATION_PX["line"])


def cell_grid(
    states: np.ndarray, labels: Sequence[str], chosen_layer: int, title: str
) -> alt.LayerChart:
    """The token × layer grid of one step, coloured by CellState (recomputed cells also carry a
    dashed outline); the chosen layer is framed. A click selects a layer.

    `states` is (L, T); layer 0 is drawn at the bottom, as the stack grows upward.
    """
    layers, positions = states.shape
    layer_index, position_index = np.meshgrid(
        np.arange(layers), np.arange(positions), indexing="ij"
    )
    data = pd.DataFrame(
        {
            "layer": layer_index.ravel(),
            "position": position_index.ravel(),
            "token": [labels[p] for p in position_index.ravel()],
            "state": [STATE_LABELS[CellState(s)] for s in states.ravel()],
        }
    )
    columns = [f"{p} {labels[p]}" for p in range(positions)]
    data["column"] = [columns[p] for p in data["position"]]
    selection = alt.selection_point(name=GRID_SELECTION, fields=["layer", "position"])
    x = alt.X(
        "column:O",
        sort=columns,
        title="token (position)",
        axis=alt.Axis(labelAngle=-60, labelOverlap=True, labelLimit=90),
    )
    y = alt.Y("layer:O", sort="descending", title="layer")
    recomputed = STATE_LABELS[CellState.RECOMPUTED]
    cells = (
        alt.Chart(data)
        .mark_rect(stroke=palette.BLACK)
        .encode(
            x=x,
            y=y,
            color=alt.Color(
                "state:N",
                title=None,
                scale=alt.Scale(
                    domain=[STATE_LABELS[s] for s in CellState],
                    range=[STATE_COLORS[s] for s in CellState],
                ),
                legend=alt.Legend(orient="top"),
            ),
            strokeWidth=alt.condition(alt.datum.state == recomputed, alt.value(0.8), alt.value(0)),
            strokeDash=alt.value(RECOMPUTED_DASH),
            tooltip=["position", "token", "layer", "state"],
        )
        .add_params(selection)
    )
    frame = (
        alt.Chart(data[data["layer"] == chosen_layer])
        .mark_rect(filled=False, stroke=palette.BLACK, strokeWidth=2)
        .encode(x=x, y=y)
    )
    return alt.layer(cells, frame, title=title).properties(height=alt.Step(12))


def _row_heatmap(matrix: np.ndarray, rows: Sequence[str], title: str) -> alt.Chart:
    """One cached row per token: columns are the head's dimensions."""
    n_rows, dims = matrix.shape
    row_index, dim_index = np.meshgrid(np.arange(n_rows), np.arange(dims), indexing="ij")
    data = pd.DataFrame(
        {"row": [rows[r] for r in row_index.ravel()], "dim": dim_index.ravel()}
    ).assign(value=matrix.ravel())
    bound = float(np.abs(matrix).max()) or 1.0
    return (
        alt.Chart(data, title=title)
        .mark_rect()
        .encode(
            x=alt.X("dim:O", title="dimension", axis=alt.Axis(labels=False, ticks=False)),
            y=alt.Y("row:O", sort=list(rows), title=None),
            color=alt.Color(
                "value:Q",
                title=title.split()[0],
                scale=alt.Scale(scheme=palette.DIVERGING, domain=[-bound, bound]),
                legend=alt.Legend(orient="bottom", gradientLength=160),
            ),
            tooltip=["row", "dim", alt.Tooltip("value:Q", format=".3f")],
        )
    )


def cached_row_parts(
    view: CacheView, labels: Sequence[str], layer: int, kv_head: int
) -> tuple[alt.Chart, alt.Chart, alt.Chart]:
    """K rows, V rows, and the weights the new token's query heads give them: three charts of
    the same rows, drawn side by side on a wide screen and one under another on a phone."""
    rows = [f"{p} {labels[p]}" for p in range(view.query + 1)]
    head_names = [f"head {h}" for h in view.heads]
    head_index, row_index = np.meshgrid(
        np.arange(len(view.heads)), np.arange(view.query + 1), indexing="ij"
    )
    weights = pd.DataFrame(
        {
            "head": [head_names[h] for h in head_index.ravel()],
            "row": [rows[r] for r in row_index.ravel()],
            "weight": view.attention.ravel(),
        }
    )
    low, high = PARTS_HEIGHT
    height = min(high, max(low, 16 * (view.query + 1))) + DECORATION_PX["heatmap"]
    attention = (
        alt.Chart(weights, title="attention of the new token")
        .mark_rect()
        .encode(
            x=alt.X("head:N", sort=head_names, title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("row:O", sort=rows, title=None, axis=alt.Axis(labelLimit=90)),
            color=alt.Color(
                "weight:Q",
                scale=alt.Scale(scheme=palette.SEQUENTIAL, domain=[0, 1], type="sqrt"),
                legend=alt.Legend(orient="bottom", gradientLength=120),
            ),
            tooltip=["head", "row", alt.Tooltip("weight:Q", format=".3f")],
        )
        .properties(height=height)
    )
    suffix = f"(layer {layer}, KV head {kv_head})"
    return (
        _row_heatmap(view.keys, rows, f"K rows {suffix}").properties(height=height),
        _row_heatmap(view.values, rows, f"V rows {suffix}").properties(height=height),
        attention,
    )


def cached_rows(
    view: CacheView, labels: Sequence[str], layer: int, kv_head: int
) -> alt.HConcatChart:
    """The three parts in one figure, for a file: fixed widths, rows shared."""
    keys, values, attention = cached_row_parts(view, labels, layer, kv_head)
    return alt.hconcat(
        keys.properties(width=256),
        values.properties(width=256),
        attention.properties(width=60 * len(view.heads)),
    ).resolve_scale(color="independent", y="shared")
