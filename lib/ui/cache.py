"""Streamlit glue of /cache: both generations under one progress bar, run-dependent indices.

The generations themselves are cached by `resources.generation` (per model, dtype, prompt,
length, cache mode and seed); this module only reports their progress, keeps the widgets
whose range depends on the run (step, layer, KV head) inside that range, and names and
gathers what the export menus offer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from lib import cache_compare, export
from lib.cache_compare import STATE_LABELS, CacheSize, CacheView, CellState, Comparison, Savings
from lib.charts.cache import GRID_SELECTION
from lib.config import ViewConfig
from lib.generate import GenerationTrace, Step
from lib.models import ModelShape
from lib.ui import resources
from lib.ui.state import copy_click

PAGE = "cache"


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
    return copy_click(chart_key, GRID_SELECTION, ("layer",), ("layer",), (layers,))


def export_name(cfg: ViewConfig, *parts: tuple[str, Any]) -> str:
    """`cache-new24-float32-greedy-step3-layer7-figgridon`: the run, then what picks the view."""
    seed = ("", "greedy") if cfg.seed is None else ("seed", cfg.seed)
    return export.view_name(PAGE, ("new", cfg.new), ("", cfg.dtype), seed, *parts)


def step_table(
    on: GenerationTrace, off: GenerationTrace, comparison: Comparison, size: CacheSize
) -> pd.DataFrame:
    """One row per decoding step: both runs' tokens, |Δlogit|, times, cells and cache bytes.

    A run that stopped earlier leaves its columns empty from there; |Δlogit| is empty after
    the texts part, where the two runs no longer decode from the same context.
    """

    def column(values, dtype: str) -> pd.Series:
        return pd.Series(values, dtype=dtype)

    return pd.DataFrame(
        {
            "step": np.arange(comparison.steps),
            "token_cache_on": column([s.label for s in on.steps], "string"),
            "token_cache_off": column([s.label for s in off.steps], "string"),
            "token_id_cache_on": column(on.new_ids, "Int64"),
            "token_id_cache_off": column(off.new_ids, "Int64"),
            "max_abs_dlogit": column(comparison.step_abs_dlogit, "float64"),
            "ms_cache_on": column(on.seconds * 1000, "float64"),
            "ms_cache_off": column(off.seconds * 1000, "float64"),
            "cells_cache_on": column(on.cells, "Int64"),
            "cells_cache_off": column(off.cells, "Int64"),
            "cache_tokens": column(size.tokens, "Int64"),
            "cache_bytes_measured": column(size.measured, "Int64"),
            "cache_bytes_formula": column(size.formula, "Int64"),
        }
    )


def grid_data(states: np.ndarray, step: int) -> dict[str, Any]:
    """One token × layer grid as the page draws it: states (L, T) and their counts."""
    counts = cache_compare.state_counts(states)
    return {
        "step": step,
        "states": states,  # (L, T) CellState values, layer 0 first
        "counts": {STATE_LABELS[state]: counts[state] for state in CellState},
    }


def page_data(
    *,
    shape: ModelShape,
    prompt_tokens: int,
    generated: dict[str, str],
    comparison: Comparison,
    saved: Savings,
    size: CacheSize,
    table: pd.DataFrame,
    step: int,
    labels: tuple[str, ...],
    grids: dict[str, dict[str, Any]],
    view: CacheView,
    layer: int,
    kv_head: int,
) -> dict[str, Any]:
    """What /cache shows, for its JSON export: no logits, no hidden states beyond one head's."""
    top, top_weight = view.most_read
    return {
        "shape": dataclasses.asdict(shape) | {"cache_bytes_per_token": shape.cache_bytes_per_token},
        "prompt_tokens": prompt_tokens,
        "generated": generated,
        "verdict": {
            "summary": comparison.summary,
            "identical": comparison.identical,
            "steps": comparison.steps,
            "max_abs_dlogit": comparison.max_abs_dlogit,
            "first_drift": comparison.first_drift,
            "first_parting": comparison.first_parting,
            "parting_labels": comparison.parting_labels,
        },
        "savings": dataclasses.asdict(saved)
        | {"speedup": saved.speedup, "cells_ratio": saved.cells_ratio},
        "cache_size_agrees_with_formula": size.agree,
        "steps": table,
        "step_through": {
            "step": step,
            "sequence": labels,
            "state_codes": {int(state): STATE_LABELS[state] for state in CellState},
            "grids": grids,
        },
        "cached_rows": {
            "step": step,
            "layer": layer,
            "kv_head": kv_head,
            "query_position": view.query,
            "query_heads": view.heads,
            "keys": np.round(view.keys.astype(np.float64), 4),  # (query + 1, head_dim)
            "values": np.round(view.values.astype(np.float64), 4),
            "attention": np.round(view.attention.astype(np.float64), 5),  # (heads, query + 1)
            "most_read": {"position": top, "token": labels[top], "weight": top_weight},
        },
    }
