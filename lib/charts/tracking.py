"""Altair charts of the /tracking page: accuracy against dependency depth, every print's value as
each model says it, the scratchpad model's written values, and what the feedback model's
attention reads at each print."""

from __future__ import annotations

import json
from collections.abc import Sequence

import altair as alt
import pandas as pd

from lib.charts.palette import CATEGORICAL, GREEN, GREY, LIGHT, VERMILION, text_on
from lib.tracking import HeldOutTable

VERDICTS = {"right": GREEN, "wrong": VERMILION, "": LIGHT}  # "": the program's own rows
CELL_PX = 30
AXES_PX = 100  # Streamlit fits axis titles and the legend into the height too
LABELLED = 40  # columns up to which cells carry their value as text


def depth_chart(table: HeldOutTable, chance: float) -> alt.LayerChart:
    """Per-print accuracy in each depth bucket, one line per model; shortcuts dashed, buckets
    too thin to read marked with a hollow point, chance as a grey rule."""
    frame = pd.DataFrame(
        [
            (name, kind, column, float(accuracy), prints, "too few prints" if thin else "")
            for name, kind, row in zip(table.rows, table.kinds, table.accuracy, strict=True)
            for column, accuracy, prints, thin in zip(
                table.columns, row, table.prints, table.thin, strict=True
            )
        ],
        columns=["model", "kind", "depth", "accuracy", "prints", "note"],
    )
    x = alt.X(
        "depth:O",
        sort=list(table.columns),
        title="dependency depth of the print (updates since x was last fixed)",
        axis=alt.Axis(labelAngle=0),
    )
    lines = (
        alt.Chart(frame)
        .mark_line(point=alt.OverlayMarkDef(size=60, filled=True))
        .encode(
            x=x,
            y=alt.Y(
                "accuracy:Q",
                title="per-print accuracy",
                scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%"),
            ),
            color=alt.Color(
                "model:N",
                sort=list(table.rows),
                scale=alt.Scale(
                    domain=list(table.rows), range=list(CATEGORICAL[: len(table.rows)])
                ),
                legend=alt.Legend(orient="bottom", columns=4, title=None, labelLimit=220),
            ),
            strokeDash=alt.condition(
                "datum.kind == 'baseline'", alt.value([5, 4]), alt.value([1, 0])
            ),
            tooltip=[
                "model:N",
                "kind:N",
                "depth:O",
                alt.Tooltip("accuracy:Q", format=".1%"),
                "prints:Q",
                "note:N",
            ],
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"chance": [chance], "label": [f"chance {chance:.0%}"]}))
        .mark_rule(color=GREY, strokeDash=[2, 2])
        .encode(y="chance:Q", tooltip=["label:N"])
    )
    return (rule + lines).properties(height=340)


def _grid(frame: pd.DataFrame, x: alt.X, tooltip: list, columns: int) -> alt.LayerChart:
    """Cells coloured right/wrong (the program's own rows light), each holding its value in the
    colour that reads on it, when there are few enough columns to read."""
    order = list(dict.fromkeys(frame["who"]))
    base = alt.Chart(frame).encode(
        x=x,
        y=alt.Y("who:N", sort=order, title=None, axis=alt.Axis(labelLimit=260, labelOverlap=False)),
    )
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color(
            "verdict:N",
            title=None,
            scale=alt.Scale(domain=list(VERDICTS), range=list(VERDICTS.values())),
            legend=alt.Legend(orient="bottom", labelExpr="datum.label || 'the program'"),
        ),
        tooltip=tooltip,
    )
    chart = cells
    if columns <= LABELLED:
        ink = {verdict: text_on(colour) for verdict, colour in VERDICTS.items()}
        values = base.mark_text(fontSize=13, fontWeight="bold").encode(
            text="value:Q",
            color=alt.Color(
                "verdict:N",
                scale=alt.Scale(domain=list(ink), range=list(ink.values())),
                legend=None,
            ),
        )
        chart = alt.layer(cells, values).resolve_scale(color="independent")
    return chart.properties(height=CELL_PX * len(order) + AXES_PX)


def predictions_chart(grid: pd.DataFrame) -> alt.LayerChart:
    """One column per print: its depth, the value printed, then each model and shortcut."""
    x = alt.X("print:O", title="print statement (in program order)", axis=alt.Axis(labelAngle=0))
    tooltip = ["print:O", "who:N", "value:Q", "verdict:N"]
    return _grid(grid, x, tooltip, grid["print"].nunique())


def written_chart(written: pd.DataFrame) -> alt.LayerChart:
    """One column per statement: the value of x after it, and what the scratchpad wrote."""
    x = alt.X(
        "statement:O",
        title="statement",
        axis=alt.Axis(labelAngle=0, labelOverlap=True),
    )
    tooltip = ["statement:O", "text:N", "who:N", "value:Q", "verdict:N"]
    return _grid(written, x, tooltip, written["statement"].nunique())


def reads_chart(frame: pd.DataFrame, tokens: Sequence[str]) -> alt.Chart:
    """Rows: the prints; columns: the program's tokens; colour: how much the print's `x` read
    that token's memory (layer 0, heads averaged)."""
    labels = [f"{position} {token}" for position, token in enumerate(tokens)]
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X(
                "position:O",
                title="memory of token (position · symbol)",
                scale=alt.Scale(domain=list(range(len(tokens)))),
                axis=alt.Axis(labelExpr=f"{json.dumps(labels)}[datum.value]", labelAngle=-90),
            ),
            y=alt.Y("print:O", title="print statement"),
            color=alt.Color("weight:Q", title="attention", scale=alt.Scale(scheme="blues")),
            tooltip=["print:O", "token:N", alt.Tooltip("weight:Q", format=".3f")],
        )
        .properties(height=22 * frame["print"].nunique() + 110)
    )
