"""Altair charts of the /plan page: one distribution as bars, the entropy of every position as a
strip, the logit lens as a token × layer heatmap with the top guess written in each cell, and
the rank of each emitted token down the layers of the position that emitted it.

Positions are ordinal bands; the x-axis shows `position text` for each token, so repeated
tokens stay apart. The two clickable charts name their selections (`LENS_SELECTION`,
`POSITION_SELECTION`), read by `lib.charts.clicked`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd

from lib.lens import Sighting

LENS_SELECTION = "lens_cell"  # fields: position, layer
POSITION_SELECTION = "position"  # fields: position
CAME_NEXT = "came next"
OTHER = "other candidates"
BAR_COLORS = {CAME_NEXT: "#d95f02", OTHER: "#7570b3"}
PART_COLORS = {"prompt": "#9ecae1", "generated": "#3182bd"}
ROW_PX = 19  # height of one lens row: room for one line of 9-pixel text
# Streamlit fits the whole chart, axes and legend included, into `height`: room for those.
LEGEND_PX = 45
TOKEN_AXIS_PX = 120  # x-axis of upright token labels, and its title
# Streamlit stretches every chart to its column; a PNG or SVG export (lib.export) has none, and
# Vega-Lite would give each token a 20-pixel step: the position charts carry this width instead.
EXPORT_WIDTH = 720
SELECTED_STROKE = "#d7301f"
WORDS_UP_TO = 48  # tokens: beyond this a lens cell is too narrow to hold a word
RANK_COLORS = ["#d95f02", "#08519c", "#4292c6", "#9ecae1", "#deebf7"]  # top-k, then farther


def position_labels(labels: Sequence[str]) -> list[str]:
    """`position text` for every token: the x-axis labels of the position charts."""
    return [f"{position} {label}" for position, label in enumerate(labels)]


def _position_axis(labels: Sequence[str], title: str | None = "position · token") -> alt.X:
    return alt.X(
        "position:O",
        title=title,
        axis=alt.Axis(
            labelExpr=f"{json.dumps(position_labels(labels))}[datum.value]",
            labelAngle=-90,
            labelLimit=TOKEN_AXIS_PX - 30,
        ),
    )


def top_k_bars(labels: Sequence[str], probs: np.ndarray, came_next: int | None) -> alt.LayerChart:
    """The k likeliest tokens as bars, likeliest on top; `came_next` indexes the one the text
    kept (None when it lies outside the k)."""
    frame = pd.DataFrame(
        {
            "token": [f"{rank + 1}. {label}" for rank, label in enumerate(labels)],
            "probability": probs.astype(float),
            "kind": [CAME_NEXT if rank == came_next else OTHER for rank in range(len(labels))],
        }
    )
    frame["shown"] = frame["probability"].map(lambda p: f"{p:.1%}")
    y = alt.Y("token:N", sort=None, title=None, axis=alt.Axis(labelLimit=160))
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            y=y,
            x=alt.X(
                "probability:Q",
                title="probability",
                scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%"),
            ),
            color=alt.Color(
                "kind:N",
                title=None,
                scale=alt.Scale(domain=list(BAR_COLORS), range=list(BAR_COLORS.values())),
                legend=alt.Legend(orient="bottom"),
            ),
            tooltip=["token:N", alt.Tooltip("probability:Q", format=".4f"), "kind:N"],
        )
    )
    values = bars.mark_text(align="left", dx=3, fontSize=11).encode(
        text="shown:N", color=alt.value("#333")
    )
    return (bars + values).properties(height=24 * len(labels) + 2 * LEGEND_PX)


def entropy_strip(
    labels: Sequence[str], entropy: np.ndarray, n_prompt: int, selected: int
) -> alt.Chart:
    """Entropy of the next-token distribution after every position: tall = hesitant.

    Clicking a bar selects that position."""
    frame = pd.DataFrame(
        {
            "position": np.arange(len(labels)),
            "token": list(labels),
            "entropy": entropy.astype(float),
            "part": ["prompt" if i < n_prompt else "generated" for i in range(len(labels))],
        }
    )
    pick = alt.selection_point(name=POSITION_SELECTION, fields=["position"], on="click")
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=_position_axis(labels),
            y=alt.Y("entropy:Q", title="entropy (nats)"),
            color=alt.Color(
                "part:N",
                title=None,
                scale=alt.Scale(domain=list(PART_COLORS), range=list(PART_COLORS.values())),
                legend=alt.Legend(orient="top"),
            ),
            stroke=alt.condition(
                f"datum.position == {selected}", alt.value(SELECTED_STROKE), alt.value(None)
            ),
            strokeWidth=alt.value(2.5),
            tooltip=["position:O", "token:N", alt.Tooltip("entropy:Q", format=".3f"), "part:N"],
        )
        .add_params(pick)
    )
    return bars.properties(width=EXPORT_WIDTH, height=170 + LEGEND_PX + TOKEN_AXIS_PX)


def lens_frame(
    labels: Sequence[str], top1_labels: np.ndarray, top1_probs: np.ndarray, entropy: np.ndarray
) -> pd.DataFrame:
    """One row per (layer, position) cell, from (L+1, T) arrays of the lens."""
    layers, positions = np.meshgrid(
        np.arange(top1_probs.shape[0]), np.arange(top1_probs.shape[1]), indexing="ij"
    )  # (L+1, T) each
    return pd.DataFrame(
        {
            "position": positions.ravel(),
            "layer": layers.ravel(),
            "input": np.asarray(labels, dtype=object)[positions.ravel()],
            "top": top1_labels.ravel(),
            "probability": top1_probs.ravel().astype(float),
            "entropy": entropy.ravel().astype(float),
        }
    )


def lens_heatmap(
    frame: pd.DataFrame, labels: Sequence[str], selected: tuple[int, int]
) -> alt.LayerChart:
    """Every cell coloured by the probability of the lens's top guess, the guess written in it
    (while cells are wide enough); the selected cell outlined. Clicking a cell selects it."""
    n_rows = int(frame["layer"].max()) + 1
    x = _position_axis(labels)
    y = alt.Y(
        "layer:O",
        sort="descending",
        title=f"layer (0 = embedding, {n_rows - 1} = output)",
        axis=alt.Axis(values=list(range(0, n_rows, 2 if n_rows > 16 else 1))),
    )
    pick = alt.selection_point(name=LENS_SELECTION, fields=["position", "layer"], on="click")
    cells = (
        alt.Chart(frame)
        .mark_rect(stroke="white", strokeWidth=0.4)
        .encode(
            x=x,
            y=y,
            color=alt.Color(
                "probability:Q",
                title="top-1 probability",
                scale=alt.Scale(domain=[0, 1], scheme="blues"),
                legend=alt.Legend(orient="top", gradientLength=220),
            ),
            tooltip=[
                alt.Tooltip("position:O"),
                alt.Tooltip("input:N", title="token at this position"),
                alt.Tooltip("layer:O"),
                alt.Tooltip("top:N", title="lens top-1 (next token)"),
                alt.Tooltip("probability:Q", format=".3f"),
                alt.Tooltip("entropy:Q", title="entropy (nats)", format=".2f"),
            ],
        )
        .add_params(pick)
    )
    words = (
        alt.Chart(frame)
        .mark_text(fontSize=9, limit=alt.expr(f"width / {len(labels)} - 3"))
        .encode(
            x=x,
            y=y,
            text="top:N",
            color=alt.condition("datum.probability > 0.55", alt.value("white"), alt.value("#222")),
        )
    )
    position, layer = selected
    outline = (
        alt.Chart(pd.DataFrame({"position": [position], "layer": [layer]}))
        .mark_rect(filled=False, stroke=SELECTED_STROKE, strokeWidth=3)
        .encode(x=x, y=y)
    )
    layers = [cells, words, outline] if len(labels) <= WORDS_UP_TO else [cells, outline]
    return alt.layer(*layers).properties(
        width=EXPORT_WIDTH, height=ROW_PX * n_rows + LEGEND_PX + TOKEN_AXIS_PX
    )


def rank_buckets(k: int) -> tuple[tuple[int, str], ...]:
    """(highest rank, label) of each colour band: the top-k, then decades above it."""
    bands = [(k, f"top {k}")]
    for edge in (100, 1_000, 10_000):
        if edge > bands[-1][0]:
            bands.append((edge, f"{bands[-1][0] + 1:,}–{edge:,}"))
    return (*bands, (np.iinfo(np.int64).max, f"over {bands[-1][0]:,}"))


def first_seen_chart(
    sightings: Sequence[Sighting], labels: Sequence[str], k: int
) -> alt.LayerChart:
    """Rank of each emitted token in the lens of the position that emitted it, at every layer:
    orange inside the top-k, blues fading with the rank outside; a triangle at the layer from
    which it stays in the top-k up to the output ("settled")."""
    columns = [f"{s.position}→{labels[s.position + 1]}" for s in sightings]
    ranks = np.stack([s.ranks for s in sightings]) + 1  # (emitted, L+1); 1 = the top guess
    buckets = rank_buckets(k)
    band = np.searchsorted([high for high, _ in buckets], ranks)  # (emitted, L+1)
    n_rows = ranks.shape[1]
    column, layer = np.meshgrid(np.arange(len(columns)), np.arange(n_rows), indexing="ij")
    frame = pd.DataFrame(
        {
            "column": column.ravel(),
            "emitted": np.asarray(columns, dtype=object)[column.ravel()],
            "layer": layer.ravel(),
            "rank": ranks.ravel(),
            "band": np.asarray([label for _, label in buckets], dtype=object)[band.ravel()],
        }
    )
    x = alt.X(
        "column:O",
        title="emitted token (position → token)",
        axis=alt.Axis(
            labelExpr=f"{json.dumps(columns)}[datum.value]",
            labelAngle=-90,
            labelLimit=TOKEN_AXIS_PX - 30,
        ),
    )
    y = alt.Y("layer:O", sort="descending", title="layer of the emitting position")
    cells = (
        alt.Chart(frame)
        .mark_rect(stroke="white", strokeWidth=0.4)
        .encode(
            x=x,
            y=y,
            color=alt.Color(
                "band:N",
                title="rank in the lens",
                scale=alt.Scale(
                    domain=[label for _, label in buckets], range=RANK_COLORS[: len(buckets)]
                ),
                legend=alt.Legend(orient="top"),
            ),
            tooltip=["emitted:N", "layer:O", "rank:Q"],
        )
    )
    settled = [(i, s.settled) for i, s in enumerate(sightings) if s.settled is not None]
    marks = pd.DataFrame(settled, columns=["column", "layer"])
    marks["what"] = f"settled: in the top {k} from here up"
    settle = (
        alt.Chart(marks)
        .mark_point(shape="triangle-up", filled=True, size=60, color="black")
        .encode(
            x=x,
            y=y,
            shape=alt.Shape(
                "what:N",
                title=None,
                scale=alt.Scale(range=["triangle-up"]),
                legend=alt.Legend(orient="top", labelLimit=300),
            ),
            tooltip=["layer:O", "what:N"],
        )
    )
    return (cells + settle).properties(
        width=EXPORT_WIDTH, height=14 * n_rows + LEGEND_PX + TOKEN_AXIS_PX
    )
