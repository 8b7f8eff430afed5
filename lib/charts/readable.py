"""Altair charts of the /readable page: the widths of one layer with what later tokens read of it
marked, the probes' held-out R² per layer between their floor and ceiling with the reader's text
on the same scale, each run's next-token bars, and the fraction restored per starting layer.

Colours come from `lib.charts.palette`; each distinction has a second cue: the widths' bars are
labelled with who reads them, the R² lines differ in dash and point shape as well as colour, layer
0 is hollow, the selected layer is a labelled rule, the clean answer's bar is outlined, and the
restoration from layer 0 (the word) is grey and named apart in the legend.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd

from lib.charts import palette
from lib.readable.probe import Widths

LAYER_SELECTION = "readable_layer"  # fields: layer
EXPORT_WIDTH = 720  # a file has no column to stretch to
READ, NOT_READ = "read by later tokens (cached)", "not read by later tokens"
WIDTH_COLORS = {READ: palette.BLUE, NOT_READ: palette.LIGHT}
SERIES = {  # name: (colour, dash, point shape)
    "ceiling: the whole normed residual": (palette.BLACK, [6, 3], "square"),
    "K/V probe: what later tokens read": (palette.BLUE, [1, 0], "circle"),
    "your text, K/V probe": (palette.ORANGE, [2, 2], "diamond"),
    "floor: shuffled pairs": (palette.GREY, [1, 3], "triangle-down"),
}
CLEAN_ANSWER, CORRUPT_ANSWER, OTHER = "clean answer", "corrupted answer", "other tokens"
BAR_COLORS = {CLEAN_ANSWER: palette.ORANGE, CORRUPT_ANSWER: palette.GREEN, OTHER: palette.SKY}
BAR_OUTLINES = {CLEAN_ANSWER: palette.BLACK, CORRUPT_ANSWER: "transparent", OTHER: "transparent"}
WORD, INTERNAL = "from layer 0: hands over the word", "from layer ≥ 1: internal states only"
START_COLORS = {WORD: palette.GREY, INTERNAL: palette.BLUE}
BAR_PX = 26  # one bar of the next-token charts and its gap
WIDTH_ROW_PX = 34  # one bar of the widths diagram
FRAME_PX = 160  # Streamlit fits axes and legend into a chart's height too: room for them
LEGEND_LABELS_PX = 320  # no legend label is cut short


def widths_chart(widths: Widths, layer: int) -> alt.LayerChart:
    """One token at one layer: the residual stream, the MLP's hidden activation, and the key and
    value of the next layer, each as wide as it is; what later tokens read is blue."""
    frame = pd.DataFrame(
        {
            "part": [
                f"residual stream after layer {layer}",
                f"MLP hidden activation, layer {layer}",
                f"key, layer {layer + 1}",
                f"value, layer {layer + 1}",
            ],
            "width": [widths.residual, widths.mlp_hidden, widths.key, widths.value],
            "who": [NOT_READ, NOT_READ, READ, READ],
        }
    )
    frame["shown"] = frame["width"].map(lambda w: f"{w:,}")
    y = alt.Y("part:N", sort=None, title=None, axis=alt.Axis(labelLimit=220))
    bars = (
        alt.Chart(frame)
        .mark_bar(stroke=palette.BLACK, strokeWidth=1)
        .encode(
            y=y,
            x=alt.X(
                "width:Q",
                title="numbers per token",
                scale=alt.Scale(domain=[0, widths.mlp_hidden * 1.15]),
            ),
            color=alt.Color(
                "who:N",
                title=None,
                scale=alt.Scale(domain=list(WIDTH_COLORS), range=list(WIDTH_COLORS.values())),
                legend=alt.Legend(orient="bottom", columns=1, labelLimit=LEGEND_LABELS_PX),
            ),
            tooltip=["part:N", "width:Q", "who:N"],
        )
    )
    values = bars.mark_text(align="left", dx=4, fontSize=11).encode(
        text="shown:N", color=alt.value(palette.BLACK)
    )
    return (bars + values).properties(width=EXPORT_WIDTH, height=4 * WIDTH_ROW_PX + FRAME_PX)


def r2_frame(series: dict[str, np.ndarray], probed: int) -> pd.DataFrame:
    """Long form: one row per (series, layer) of the probed layers 0..probed−1."""
    rows = [
        {"series": name, "layer": layer, "R²": float(values[layer]), "word": layer == 0}
        for name, values in series.items()
        for layer in range(probed)
    ]
    return pd.DataFrame(rows)


def r2_chart(
    readable: np.ndarray,
    ceiling: np.ndarray,
    floor: np.ndarray,
    prompt: np.ndarray,
    selected: int,
) -> alt.LayerChart:
    """Held-out R² per layer ℓ, the band between floor and ceiling shaded; layer 0 hollow; the
    selected layer a rule. Clicking a K/V probe point selects its layer."""
    probed = len(readable) - 1  # the top layer has no probe
    names = list(SERIES)
    frame = r2_frame(dict(zip(names, (ceiling, readable, prompt, floor), strict=True)), probed)
    band = pd.DataFrame(
        {"layer": np.arange(probed), "low": floor[:probed], "high": ceiling[:probed]}
    )
    x = alt.X(
        "layer:Q",
        title="layer ℓ (MLP activation at ℓ, read from K/V at ℓ + 1)",
        scale=alt.Scale(domain=[0, max(probed - 1, 1)], nice=False),
        axis=alt.Axis(tickMinStep=1, format="d"),
    )
    scale = {"domain": names}
    colors = alt.Scale(**scale, range=[SERIES[n][0] for n in names])
    shaded = (
        alt.Chart(band)
        .mark_area(color=palette.SKY, opacity=0.2)
        .encode(x=x, y=alt.Y("low:Q", title="held-out R²"), y2="high:Q")
    )
    lines = (
        alt.Chart(frame)
        .mark_line(strokeWidth=2)
        .encode(
            x=x,
            y=alt.Y("R²:Q", scale=alt.Scale(domain=[min(-0.1, float(np.nanmin(floor))), 1])),
            color=alt.Color(
                "series:N",
                title=None,
                scale=colors,
                legend=alt.Legend(
                    orient="bottom", columns=1, symbolStrokeWidth=2, labelLimit=LEGEND_LABELS_PX
                ),
            ),
            strokeDash=alt.StrokeDash(
                "series:N", scale=alt.Scale(**scale, range=[SERIES[n][1] for n in names])
            ),
        )
    )
    pick = alt.selection_point(name=LAYER_SELECTION, fields=["layer"], on="click")
    points = (
        alt.Chart(frame)
        .mark_point(size=45, strokeWidth=1.5)
        .encode(
            x=x,
            y="R²:Q",
            color=alt.Color("series:N", scale=colors),
            shape=alt.Shape(
                "series:N", scale=alt.Scale(**scale, range=[SERIES[n][2] for n in names])
            ),
            fill=alt.condition(
                "datum.word", alt.value(palette.WHITE), alt.Fill("series:N", scale=colors)
            ),
            tooltip=["series:N", "layer:Q", alt.Tooltip("R²:Q", format=".3f")],
        )
        .add_params(pick)
    )
    rule = alt.Chart(pd.DataFrame({"layer": [selected], "label": [f"layer {selected}"]}))
    marks = rule.mark_rule(color=palette.VERMILION, strokeWidth=2).encode(x=x)
    label = rule.mark_text(align="left", dx=4, dy=-6, color=palette.VERMILION).encode(
        x=x, y=alt.value(8), text="label:N"
    )
    return alt.layer(shaded, lines, points, marks, label).properties(width=EXPORT_WIDTH, height=360)


def next_token_bars(
    labels: Sequence[str], probs: np.ndarray, kinds: Sequence[str]
) -> alt.LayerChart:
    """One run's likeliest next tokens, likeliest on top, with their probability written after;
    `kinds`: CLEAN_ANSWER, CORRUPT_ANSWER or OTHER per bar."""
    frame = pd.DataFrame(
        {
            "token": [f"{rank + 1}. {label}" for rank, label in enumerate(labels)],
            "probability": probs.astype(float),
            "kind": list(kinds),
        }
    )
    frame["shown"] = frame["probability"].map(lambda p: f"{p:.1%}")
    kinds = list(BAR_COLORS)
    bar = (
        alt.Chart(frame)
        .mark_bar(strokeWidth=2)
        .encode(
            y=alt.Y("token:N", sort=None, title=None, axis=alt.Axis(labelLimit=120)),
            x=alt.X(
                "probability:Q",
                title="probability",
                scale=alt.Scale(domain=[0, 1.35]),
                axis=alt.Axis(format="%", values=[0, 0.5, 1]),
            ),
            color=alt.Color(
                "kind:N",
                title=None,
                scale=alt.Scale(domain=kinds, range=list(BAR_COLORS.values())),
                legend=alt.Legend(orient="bottom", columns=1, labelLimit=LEGEND_LABELS_PX),
            ),
            stroke=alt.Stroke(
                "kind:N",
                title=None,
                scale=alt.Scale(domain=kinds, range=[BAR_OUTLINES[k] for k in kinds]),
                legend=alt.Legend(orient="bottom", columns=1, labelLimit=LEGEND_LABELS_PX),
            ),
            tooltip=["token:N", alt.Tooltip("probability:Q", format=".4f"), "kind:N"],
        )
    )
    values = bar.mark_text(align="left", dx=4, fontSize=11).encode(
        text="shown:N", color=alt.value(palette.BLACK), stroke=alt.value(None)
    )
    return (bar + values).properties(height=BAR_PX * len(frame) + FRAME_PX + 40)


def restoration_chart(restored: np.ndarray) -> alt.LayerChart:
    """The fraction restored by patching layers a..top, per starting layer a; layer 0 grey."""
    frame = pd.DataFrame(
        {
            "start": np.arange(len(restored)),
            "restored": np.nan_to_num(restored.astype(float)),
            "kind": [WORD] + [INTERNAL] * (len(restored) - 1),
        }
    )
    x = alt.X("start:O", title="patch starts at layer a (and runs to the top)")
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=x,
            y=alt.Y("restored:Q", title="fraction restored", axis=alt.Axis(format="%")),
            color=alt.Color(
                "kind:N",
                title=None,
                scale=alt.Scale(domain=list(START_COLORS), range=list(START_COLORS.values())),
                legend=alt.Legend(orient="bottom", columns=1, labelLimit=LEGEND_LABELS_PX),
            ),
            tooltip=["start:O", alt.Tooltip("restored:Q", format=".3f"), "kind:N"],
        )
    )
    levels = (
        alt.Chart(pd.DataFrame({"level": [0.0, 1.0]}))
        .mark_rule(color=palette.BLACK, strokeDash=[4, 3])
        .encode(y="level:Q")
    )
    return alt.layer(bars, levels).properties(width=EXPORT_WIDTH, height=180 + FRAME_PX)
