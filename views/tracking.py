"""/tracking: the variable-tracking task in miniature. Accuracy against dependency depth for
transformers, a feedback transformer and a transformer that writes its state into the text, then
the reader's program through all of them."""

from functools import partial

import streamlit as st

from lib.charts import tracking as charts
from lib.config import PARAMS_BY_NAME
from lib.export import view_name
from lib.pages.tracking import CHANCE
from lib.ui import draw, resources, state
from lib.ui.state import bound, bound_in_range

cfg = state.view()
resolved = state.current()
page = resources.tracking_view(cfg)
name = view_name(
    "tracking",
    *(
        (("program", "own"),)
        if page.own
        else (("pseed", cfg.pseed), ("statements", cfg.statements))
    ),
)
percent = st.column_config.NumberColumn(format="percent")

st.title(page.title)
draw.notices(page.notices)
for paragraph in page.opening:
    st.markdown(paragraph)

st.header(page.headings["depth"])
draw.chart(
    partial(charts.depth_chart, page.by_depth, CHANCE),
    "tracking-accuracy-by-depth",
)
st.caption(page.depth_caption)
st.markdown(page.depth_text)
st.dataframe(
    page.by_depth.frame(), column_config={column: percent for column in page.by_depth.columns}
)
with st.expander(page.headings["budget"]):
    st.dataframe(page.budget, hide_index=True)
    st.caption(page.budget_caption)

st.header(page.headings["program"])
length, seed, another = st.columns([3, 2, 2], vertical_alignment="bottom")
with length:
    bound_in_range(st.slider, "statements", "Statements in the generated program")
with seed:
    bound_in_range(st.number_input, "pseed", "Program seed")
with another:
    st.button(
        "Another program",
        on_click=state.setter(pseed=cfg.pseed + 1, program=""),
        icon=":material/casino:",
    )
bound(
    st.text_area,
    "program",
    "Or write your own (empty: the generated one)",
    max_chars=PARAMS_BY_NAME["program"].max_chars,
    placeholder="x = 3 ; x ++ ; if x == 4 : x = 1 ; print x ;",
    help="Statements end with `;` (spaces optional). Allowed: `x = 1`…`x = 5`, `x ++`, `x --`, "
    "`print x`, and `if x == 3 :` before any of the updates. Values wrap: 5 ++ is 1.",
)
st.code(page.listing, language=None, wrap_lines=True)
st.markdown(page.score_text)
draw.chart(
    partial(charts.predictions_chart, page.grid),
    f"{name}-predictions",
)
st.caption(page.grid_caption)
st.markdown(page.written_text)
draw.chart(
    partial(charts.written_chart, page.written),
    f"{name}-written",
)
st.caption(page.written_caption)

st.header(page.headings["length"])
st.markdown(page.length_text)
st.dataframe(
    page.by_length.frame(), column_config={column: percent for column in page.by_length.columns}
)

st.header(page.headings["reads"])
draw.chart(
    partial(charts.reads_chart, page.reads, page.program.tokens),
    f"{name}-reads",
)
st.caption(page.reads_caption)

st.header(page.headings["limits"])
for paragraph in page.limits:
    st.markdown(paragraph)
draw.data_downloads(resolved, name, page, page.grid)
