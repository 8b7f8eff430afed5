"""Altair charts of the /plan page: one distribution as bars, the entropy of every position as a
strip, the logit lens as a token × layer heatmap with the top guess written in each cell, and
the rank of each emitted token down the layers of the position that emitted it.

Colours come from `lib.charts.palette`; each key distinction has a second cue: the token that
came next has an outlined bar, the generated part of the strip starts at a dashed
rule, a selection is outlined, and the top-k cells of the first-seen chart carry their rank and
the markers of the layers where the token enters and settles. Text on a coloured cell is black or
white, whichever meets WCAG AA on that cell's colour (`palette.text_on`), so the colour scales
here are stepped: every cell's colour is known in Python, not only inside Vega.

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

from lib.charts import palette
from lib.lens import Sighting

LENS_SELECTION = "lens_cell"  # fields: position, layer
POSITION_SELECTION = "position"  # fields: position
CAME_NEXT = "came next"
OTHER = "other candidates"
BAR_COLORS = {CAME_NEXT: palette.ORANGE, OTHER: palette.BLUE}
BAR_OUTLINES = {CAME_NEXT: palette.BLACK, OTHER: "transparent"}  # the second cue
PART_COLORS = {"prompt": palette.SKY, "generated": palette.BLUE}
SELECTED_STROKE = palette.VERMILION
ROW_PX = 19  # height of one lens row: room for one line of 9-pixel text
# Streamlit fits the whole chart, axes and legend included, into `height`: room for those.
LEGEND_PX = 45
TOKEN_AXIS_PX = 120  # x-axis of upright token labels, and its title
# Streamlit stretches every chart to its column; a PNG or SVG export (lib.export) has none, and
# Vega-Lite would give each token a 20-pixel step: the position charts carry this width instead.
EXPORT_WIDTH = 720
BAR_PX = 28  # one bar and its gap: room for every label in Streamlit's font
BAR_ROOM = 1.3  # the top-k bars' probability axis ends here, past 100%: room for the value
WORDS_UP_TO = 48  # tokens: beyond this a cell is too narrow to hold a word or a rank


def mix(first: str, second: str, share: float) -> str:
    """The #RRGGBB colour `share` of the way from `first` to `second` (sRGB, per channel)."""
    a, b = ([int(color[i : i + 2], 16) for i in (1, 3, 5)] for color in (first, second))
    return "#" + "".join(f"{round(x + (y - x) * share):02X}" for x, y in zip(a, b, strict=True))


# The lens's top-1 probability in five steps of one hue: lightness carries the value.
PROB_EDGES = (0.2, 0.4, 0.6, 0.8)
PROB_COLORS = tuple(mix(palette.WHITE, palette.BLUE, t) for t in (0.08, 0.3, 0.52, 0.76, 1.0))
# Ranks outside the top-k fade with the rank; the top-k itself is another hue.
FARTHER_COLORS = tuple(mix(palette.WHITE, palette.BLUE, t) for t in (0.85, 0.55, 0.3, 0.1))


