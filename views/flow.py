"""/flow: which earlier states feed a (token, layer) cell, what can move it, and what later
tokens do when one token's cached K/V are edited. Everything shown comes from `flow_page`."""

from functools import partial

import streamlit as st

from lib.charts import flow as charts
from lib.pages.flow import flow_page
from lib.ui import draw, resources, state
from lib.ui.state import bound

cfg = state.view()
page = resources.page_model(flow_page, cfg)
cell, auto, files, highest = page.cell, page.auto_cell, page.files, page.highest
CELL = ("token", "layer")
for_file = partial(charts.for_file, n_tokens=page.n_tokens)  # a figure as a file: its width

st.title(page.title)
draw.notices(page.notices)
st.markdown(page.claim)
st.markdown(page.start)

columns = st.columns([3, 3, 1.3, 1.3, 2])
for column, name, label in zip(columns, CELL, ("Token (column)", "Layer (row)"), strict=False):
    with column:
        bound(
            st.slider,
            name,
            label,
            value=getattr(cell, name),
            auto=getattr(auto, name),
            min_value=0,
            max_value=highest[name],
        )
with columns[2]:
    bound(
        st.selectbox,
        "head",
        "Query head",
        value=page.head,
        options=list(page.head_options),
        help=page.head_help,
    )
with columns[3]:
    bound(st.radio, "agg", "All heads by", options=("mean", "max"), disabled=page.agg_disabled)
with columns[4]:
    bound(
        st.radio,
        "weight",
        "Edge weight",
        options=list(page.weight_options),
        captions=list(page.weight_options.values()),
        help=page.weight_help,
    )
st.button(page.example, on_click=state.setter(token=auto.token, layer=auto.layer))

# 1–2. The grid, and what feeds the selected cell
edges = page.edges
st.subheader(edges.heading)
chart_column, table_column = st.columns([5, 2])
with chart_column:
    draw.chart(
        partial(charts.grid_chart, page.tokens, page.n_layers, page.cone.structure, edges.edges),
        files["grid"],
        for_file,
        key="flow_grid",
        on_select=state.copy_click("flow_grid", charts.SELECTION, CELL, CELL, page.grid_size),
        selection_mode=charts.SELECTION,
    )
with table_column:
    if edges.table is None:
        st.info(edges.caption)
    else:
        st.dataframe(
            edges.table,
            hide_index=True,
            height=edges.table_height,
            column_config={
                name: st.column_config.NumberColumn(heading, format=number_format)
                for name, (heading, number_format) in edges.columns.items()
            },
        )
if edges.table is not None:
    st.caption(edges.caption)

# 3. The cone, measured, and the staircase
cone = page.cone
st.subheader(cone.heading)
draw.chart(
    partial(charts.cone_chart, page.tokens, cone.gradient, cone.structure, cone.staircase),
    files["cone"],
    for_file,
    key="flow_cone",
    on_select=state.copy_click("flow_cone", charts.SELECTION, CELL, CELL, page.grid_size),
    selection_mode=charts.SELECTION,
)
st.caption(cone.caption)
st.markdown(cone.staircase_text)

# 4. Cache surgery: number inputs, since with two tokens the only source is 0 and a slider refuses
surgery = page.surgery
st.subheader(surgery.heading)
controls = st.columns([2, 2, 2, 2, 3])
for column, name, label, value in (
    (controls[0], "src", "Source token", page.src),
    (controls[1], "from", "From layer", page.from_layer),
    (controls[2], "to", "To layer", page.to_layer),
):
    with column:
        bound(st.number_input, name, label, value=value, min_value=0, max_value=highest[name])
with controls[3]:
    options = page.edit_options
    bound(
        st.radio,
        "edit",
        "Replace K and V by",
        options=list(options),
        captions=list(options.values()),
    )
with controls[4]:
    bound(
        st.slider,
        "other",
        "Other token (for “another token's”)",
        value=page.other,
        min_value=0,
        max_value=highest["other"],
        disabled=page.other_disabled,
    )
st.markdown(surgery.description)
draw.chart(partial(charts.surgery_chart, page.tokens, surgery.result), files["surgery"], for_file)
for column, metric in zip(st.columns(len(surgery.metrics)), surgery.metrics, strict=True):
    column.metric(metric.label, metric.value, help=metric.help or None)
st.caption(surgery.rounding_caption)
with st.expander(surgery.table_label):
    st.dataframe(surgery.table, hide_index=True)
for column, heading, text in zip(
    st.columns(2),
    (surgery.before_heading, surgery.after_heading),
    (surgery.before, surgery.after),
    strict=True,
):
    column.markdown(heading)
    column.markdown(text)
st.caption(surgery.continuation_caption)

draw.data_downloads(state.current(), files["data"], page, edges.table)
