"""The /plan page's Streamlit side: the logit lens cached per trace, run-dependent clamping of
its URL parameters, and the chart clicks that select a position or a lens cell.

The trace comes from `lib.ui.resources.session_run`; the lens is keyed by that trace's token
ids, so a rerun that only moves the selection (or changes k) calls no model at all.
"""

from __future__ import annotations

import streamlit as st

from lib import lens
from lib.charts.plan import LENS_SELECTION, POSITION_SELECTION
from lib.config import ViewConfig
from lib.lens import Lens
from lib.models import LoadedModel
from lib.trace import Trace
from lib.ui.state import copy_click

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


select_lens_cell = copy_click(LENS_KEY, LENS_SELECTION, ("position", "layer"), ("token", "layer"))
select_position = copy_click(STRIP_KEY, POSITION_SELECTION, ("position",), ("token",))
