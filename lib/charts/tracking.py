"""Altair charts of the /tracking page: every print's value as each model says it, accuracy
against program length, and what the feedback model's attention reads at each print."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd

from lib.tracking import TRAIN_STATEMENTS, Program

TRUE = "true value"
RIGHT_WRONG = {"right": "#1b9e77", "wrong": "#d95f02", "": "#bdbdbd"}
CELL_PX = 30
AXES_PX = 100  # Streamlit fits axis titles and the legend into the height too
EXPORT_WIDTH = 720  # exports have no column to stretch to


def predictions_frame(program: Program, guesses: Mapping[str, Sequence[int]]) -> pd.DataFrame:
    """One row per (print, who): the value said, and whether it is right (blank for the truth)."""
    rows = []
    for index, value in enumerate(program.printed):
        rows.append((index + 1, TRUE, value, ""))
        for name, guess in guesses.items():
            rows.append(
                (index + 1, name, guess[index], "right" if guess[index] == value else "wrong")
            )
    return pd.DataFrame(rows, columns=["print", "who", "value", "verdict"])


def predictions_chart(frame: pd.DataFrame) -> alt.LayerChart:
    """A grid: one column per print, one row for the truth and one per model; each cell holds the
    value said, green when right and orange when wrong."""
    order = list(dict.fromkeys(frame["who"]))
    base = alt.Chart(frame).encode(
        x=alt.X("print:O", title="print statement (in program order)", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("who:N", sort=order, title=None, axis=alt.Axis(labelLimit=200)),
    )
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color(
            "verdict:N",
            title=None,
            scale=alt.Scale(domain=list(RIGHT_WRONG), range=list(RIGHT_WRONG.values())),
            legend=alt.Legend(orient="bottom", labelExpr="datum.label || 'the program'"),
        ),
        tooltip=["print:O", "who:N", "value:Q", "verdict:N"],
    )
    values = base.mark_text(fontSize=13, color="white", fontWeight="bold").encode(text="value:Q")
    return (cells + values).properties(height=CELL_PX * len(order) + AXES_PX)


def length_chart(curve: pd.DataFrame) -> alt.LayerChart:
    """Per-print accuracy against program length, one line per model, with the training range
    shaded."""
    low, high = TRAIN_STATEMENTS
    trained = (
        alt.Chart(
            pd.DataFrame({"from": [low], "to": [high], "label": ["lengths seen in training"]})
        )
        .mark_rect(opacity=0.12, color="#636363")
        .encode(x="from:Q", x2="to:Q", tooltip=["label:N"])
    )
    lines = (
        alt.Chart(curve)
        .mark_line(point=True)
        .encode(
            x=alt.X("statements:Q", title="statements in the program"),
            y=alt.Y(
                "accuracy:Q",
                title="per-print accuracy",
                scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%"),
            ),
            color=alt.Color("model:N", title=None, legend=alt.Legend(orient="bottom")),
            strokeDash=alt.condition(
                "datum.model == 'skip the conditionals'", alt.value([4, 3]), alt.value([1, 0])
            ),
            tooltip=["model:N", "statements:Q", alt.Tooltip("accuracy:Q", format=".1%")],
        )
    )
    return (trained + lines).properties(height=320)


def reads_frame(program: Program, reads: np.ndarray) -> pd.DataFrame:
    """At each print's `x`: the attention weight on the memory of every earlier token."""
    rows = []
    for index, position in enumerate(program.print_positions):
        for source in np.flatnonzero(reads[position] > 0):
            rows.append(
                (
                    index + 1,
                    int(source),
                    f"{source} {program.tokens[source]}",
                    float(reads[position, source]),
                )
            )
    return pd.DataFrame(rows, columns=["print", "position", "token", "weight"])


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
