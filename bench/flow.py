"""/flow figures on the real model with 64 tokens.

`flow_select_ms`: the work a selection change does once the trace, its value norms and the
cell's gradient are cached — edges, structural cones, staircase, summaries, both grid charts
and the edge table, serialised to a Vega-Lite spec as Streamlit does. The gradient pass of a
cell seen for the first time (`flow_gradient_ms`) and one surgery setting (`flow_surgery_ms`)
are measured on their own: each runs once per cell or setting, behind a spinner.
"""

from __future__ import annotations

import statistics
import time

from streamlit.elements.vega_charts import (  # what st.altair_chart does to a chart
    _convert_altair_to_vega_lite_spec as to_vega_lite,
)

from bench.common import median_seconds, report
from bench.foundation import LONG_PROMPT
from lib import models
from lib.charts import flow as charts
from lib.flow import (
    Cell,
    cone_summary,
    gradient_cone,
    incoming_edges,
    staircase,
    structural_cones,
    value_norms,
)
from lib.surgery import CacheEdit, run_surgery
from lib.trace import encode_prompt, run_trace

CELLS = (Cell(63, 15), Cell(40, 29), Cell(10, 5))
NEW_TOKENS = 24  # the app's default continuation length


def run() -> None:
    lm = models.load(models.DEFAULT_MODEL)
    ids = encode_prompt(lm, LONG_PROMPT * 3, 64).ids
    assert len(ids) == 64, len(ids)
    trace = run_trace(lm, ids)
    norms = value_norms(lm, trace)
    n_tokens, n_layers = trace.n_tokens, trace.n_layers

    gradient_seconds, cones = [], {}
    for cell in CELLS:
        start = time.perf_counter()
        cones[cell] = gradient_cone(lm, ids, cell)
        gradient_seconds.append(time.perf_counter() - start)

    def select(cell: Cell) -> None:
        edges = incoming_edges(trace, norms, cell, "all", "mean", "value")
        structure = structural_cones(cell, n_tokens, n_layers)
        stairs = staircase(cell, n_tokens, n_layers)
        cone_summary(cones[cell], structure)
        edges.table(trace.tokens)
        to_vega_lite(charts.grid_chart(trace.tokens, n_layers, structure, edges))
        to_vega_lite(charts.cone_chart(trace.tokens, cones[cell], structure, stairs))

    select(CELLS[0])  # warm-up
    report(
        "flow_select_ms",
        1000 * statistics.median(median_seconds(lambda c=c: select(c)) for c in CELLS),
    )
    report("flow_gradient_ms", 1000 * statistics.median(gradient_seconds))

    edit = CacheEdit(src=3, first=0, last=29, kind="zero")
    surgery_seconds = median_seconds(
        lambda: run_surgery(lm, ids, n_tokens - NEW_TOKENS, edit, True), repeats=1
    )
    report("flow_surgery_ms", 1000 * surgery_seconds)
