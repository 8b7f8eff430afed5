"""The /plan page's Streamlit side: the logit lens cached per trace, run-dependent clamping of
its URL parameters, and the chart clicks that select a position or a lens cell.

The trace comes from `lib.ui.resources.session_run`; the lens is keyed by that trace's token
ids, so a rerun that only moves the selection (or changes k) calls no model at all.
"""

from __future__ import annotations

import streamlit as st

from lib import lens
from lib.charts.plan import LENS_SELECTION, POSITION_SELECTION, clicked
from lib.config import ViewConfig
from lib.lens import Lens
from lib.models import LoadedModel
from lib.trace import Trace

LENS_KEY = "plan_lens"
STRIP_KEY = "plan_entropy"


@st.cache_resource(
    show_spinner="Reading every layer through the final norm and the unembedding…", max_entries=8
)
def _lens(
    model_id: str, dtype: str, token_ids: tuple[int, ...], _lm: LoadedModel, _trace: Trace
) -> Lens:
    return lens.logit_lens(_lm, _trace)


def logit_lens(cfg: ViewConfig, lm: LoadedModel, trace: Trace) -> Lens:
    """The lens of every (layer, position) cell of `trace`, computed once per trace."""
    return _lens(cfg.model, cfg.dtype, tuple(trace.token_ids.tolist()), lm, trace)


def select_lens_cell() -> None:
    """`on_select` of the lens heatmap: runs before the rerun, so the sliders can follow."""
    cell = clicked(st.session_state.get(LENS_KEY), LENS_SELECTION, ("position", "layer"))
    if cell is not None:
        st.session_state["token"], st.session_state["layer"] = cell


def select_position() -> None:
    """`on_select` of the entropy strip."""
    position = clicked(st.session_state.get(STRIP_KEY), POSITION_SELECTION, ("position",))
    if position is not None:
        st.session_state["token"] = position[0]
