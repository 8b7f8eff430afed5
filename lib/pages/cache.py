"""/cache as a value: the same prompt decoded with the cache and without it, step by step in
turn; the verdict, what the cache saved and when it starts to pay, its size against the
formula, and one step's grid with the decode cache rows that step read."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lib import markdown
from lib.cache_compare import (
    PAYS,
    STATE_LABELS,
    CacheSize,
    CacheView,
    CellState,
    Comparison,
    Savings,
    cache_size,
    cache_view,
    cell_states,
    compare,
    fed_positions,
    query_position,
    savings,
    sequence_labels,
    state_counts,
    step_within,
    weight_bytes,
)
from lib.config import ViewConfig, clamp_index
from lib.content import decoding, fill
from lib.export import view_name
from lib.generate import GenerationTrace
from lib.lab import Lab
from lib.models import ModelShape

PAGE = "cache"
HIDDEN = {"export": False}  # runs and grids are exported through the table and the counts


@dataclass(frozen=True)
class Grid:
    """One step's token × layer grid: (L, T) CellState codes, its title, and its counts."""

    states: np.ndarray = field(metadata=HIDDEN)
    labels: tuple[str, ...]
    title: str
    counts: dict[str, int]


@dataclass(frozen=True)
class CachePage:
    shape: ModelShape
    dtype: str
    n_prompt: int
    on: GenerationTrace = field(metadata=HIDDEN)
    off: GenerationTrace = field(metadata=HIDDEN)
    comparison: Comparison
    kind: str  # same / drift / parted: which verdict the page gives
    saved: Savings
    size: CacheSize
    texts_on_off: tuple[str, str]  # each run's text as Markdown, the generated part in bold
    run_captions: tuple[str, str]
    n_steps: int
    step: int
    layer: int
    auto_layer: int  # the layer shown when the link names none
    kv_head: int
    grid_on: Grid
    grid_off: Grid | None
    reads: CacheView
    table: pd.DataFrame
    notices: tuple[str, ...]
    title: str
    opening: str
    store: str
    verdict: str
    saves_caption: str
    pays: str
    size_text: str
    step_text: str
    reads_caption: str
    headings: dict[str, str]
    files: dict[str, str]  # file name of each figure and of the page's data, after the view


def file_names(cfg: ViewConfig, dtype: str, step: int, layer: int, kv_head: int):
    """`cache-new24-float32-greedy-step3-layer7-figgridon`: the run, then what picks the view."""
    seed = ("", "greedy") if cfg.seed is None else ("seed", cfg.seed)
    run = (("new", cfg.new), ("", dtype), seed)
    shown = (*run, ("step", step), ("layer", layer))
    rows = (*shown, ("kvhead", kv_head))
    names = {
        figure: view_name(PAGE, *run, ("fig", figure)) for figure in ("times", "cells", "size")
    }
    names |= {figure: view_name(PAGE, *shown, ("fig", figure)) for figure in ("gridon", "gridoff")}
    return names | {"rows": view_name(PAGE, *rows, ("fig", "rows")), "data": view_name(PAGE, *rows)}


def step_table(runs: tuple[GenerationTrace, GenerationTrace], c: Comparison, size: CacheSize):
    """One row per decoding step: both runs' tokens, |Δlogit|, times, cells and cache bytes.

    A run that stopped earlier leaves its columns empty from there; |Δlogit| is empty after
    the texts part, where the two runs no longer decode from the same context.
    """
    on, off = runs

    def column(values, dtype: str) -> pd.Series:
        return pd.Series(values, dtype=dtype)

    return pd.DataFrame(
        {
            "step": np.arange(c.steps),
            "token_cache_on": column([s.label for s in on.steps], "string"),
            "token_cache_off": column([s.label for s in off.steps], "string"),
            "token_id_cache_on": column(on.new_ids, "Int64"),
            "token_id_cache_off": column(off.new_ids, "Int64"),
            "max_abs_dlogit": column(c.step_abs_dlogit, "float64"),
            "ms_cache_on": column(on.seconds * 1000, "float64"),
            "ms_cache_off": column(off.seconds * 1000, "float64"),
            "cells_cache_on": column(on.cells, "Int64"),
            "cells_cache_off": column(off.cells, "Int64"),
            "cache_tokens": column(size.tokens, "Int64"),
            "cache_bytes_measured": column(size.measured, "Int64"),
            "cache_bytes_formula": column(size.formula, "Int64"),
        }
    )


