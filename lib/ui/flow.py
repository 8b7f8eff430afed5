"""The /flow page's Streamlit side: cached per-trace and per-cell results, run-dependent
clamping of its URL parameters, and the chart click that selects a cell.

The trace itself comes from `lib.ui.resources.session_run`; everything here is keyed by the
token ids of that trace, so a rerun that only moves the selection finds the value norms cached
and reruns at most the gradient pass of a cell it has not seen yet.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import streamlit as st

from lib import flow, surgery
from lib.charts.flow import DECORATION_PX, SELECTION
from lib.config import ViewConfig, clamp_index
from lib.flow import Cell, GradientCone
from lib.models import LoadedModel
from lib.surgery import CacheEdit, Surgery
from lib.trace import Trace
from lib.ui import state

GRID_KEY = "flow_grid"
CONE_KEY = "flow_cone"


@st.cache_resource(show_spinner=False, max_entries=8)
def _value_norms(
    model_id: str, dtype: str, token_ids: tuple[int, ...], _lm: LoadedModel, _trace: Trace
) -> np.ndarray:
    return flow.value_norms(_lm, _trace)


def value_norms(cfg: ViewConfig, lm: LoadedModel, trace: Trace) -> np.ndarray:
    """‖W_O^h v_i‖ for the whole trace, (L, H, T), computed once per trace."""
    return _value_norms(cfg.model, cfg.dtype, tuple(trace.token_ids.tolist()), lm, trace)


@st.cache_resource(
    show_spinner="Measuring the cone: one forward and one backward pass of the model…",
    max_entries=32,
)
def _gradient(
    model_id: str, dtype: str, token_ids: tuple[int, ...], token: int, layer: int, _lm: LoadedModel
) -> GradientCone:
    return flow.gradient_cone(_lm, token_ids, Cell(token, layer))


def gradient_cone(cfg: ViewConfig, lm: LoadedModel, trace: Trace, cell: Cell) -> GradientCone:
    """The gradient pass runs once per (sequence, cell)."""
    ids = tuple(trace.token_ids.tolist())
    return _gradient(cfg.model, cfg.dtype, ids, cell.token, cell.layer, lm)


@st.cache_resource(
    show_spinner="Editing the cache and recomputing every later position…", max_entries=16
)
def _surgery(
    model_id: str,
    dtype: str,
    token_ids: tuple[int, ...],
    n_prompt: int,
    edit: tuple[int, int, int, str, int],
    greedy: bool,
    _lm: LoadedModel,
) -> Surgery:
    return surgery.run_surgery(_lm, token_ids, n_prompt, CacheEdit(*edit), greedy)


def run_surgery(
    cfg: ViewConfig, lm: LoadedModel, trace: Trace, n_prompt: int, edit: CacheEdit
) -> Surgery:
    """Surgery runs once per setting (sequence, edit). Without a seed the sequence's own
    continuation was greedy, so only the edited one is decoded."""
    key = (edit.src, edit.first, edit.last, edit.kind, edit.other)
    ids = tuple(trace.token_ids.tolist())
    return _surgery(cfg.model, cfg.dtype, ids, n_prompt, key, cfg.seed is None, lm)


def clamped_head(head: int | str, n_heads: int) -> int | str:
    """`all`, or a query head clamped to the model's heads (the widget holds it as text)."""
    if head == "all":
        return head
    fitted, notice = clamp_index("head", int(head), n_heads)
    if notice:
        st.warning(notice, icon="⚠️")
        st.session_state["head"] = str(fitted)
    return fitted


def table_height(rows: int, chart_height: int) -> int:
    """Pixels for a data frame of `rows` rows (35 px each, and the header) beside a grid chart:
    all rows when they fit, never taller than the chart."""
    return min(35 * (rows + 1) + 3, chart_height + DECORATION_PX)


def count(number: int, noun: str) -> str:
    """`1 hop`, `2 hops`: a counted noun for the page's sentences."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


CELL_FIELDS = ("token", "layer")  # a grid point's fields, and the widgets they set


def select_on_click(chart_key: str) -> Callable[[], None]:
    """`on_select` of the grid and the cone: the clicked cell becomes the selected one."""
    return state.copy_click(chart_key, SELECTION, CELL_FIELDS, CELL_FIELDS)


def select_cell(token: int, layer: int) -> None:
    """`on_click` of the example button."""
    st.session_state["token"], st.session_state["layer"] = token, layer
