"""Streamlit side of /architectures: grid controls bound to the URL, the click → selection
callback, the cached live check on the toy models, the guarded link to /flow, the text
under each diagram (built from computed numbers only), and what the export menus download."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import altair as alt
import pandas as pd
import streamlit as st

from lib import config, export, toy
from lib.architectures import Cell, StepNumbers
from lib.charts.architectures import SELECTION
from lib.config import ViewConfig
from lib.toy import VerificationResult
from lib.ui.state import bound, bound_in_range, copy_click
from lib.ui.text import human_bytes

PASSED, FAILED = ":green[:material/check_circle:]", ":red[:material/cancel:]"
RUN_PARAMS = ("prompt", "model", "new", "dtype", "seed")  # what /flow needs to redo this run
PAGE = "architectures"
# On the page a chart is as wide as its column ("container"); rendered on the server it has no
# column, so Vega would fall back to 200 px and clip the curves' legend. Exports get a fixed width
# close to what the page shows.
EXPORT_WIDTHS = {"diagram": 400, "curve": 560}


@dataclass(frozen=True)
class GridView:
    """The grid the diagrams draw and the selected cell, clamped to that grid."""

    tokens: int
    layers: int
    width: int
    cell: Cell


def controls(cfg: ViewConfig) -> GridView:
    """The grid's size, the state width and the selected cell, as URL-bound widgets.

    The selected token and layer are clamped to the grid (with a notice) before their widgets
    exist, so a widget never sees an out-of-range value."""
    token, token_notice = config.clamp_index("token", cfg.token, cfg.tokens)
    layer, layer_notice = config.clamp_index("layer", cfg.layer, cfg.layers + 1)
    for name, value, notice in (("token", token, token_notice), ("layer", layer, layer_notice)):
        if notice:
            st.warning(notice, icon="⚠️")
            st.session_state[name] = value
    size, depth, width, selected_token, selected_layer = st.columns(5)
    with size:
        bound_in_range(st.slider, "tokens", "Tokens")
    with depth:
        bound_in_range(st.slider, "layers", "Layers")
    with width:
        bound_in_range(
            st.number_input,
            "width",
            "Hidden width (numbers per vector)",
            help="Sets the state sizes below; the diagrams do not depend on it.",
        )
    with selected_token:
        bound(
            st.number_input,
            "token",
            "Selected token",
            min_value=0,
            max_value=cfg.tokens - 1,
            help="Or click a cell in any diagram.",
        )
    with selected_layer:
        bound(
            st.number_input,
            "layer",
            "Selected layer",
            min_value=0,
            max_value=cfg.layers,
            help="0 is the token's embedding; or click a cell in any diagram.",
        )
    return GridView(cfg.tokens, cfg.layers, cfg.width, (token, layer))


def clickable_diagram(chart: alt.LayerChart, name: str, view: GridView) -> None:
    """Draw one diagram; a click on a cell selects it in all three.

    The key carries the selected cell, so after every selection the charts start with no
    click of their own and the same cell can be clicked again later."""
    key = f"diagram-{name}-{view.cell[0]}-{view.cell[1]}"
    st.altair_chart(
        chart,
        key=key,
        on_select=copy_click(
            key, SELECTION, ("token", "layer"), ("token", "layer"), (view.tokens, view.layers + 1)
        ),
        selection_mode=SELECTION,
        width="stretch",
    )


@st.cache_resource(show_spinner=False, max_entries=48)
def verification(arch_name: str, tokens: int, layers: int) -> VerificationResult:
    """The live check on the toy model, once per grid: results are immutable (frozen arrays)."""
    return toy.verify(arch_name, tokens, layers)


def verification_markdown(result: VerificationResult) -> str:
    """One line per check, with the measured numbers."""
    pairs = result.grad_mask.size
    step = PASSED if result.step_equals_full else FAILED
    pattern = f"{PASSED} yes" if result.autograd_matches_rule else f"{FAILED} no"
    return (
        f"{step} step by step ≡ full pass: max |Δ| = {result.max_abs_diff:.1e}  \n"
        f"{pattern}, autograd's dependencies = the rule: {len(result.mismatched_cells)} of "
        f"{pairs:,} cell pairs differ"
    )


def plural(count: int, word: str) -> str:
    """`1 token`, `2 tokens`: the grid on this page goes down to one token and one layer."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def numbers_markdown(numbers: StepNumbers, layers: int) -> str:
    """The list of numbers under one diagram, for step t = `numbers.step`."""
    t, tokens = numbers.step, numbers.tokens
    growth = f"+{numbers.state_growth:,} per token" if numbers.state_growth else "fixed size"
    training = "parallel over time" if numbers.parallel_over_time else "token after token"
    rows = [
        (
            f"State carried into step {t}",
            f"{numbers.state_values:,} values = {human_bytes(numbers.state_bytes)} ({growth})",
        ),
        (f"Longest serial path, token 0 → {t}", plural(numbers.longest_path, "computation")),
        (
            f"Sequential steps to train on {plural(tokens, 'token')}",
            f"{numbers.training_steps} ({training})",
        ),
        (
            f"Past cells step {t} reads directly",
            f"{numbers.past_cells_read} of {numbers.past_cells}",
        ),
        (
            f"Past cells that ({t}, {layers}) depends on",
            f"{numbers.past_cells_in_cone} of {numbers.past_cells}; top layer: "
            f"{numbers.past_tops_in_cone} of {t}",
        ),
    ]
    return "\n".join(f"- {label}: **{value}**" for label, value in rows)