def probability_color(probability: np.ndarray) -> np.ndarray:
    """The heatmap's colour of each probability, as Vega's threshold scale picks it."""
    return np.asarray(PROB_COLORS, dtype=object)[
        np.searchsorted(PROB_EDGES, probability, side="right")
    ]


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
    """The k likeliest tokens as bars, likeliest on top, each with its probability written after
    it; `came_next` indexes the one the text kept (None when it lies outside the k): another
    colour, and a black outline."""
    frame = pd.DataFrame(
        {
            "token": [f"{rank + 1}. {label}" for rank, label in enumerate(labels)],
            "probability": probs.astype(float),
            "kind": [CAME_NEXT if rank == came_next else OTHER for rank in range(len(labels))],
        }
    )
    frame["shown"] = frame["probability"].map(lambda p: f"{p:.1%}")
    y = alt.Y("token:N", sort=None, title=None, axis=alt.Axis(labelLimit=160))
    kinds = list(BAR_COLORS)
    bars = (
        alt.Chart(frame)
        .mark_bar(strokeWidth=2)
        .encode(
            y=y,
            x=alt.X(
                "probability:Q",
                title="probability",
                # Room right of 100% for the value written after a long bar.
                scale=alt.Scale(domain=[0, BAR_ROOM]),
                axis=alt.Axis(format="%", values=[0, 0.25, 0.5, 0.75, 1]),
            ),
            color=alt.Color(
                "kind:N",
                title=None,
                scale=alt.Scale(domain=kinds, range=list(BAR_COLORS.values())),
                legend=alt.Legend(orient="bottom", columns=1),  # fits a narrow column
            ),
            stroke=alt.Stroke(
                "kind:N",
                title=None,
                scale=alt.Scale(domain=kinds, range=[BAR_OUTLINES[kind] for kind in kinds]),
                legend=alt.Legend(orient="bottom", columns=1),  # fits a narrow column
            ),
            tooltip=["token:N", alt.Tooltip("probability:Q", format=".4f"), "kind:N"],
        )
    )
    values = bars.mark_text(align="left", dx=4, fontSize=11).encode(
        text="shown:N", color=alt.value(palette.BLACK), stroke=alt.value(None)
    )
    return (bars + values).properties(height=BAR_PX * len(labels) + 2 * LEGEND_PX)


def entropy_strip(
    labels: Sequence[str], entropy: np.ndarray, n_prompt: int, selected: int
) -> alt.LayerChart:
    """Entropy of the next-token distribution after every position: tall = hesitant. The
    generated part starts at a dashed rule; the selected position is outlined. Clicking a bar
    selects that position."""
    frame = pd.DataFrame(
        {
            "position": np.arange(len(labels)),
            "token": list(labels),
            "entropy": entropy.astype(float),
            "part": ["prompt" if i < n_prompt else "generated" for i in range(len(labels))],
        }
    )
    x = _position_axis(labels)
    pick = alt.selection_point(name=POSITION_SELECTION, fields=["position"], on="click")
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=x,
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
            strokeWidth=alt.value(3),
            tooltip=["position:O", "token:N", alt.Tooltip("entropy:Q", format=".3f"), "part:N"],
        )
        .add_params(pick)
    )
    layers = [bars]
    if 0 < n_prompt < len(labels):
        start = pd.DataFrame({"position": [n_prompt]})
        layers.append(
            alt.Chart(start)
            .mark_rule(strokeDash=[4, 3], color=palette.BLACK)
            .encode(x=alt.X("position:O", bandPosition=0))
        )
    return alt.layer(*layers).properties(width=EXPORT_WIDTH, height=170 + LEGEND_PX + TOKEN_AXIS_PX)


def _cells(frame: pd.DataFrame, x: alt.X, y: alt.Y, color: alt.Color, tooltip: list) -> alt.Chart:
    """A grid of (x, y) cells filled by `color`, with thin white borders between them."""
    return (
        alt.Chart(frame)
        .mark_rect(stroke=palette.WHITE, strokeWidth=0.4)
        .encode(x=x, y=y, color=color, tooltip=tooltip)
    )


def lens_frame(
    labels: Sequence[str], top1_labels: np.ndarray, top1_probs: np.ndarray, entropy: np.ndarray
) -> pd.DataFrame:
    """One row per (layer, position) cell, from (L+1, T) arrays of the lens, with the colour of
    its cell and the colour of the text written on it."""
    layers, positions = np.meshgrid(
        np.arange(top1_probs.shape[0]), np.arange(top1_probs.shape[1]), indexing="ij"
    )  # (L+1, T) each
    probability = top1_probs.ravel().astype(float)
    fill = probability_color(probability)
    inks = {color: palette.text_on(color) for color in PROB_COLORS}
    return pd.DataFrame(
        {
            "position": positions.ravel(),
            "layer": layers.ravel(),
            "input": np.asarray(labels, dtype=object)[positions.ravel()],
            "top": top1_labels.ravel(),
            "probability": probability,
            "entropy": entropy.ravel().astype(float),
            "fill": fill,
            "ink": [inks[color] for color in fill],
        }
    )