def _counts(states: np.ndarray) -> dict[str, int]:
    return {STATE_LABELS[state]: count for state, count in state_counts(states).items()}


def verdict_text(c: Comparison, dtype: str) -> str:
    """The verdict in words, for the kind of result this run gave."""
    chose, instead = c.parting_labels or ("", "")  # the parted verdict alone uses them
    return fill(
        PAGE,
        f"verdict.{c.kind}",
        summary=c.summary,
        steps=c.steps,
        dtype=dtype,
        tolerance=c.tolerance,
        first_drift=c.first_drift,
        parting=c.first_parting,
        chose=markdown.token_chips([chose]),
        instead=markdown.token_chips([instead]),
        max=c.max_abs_dlogit,
    )


def pays_text(saved: Savings, weights: int) -> str:
    common = {
        "weights": markdown.human_bytes(weights),
        "margin": PAYS,
        "median_on": saved.median_on,
        "median_off": saved.median_off,
        "speedup": saved.speedup,
    }
    if not saved.context.size:
        return fill(PAGE, "saves.untimed")
    if saved.pays_from is not None:
        return fill(PAGE, "saves.pays", pays_from=saved.pays_from, **common)
    first, last = int(saved.context[0]), int(saved.context[-1])
    return fill(PAGE, "saves.never", first=first, last=last, **common)