def flow_link(cfg: ViewConfig) -> None:
    """Link to /flow with this view's prompt and model: the transformer's cone on the real model."""
    query = {name: value for name, value in config.to_query(cfg).items() if name in RUN_PARAMS}
    st.page_link(
        "views/flow.py",
        label="See the transformer's cone on the real model, with this prompt → /flow",
        icon="🔀",
        query_params=query,
    )


def export_name(view: GridView, figure: str | None = None) -> str:
    """The file name of a figure (or, with no `figure`, of the page's data), from the settings
    that change it: `architectures-tokens6-layers4-token5-layer1-figrnn`. The diagrams follow
    the grid and the cell; the state sizes the grid, the width and the step; the serial paths
    only the grid."""
    t, layer = view.cell
    grid = [("tokens", view.tokens), ("layers", view.layers)]
    if figure is None:
        parts = [*grid, ("width", view.width), ("token", t), ("layer", layer)]
    elif figure == "state-size":
        parts = [*grid, ("width", view.width), ("token", t), ("fig", figure)]
    elif figure == "serial-path":
        parts = [*grid, ("fig", figure)]
    else:  # a diagram, named after its architecture
        parts = [*grid, ("token", t), ("layer", layer), ("fig", figure)]
    return export.view_name(PAGE, *parts)


def for_export(chart: alt.TopLevelMixin, kind: Literal["diagram", "curve"]) -> alt.TopLevelMixin:
    """The chart as drawn, at a fixed width (a shallow copy: no data is copied or computed)."""
    return chart.properties(width=EXPORT_WIDTHS[kind])


def export_data(
    view: GridView,
    numbers: Mapping[str, StepNumbers],
    cells: Mapping[str, pd.DataFrame],
    checks: Mapping[str, VerificationResult],
    sizes: pd.DataFrame,
    paths: pd.DataFrame,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The page's numbers for the JSON export, and the table of the CSV: one row per
    architecture with the numbers under its diagram and its live check. Only what the page
    already computed; the masks of the live checks stay out (they can be 10⁵ booleans)."""
    rows = []
    for name, step in numbers.items():
        check = checks[name]
        rows.append(
            {
                "architecture": name,
                **dataclasses.asdict(step),
                "check_step_equals_full": check.step_equals_full,
                "check_max_abs_diff": check.max_abs_diff,
                "check_autograd_matches_rule": check.autograd_matches_rule,
                "check_mismatched_pairs": len(check.mismatched_cells),
                "check_pairs": int(check.grad_mask.size),
            }
        )
    table = pd.DataFrame(rows).drop(columns="name")
    t, layer = view.cell
    data = {
        "grid": {"tokens": view.tokens, "layers": view.layers, "width": view.width},
        "selected_cell": {"token": t, "layer": layer},
        "numbers": table,
        "diagram_cells": {name: frame[["token", "layer", "role"]] for name, frame in cells.items()},
        "state_size": sizes,
        "serial_path": paths,
    }
    return data, table