def lens_heatmap(
    labels: Sequence[str],
    top1_labels: np.ndarray,
    top1_probs: np.ndarray,
    entropy: np.ndarray,
    selected: tuple[int, int],
) -> alt.LayerChart:
    """Every cell coloured by the probability of the lens's top guess, the guess written in it
    (while cells are wide enough) in black or white as its colour needs; the selected
    (position, layer) outlined. Clicking a cell selects it. Arrays are (L+1, T)."""
    frame = lens_frame(labels, top1_labels, top1_probs, entropy)
    n_rows = top1_probs.shape[0]
    x = _position_axis(labels)
    y = alt.Y(
        "layer:O",
        sort="descending",
        title=f"layer (0 = embedding, {n_rows - 1} = output)",
        axis=alt.Axis(values=list(range(0, n_rows, 2 if n_rows > 16 else 1))),
    )
    pick = alt.selection_point(name=LENS_SELECTION, fields=["position", "layer"], on="click")
    cells = _cells(
        frame,
        x,
        y,
        alt.Color(
            "probability:Q",
            title="top-1 probability",
            scale=alt.Scale(type="threshold", domain=list(PROB_EDGES), range=PROB_COLORS),
            legend=alt.Legend(orient="top"),
        ),
        [
            alt.Tooltip("position:O"),
            alt.Tooltip("input:N", title="token at this position"),
            alt.Tooltip("layer:O"),
            alt.Tooltip("top:N", title="lens top-1 (next token)"),
            alt.Tooltip("probability:Q", format=".3f"),
            alt.Tooltip("entropy:Q", title="entropy (nats)", format=".2f"),
        ],
    ).add_params(pick)
    words = (
        alt.Chart(frame)
        .mark_text(fontSize=9, limit=alt.expr(f"width / {len(labels)} - 3"))
        .encode(x=x, y=y, text="top:N", color=alt.Color("ink:N", scale=None))
    )
    position, layer = selected
    outline = (
        alt.Chart(pd.DataFrame({"position": [position], "layer": [layer]}))
        .mark_rect(filled=False, stroke=SELECTED_STROKE, strokeWidth=3)
        .encode(x=x, y=y)
    )
    layers = [cells, words, outline] if len(labels) <= WORDS_UP_TO else [cells, outline]
    return (
        alt.layer(*layers)
        .resolve_scale(color="independent")  # the words' ink is a colour of its own
        .properties(width=EXPORT_WIDTH, height=ROW_PX * n_rows + LEGEND_PX + TOKEN_AXIS_PX)
    )


def rank_buckets(k: int) -> tuple[tuple[int, str], ...]:
    """(highest rank, label) of each colour band: the top-k, then decades above it."""
    bands = [(k, f"top {k}")]
    for edge in (100, 1_000, 10_000):
        if edge > bands[-1][0]:
            bands.append((edge, f"{bands[-1][0] + 1:,}–{edge:,}"))
    return (*bands, (np.iinfo(np.int64).max, f"over {bands[-1][0]:,}"))


def rank_colors(k: int) -> tuple[str, ...]:
    """The colour of each band of `rank_buckets(k)`: orange for the top-k, fading blues."""
    return (palette.ORANGE, *FARTHER_COLORS[: len(rank_buckets(k)) - 1])