def cache_page(cfg: ViewConfig, lab: Lab) -> CachePage:
    lm = lab.lm
    shape = lm.shape
    prompt = lab.prompt(cfg.prompt)
    runs = lab.cache_runs(prompt.ids, cfg.new, cfg.seed)
    on, off = runs.on, runs.off
    c = compare(runs, lab.dtype)
    saved = savings(on, off)
    size = cache_size(on, shape)
    n_steps = len(on.steps)
    step, step_notice = clamp_index("step", cfg.step, n_steps)
    auto_layer = shape.layers // 2
    layer, layer_notice = clamp_index(
        "layer", auto_layer if cfg.layer is None else cfg.layer, shape.layers
    )
    kv_head, kv_notice = clamp_index("kvhead", cfg.kvhead, shape.kv_heads)
    prompt_labels = lab.labels(prompt.ids)
    labels_on = sequence_labels(prompt_labels, on)
    states_on = cell_states(on, step, fed_positions(on))
    counts_on = state_counts(states_on)
    off_step = step_within(off, step)
    states_off = cell_states(off, off_step, fed_positions(off))
    counts_off = state_counts(states_off)
    grid_off = None
    if cfg.offgrid == "on":
        grid_off = Grid(
            states_off,
            sequence_labels(prompt_labels, off),
            fill(
                PAGE,
                "step.grid_off",
                step=off_step,
                recomputed=counts_off[CellState.RECOMPUTED],
                computed=counts_off[CellState.COMPUTED],
            ),
            _counts(states_off),
        )
    query = query_position(on, step)
    reads = cache_view(on, shape, step, layer, kv_head)
    top, weight = reads.most_read
    prompt_text = lab.text(prompt.ids)
    generated = tuple(lab.text(run.new_ids) for run in (on, off))
    numbers = {
        "steps": c.steps,
        "decoding": decoding(cfg.seed),
        "dtype": lab.dtype,
        "summary": c.summary,
        "parting": c.first_parting,
        "cells_on": saved.cells_on,
        "cells_off": saved.cells_off,
        "median_on": saved.median_on,
        "median_off": saved.median_off,
    }
    fed = (
        fill(PAGE, "step.prompt")
        if step == 0
        else fill(
            PAGE, "step.token", label=markdown.token_chips([labels_on[query]]), position=query
        )
    )
    last_tokens = int(size.tokens[-1])
    return CachePage(
        shape=shape,
        dtype=lab.dtype,
        n_prompt=len(prompt.ids),
        on=on,
        off=off,
        comparison=c,
        kind=c.kind,
        saved=saved,
        size=size,
        texts_on_off=tuple(markdown.continuation(prompt_text, text, True) for text in generated),
        run_captions=tuple(
            fill(
                PAGE,
                "run_caption",
                tokens=len(run.steps),
                decoding=decoding(cfg.seed),
                dtype=lab.dtype,
            )
            for run in (on, off)
        ),
        n_steps=n_steps,
        step=step,
        layer=layer,
        auto_layer=auto_layer,
        kv_head=kv_head,
        grid_on=Grid(
            states_on,
            labels_on,
            fill(PAGE, "step.grid_on", step=step, layer=layer),
            _counts(states_on),
        ),
        grid_off=grid_off,
        reads=reads,
        table=step_table((on, off), c, size),
        notices=prompt.notices
        + tuple(n for n in (step_notice, layer_notice, kv_notice) if n and n_steps > 1),
        title=fill(PAGE, "title"),
        opening=fill(PAGE, f"opening.{c.kind}", **numbers),
        store=fill(
            PAGE,
            "opening.store",
            layers=shape.layers,
            kv_width=shape.kv_width,
            tokens=last_tokens,
            bytes=markdown.human_bytes(int(size.measured[-1])),
            hidden=shape.hidden,
            mlp=shape.mlp,
            agreement=fill(PAGE, "agreement.same" if c.same_tokens else "agreement.parted"),
        ),
        verdict=verdict_text(c, lab.dtype),
        saves_caption=fill(
            PAGE, "saves.caption", layers=shape.layers, cells_ratio=saved.cells_ratio
        ),
        pays=pays_text(saved, weight_bytes(lm)),
        size_text=fill(
            PAGE,
            "saves.size",
            tokens=last_tokens,
            bytes=int(size.measured[-1]),
            human=markdown.human_bytes(int(size.measured[-1])),
            layers=shape.layers,
            kv_heads=shape.kv_heads,
            head_dim=shape.head_dim,
            bytes_per_value=shape.bytes_per_value,
            per_token=shape.cache_bytes_per_token,
            agree=fill(PAGE, "saves.agree" if size.agree else "saves.disagree"),
            growth=size.largest_growth,
            growth_tokens=size.largest_growth / shape.cache_bytes_per_token,
        ),
        step_text=(
            fill(
                PAGE,
                "step.text",
                step=step,
                fed=fed,
                chosen=markdown.token_chips([on.steps[step].label]),
                computed=counts_on[CellState.COMPUTED],
                cached=counts_on[CellState.CACHED],
                off_cells=int(off.cells[off_step]),
            )
        ),
        reads_caption=fill(
            PAGE,
            "step.reads",
            layer=layer,
            kv_head=kv_head,
            step=step,
            head_dim=shape.head_dim,
            rows=query + 1,
            heads=", ".join(map(str, reads.heads)),
            top=markdown.token_chips([labels_on[top]]),
            top_position=top,
            weight=weight,
            kv_width=shape.kv_width,
            hidden=shape.hidden,
        ),
        headings={
            key: fill(PAGE, key)
            for key in ("same_heading", "saves_heading", "step_heading", "reads_heading")
        }
        | {"one_step": fill(PAGE, "step.one")},
        files=file_names(cfg, lab.dtype, step, layer, kv_head),
    )
