"""/plan: the next-token distribution the text throws away, the logit lens of every layer, and
when an emitted token first shows up inside the model, against matched tokens that were not
emitted there."""

from functools import partial

import streamlit as st

from lib.charts import plan as charts
from lib.export import view_name
from lib.pages.plan import plan_page
from lib.trace import TOP_K
from lib.ui import draw, resources, state
from lib.ui.state import bound

LENS_KEY = "plan_lens"
STRIP_KEY = "plan_entropy"

cfg = state.view()
resolved = state.current()
page = resources.page_model(plan_page, cfg)
token, layer, k = page.token, page.layer, page.k
n_tokens, n_rows = len(page.tokens), page.n_rows


def name(*parts: tuple[str, object]) -> str:
    """The file name of one figure or of the page's data: `plan-token4-layer0-k10-figcell`."""
    return view_name("plan", *parts)


st.title(page.title)
draw.notices(page.notices)
for paragraph in page.opening:
    st.markdown(paragraph)

columns = st.columns([4, 3, 2])
with columns[0]:
    bound(
        st.slider,
        "token",
        "Position (the distribution after this token)",
        value=token,
        auto=page.auto_token,
        min_value=0,
        max_value=n_tokens - 1,
    )
with columns[1]:
    bound(
        st.slider,
        "layer",
        "Lens layer",
        value=layer,
        auto=page.auto_layer,
        min_value=0,
        max_value=n_rows - 1,
    )
with columns[2]:
    bound(st.slider, "k", "Top-k", min_value=1, max_value=TOP_K)

st.header(page.headings["output_section"])
st.markdown(page.sides["hidden"])
left, right = st.columns([2, 3])
with left:
    st.subheader(page.output_heading)
    output = page.output
    draw.chart(
        partial(charts.top_k_bars, output.labels, output.probs, output.came_next),
        name(("token", token), ("k", k), ("fig", "output")),
    )
    st.markdown(output.numbers)
    st.caption(page.output_caption)
with right:
    st.subheader(page.headings["strip_heading"])
    draw.chart(
        partial(charts.entropy_strip, page.tokens, page.entropy, page.n_prompt, token),
        name(("token", token), ("fig", "entropy")),
        key=STRIP_KEY,
        on_select=state.copy_click(
            STRIP_KEY, charts.POSITION_SELECTION, ("position",), ("token",), (n_tokens,)
        ),
        selection_mode=charts.POSITION_SELECTION,
    )
    st.caption(page.strip_caption)

st.header(page.headings["lens_section"])
grid, detail = st.columns([5, 2])
with grid:
    draw.chart(
        partial(
            charts.lens_heatmap,
            page.tokens,
            page.lens_top1,
            page.lens_top1_prob,
            page.lens_entropy,
            (token, layer),
        ),
        name(("token", token), ("layer", layer), ("fig", "lens")),
        key=LENS_KEY,
        on_select=state.copy_click(
            LENS_KEY,
            charts.LENS_SELECTION,
            ("position", "layer"),
            ("token", "layer"),
            (n_tokens, n_rows),
        ),
        selection_mode=charts.LENS_SELECTION,
    )
    st.caption(page.lens_caption)
with detail:
    st.subheader(page.cell_heading)
    cell = page.cell
    draw.chart(
        partial(charts.top_k_bars, cell.labels, cell.probs, cell.came_next),
        name(("token", token), ("layer", layer), ("k", k), ("fig", "cell")),
    )
    st.markdown(cell.numbers)
    st.caption(page.cell_caption)

st.header(page.headings["seen_section"])
st.markdown(page.sides["open"])
st.markdown(page.seen_text)
if page.sightings:
    draw.chart(
        partial(charts.first_seen_chart, page.sightings, page.tokens, k),
        name(("k", k), ("fig", "firstseen")),
    )
    st.caption(page.seen_caption)

st.subheader(page.headings["lookback_heading"])
st.markdown(page.lookback_text)
st.dataframe(
    page.table,
    hide_index=True,
    column_config={
        "share of earlier cells": st.column_config.ProgressColumn(
            format="percent", min_value=0.0, max_value=1.0
        )
    },
)
st.caption(page.table_caption)
draw.data_downloads(resolved, name(("token", token), ("layer", layer), ("k", k)), page, page.table)
st.markdown(page.means_text)