def first_seen_frame(sightings: Sequence[Sighting], k: int) -> pd.DataFrame:
    """One row per (emitted token, layer) with its rank (1 = top), band, colour and ink."""
    ranks = np.stack([s.ranks for s in sightings]) + 1  # (emitted, L+1); 1 = the top guess
    buckets = rank_buckets(k)
    band = np.searchsorted([high for high, _ in buckets], ranks)  # (emitted, L+1)
    colors = np.asarray(rank_colors(k), dtype=object)[band.ravel()]
    column, layer = np.meshgrid(np.arange(len(sightings)), np.arange(ranks.shape[1]), indexing="ij")
    return pd.DataFrame(
        {
            "column": column.ravel(),
            "layer": layer.ravel(),
            "rank": ranks.ravel(),
            "band": np.asarray([label for _, label in buckets], dtype=object)[band.ravel()],
            "fill": colors,
            "ink": [palette.text_on(color) for color in colors],
        }
    )


def milestones(sightings: Sequence[Sighting], k: int) -> pd.DataFrame:
    """(column, layer, what) of each token's entry into the top-k and of its settling."""
    rows = [(i, s.entered, f"enters the top {k}") for i, s in enumerate(sightings) if s.entered]
    rows += [
        (i, s.settled, f"settles: in the top {k} from here up")
        for i, s in enumerate(sightings)
        if s.settled
    ]
    return pd.DataFrame(rows, columns=["column", "layer", "what"])


def first_seen_chart(
    sightings: Sequence[Sighting], labels: Sequence[str], k: int
) -> alt.LayerChart:
    """Rank of each emitted token in the lens of the position that emitted it, at every layer:
    orange with the rank written inside the top-k, blues fading with the rank outside it; a ring
    where it first enters the top-k (layers ≥ 1), a triangle where it settles (stays in the top-k
    from there up to the output)."""
    columns = [f"{s.position}→{labels[s.position + 1]}" for s in sightings]
    frame = first_seen_frame(sightings, k)
    frame["emitted"] = np.asarray(columns, dtype=object)[frame["column"]]
    n_rows = int(frame["layer"].max()) + 1
    buckets = rank_buckets(k)
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
    cells = _cells(
        frame,
        x,
        y,
        alt.Color(
            "band:N",
            title="rank in the lens",
            scale=alt.Scale(domain=[label for _, label in buckets], range=rank_colors(k)),
            legend=alt.Legend(orient="top"),
        ),
        ["emitted:N", "layer:O", "rank:Q", "band:N"],
    )
    marks = milestones(sightings, k)
    layers = [cells]
    if len(sightings) <= WORDS_UP_TO:  # the rank inside the top-k, where no marker sits
        marked = set(zip(marks["column"], marks["layer"], strict=True))
        written = [
            rank <= k and (column, layer) not in marked
            for column, layer, rank in zip(
                frame["column"], frame["layer"], frame["rank"], strict=True
            )
        ]
        layers.append(
            alt.Chart(frame[written])
            .mark_text(fontSize=8)
            .encode(x=x, y=y, text="rank:Q", color=alt.Color("ink:N", scale=None))
        )
    whats = [f"enters the top {k}", f"settles: in the top {k} from here up"]
    marks["emitted"] = np.asarray(columns, dtype=object)[marks["column"]]
    if len(marks):
        layers.append(
            alt.Chart(marks)
            .mark_point(size=70, strokeWidth=1.5, color=palette.BLACK)
            .encode(
                x=x,
                y=y,
                shape=alt.Shape(
                    "what:N",
                    title=None,
                    scale=alt.Scale(domain=whats, range=["circle", "triangle-up"]),
                    legend=alt.Legend(orient="top", labelLimit=300),
                ),
                fill=alt.Fill(
                    "what:N",
                    scale=alt.Scale(domain=whats, range=["transparent", palette.BLACK]),
                    legend=None,
                ),
                tooltip=["emitted:N", "layer:O", "what:N"],
            )
        )
    return (
        alt.layer(*layers)
        .resolve_scale(color="independent")  # the ranks' ink is a colour of its own
        .properties(width=EXPORT_WIDTH, height=14 * n_rows + LEGEND_PX + TOKEN_AXIS_PX)
    )
