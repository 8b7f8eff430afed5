"""Streamlit glue of /cache: both generations under one progress bar, run-dependent indices.

The generations themselves are cached by `resources.generation` (per model, dtype, prompt,
length, cache mode and seed); this module only reports their progress and keeps the widgets
whose range depends on the run (step, layer, KV head) inside that range.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from lib import cache_compare
from lib.charts.cache import GRID_SELECTION
from lib.config import ViewConfig
from lib.generate import GenerationTrace, Step
from lib.ui import resources


def _progress(bar, run_index: int, mode: str, total: int) -> Callable[[Step], None]:
    """An on_step callback that moves the bar through its half of the two runs."""
    done = 0

    def on_step(step: Step) -> None:
        nonlocal done
        done += 1
        fraction = (run_index + min(done / total, 1.0)) / 2
        bar.progress(fraction, text=f"Generating with the cache {mode}: step {done} of {total}…")

    return on_step


def both_runs(cfg: ViewConfig, prompt_ids: tuple[int, ...]) -> tuple[GenerationTrace, ...]:
    """The cached run and the uncached run of this prompt; a progress bar while they run."""
    bar = st.empty()
    runs = tuple(
        resources.generation(
            cfg, prompt_ids, use_cache, on_step=_progress(bar, index, mode, cfg.new)
        )
        for index, (use_cache, mode) in enumerate(((True, "on"), (False, "off")))
    )
    bar.empty()
    return runs


def layer_from_click(chart_key: str, layers: int) -> Callable[[], None]:
    """An on_select callback: a click on a grid cell selects that cell's layer below."""

    def select() -> None:
        layer = cache_compare.selected_layer(
            st.session_state.get(chart_key), GRID_SELECTION, layers
        )
        if layer is not None:
            st.session_state["layer"] = layer

    return select
