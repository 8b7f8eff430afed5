"""Logit-lens figures: what the lens of every cell adds to a traced 64-token sequence, and what
a selection change on /plan costs once everything is computed.

`lens_ms` is our batched, chunked lens of 64 tokens × 31 rows; `lens_matmul_ms` the bare
unembedding product of those cells (the floor no lens can go under); `lens_ratio` ours ÷ the
plain transformers way (all full-vocabulary logits at once, then softmax, top-k, entropy).
`plan_select_ms`: `plan_page(cfg, lab)` for a new (token, layer) with the run, its trace and its
lens already in the lab's store — top-k views, the look back against matched tokens, tables and
texts — plus the page's five charts serialised to Vega-Lite as `st.altair_chart` does.
"""

from __future__ import annotations

import dataclasses
import statistics

import torch
from streamlit.elements.vega_charts import (  # what st.altair_chart does to a chart
    _convert_altair_to_vega_lite_spec as to_vega_lite,
)

from bench.common import median_seconds, paired_ratio, report
from bench.foundation import LONG_PROMPT
from lib import models
from lib.charts import plan as charts
from lib.config import ViewConfig
from lib.lab import Lab
from lib.lens import logit_lens
from lib.pages.plan import plan_page
from lib.trace import decode_text, encode_prompt, run_trace

NEW_TOKENS = 24  # the app's default continuation length
CELLS = ((63, 15), (40, 30), (10, 5))  # (token, layer) of the selections timed


def select(cfg: ViewConfig, lab: Lab) -> None:
    """One rerun of /plan after a selection change, up to the specs Streamlit sends."""
    page = plan_page(cfg, lab)
    output, cell = page.output, page.cell
    to_vega_lite(charts.top_k_bars(output.labels, output.probs, output.came_next))
    to_vega_lite(charts.entropy_strip(page.tokens, page.entropy, page.n_prompt, page.token))
    to_vega_lite(
        charts.lens_heatmap(
            page.tokens,
            page.lens_top1,
            page.lens_top1_prob,
            page.lens_entropy,
            (page.token, page.layer),
        )
    )
    to_vega_lite(charts.top_k_bars(cell.labels, cell.probs, cell.came_next))
    to_vega_lite(charts.first_seen_chart(page.sightings, page.tokens, page.k))


def plan_select_ms(lm: models.LoadedModel) -> float:
    """The median over `CELLS` of each selection's median time, on 40 prompt + 24 new tokens."""
    prompt = decode_text(lm, encode_prompt(lm, LONG_PROMPT * 3, 64 - NEW_TOKENS).ids)
    cfg = ViewConfig(prompt=prompt, new=NEW_TOKENS)
    lab = Lab.direct(lm)
    select(cfg, lab)  # generates, traces and lenses once: not timed
    cells = [dataclasses.replace(cfg, token=token, layer=layer) for token, layer in CELLS]
    return 1000 * statistics.median(median_seconds(lambda c=c: select(c, lab)) for c in cells)


def run() -> None:
    lm = models.load(models.DEFAULT_MODEL)
    trace = run_trace(lm, encode_prompt(lm, LONG_PROMPT * 3, 64).ids)
    hidden = torch.tensor(trace.hidden)  # (31, 64, 576)
    assert hidden.shape[:2] == (31, 64), hidden.shape

    def plain_lens() -> None:
        with torch.inference_mode():
            states = torch.cat([lm.model.model.norm(hidden[:-1]), hidden[-1:]])
            logits = lm.model.lm_head(states)  # (31, 64, V): 390 MB at once
            log_probs = torch.log_softmax(logits, -1)
            torch.topk(logits, 20, dim=-1)
            -(log_probs.exp() * log_probs).sum(-1)

    def matmul_only() -> None:
        with torch.inference_mode():
            hidden.reshape(-1, hidden.shape[-1]) @ lm.model.lm_head.weight.T  # (1984, V)

    logit_lens(lm, trace)  # warm-up
    report("lens_ms", 1000 * median_seconds(lambda: logit_lens(lm, trace)))
    report("lens_matmul_ms", 1000 * median_seconds(matmul_only))
    report("lens_ratio", paired_ratio(lambda: logit_lens(lm, trace), plain_lens, repeats=3))
    report("plan_select_ms", plan_select_ms(lm))


if __name__ == "__main__":
    run()
