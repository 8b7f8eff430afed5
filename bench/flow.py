"""/flow on the real model with 64 tokens (a 40-token prompt and the app's 24 new ones).

`flow_select_ms`: `flow_page(cfg, lab)` for a selection change once the run, its trace, value
norms, surgery and the cell's gradient are kept — edges and their table, structural cones,
staircase, summaries and every caption — plus the three charts built from the page and
serialised to a Vega-Lite spec as Streamlit does. The gradient pass of a cell seen for the first
time (`flow_gradient_ms`) and one surgery setting (`flow_surgery_ms`) are measured on their own:
each runs once per cell or setting, with a progress line.
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
from lib.config import ViewConfig
from lib.lab import Lab
from lib.pages.flow import FlowPage, flow_page
from lib.stepping import Cell
from lib.surgery import CacheEdit, run_surgery
from lib.trace import decode_text, encode_prompt

CELLS = (Cell(63, 15), Cell(40, 29), Cell(10, 5))
PROMPT_TOKENS = 40
NEW_TOKENS = 24  # the app's default continuation length


def draw(page: FlowPage) -> None:
    """What the view hands to st.altair_chart, serialised."""
    cone = page.cone
    to_vega_lite(charts.grid_chart(page.tokens, page.n_layers, cone.structure, page.edges.edges))
    to_vega_lite(charts.cone_chart(page.tokens, cone.gradient, cone.structure, cone.staircase))
    to_vega_lite(charts.surgery_chart(page.tokens, page.surgery.result))


def run() -> None:
    lm = models.load(models.DEFAULT_MODEL)
    lab = Lab.direct(lm)
    prompt = decode_text(lm, encode_prompt(lm, LONG_PROMPT * 3, PROMPT_TOKENS).ids)
    base = ViewConfig(prompt=prompt, new=NEW_TOKENS, head="all", weight="value")

    def config(cell: Cell) -> ViewConfig:
        return ViewConfig(**{**vars(base), "token": cell.token, "layer": cell.layer})

    first = flow_page(config(CELLS[0]), lab)  # generation, trace, norms, surgery, one cone
    assert first.n_tokens == PROMPT_TOKENS + NEW_TOKENS, first.n_tokens
    prompt_ids = lab.prompt(prompt).ids
    ids = prompt_ids + lab.generation(prompt_ids, NEW_TOKENS, None).new_ids  # the page's keys
    gradient_seconds = []
    for cell in CELLS[1:]:
        start = time.perf_counter()
        lab.gradient_cone(ids, cell)
        gradient_seconds.append(time.perf_counter() - start)

    def select(cell: Cell) -> None:
        draw(flow_page(config(cell), lab))

    select(CELLS[0])  # warm-up
    report(
        "flow_select_ms",
        1000 * statistics.median(median_seconds(lambda c=c: select(c)) for c in CELLS),
    )
    report("flow_gradient_ms", 1000 * statistics.median(gradient_seconds))

    edit = CacheEdit(src=3, first=0, last=29, kind="zero")
    surgery_seconds = median_seconds(
        lambda: run_surgery(lm, ids, PROMPT_TOKENS, edit, True), repeats=1
    )
    report("flow_surgery_ms", 1000 * surgery_seconds)
