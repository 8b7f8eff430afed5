"""Cache on vs off: the same tokens, what the cache saves, and what it holds at each step."""

from functools import partial

import streamlit as st

from lib.charts import cache as charts
from lib.config import DTYPES, MAX_SEED
from lib.pages.cache import cache_page
from lib.ui import draw, resources, state
from lib.ui.state import bound

cfg = state.view()
resolved = state.current()
page = resources.page_model(cache_page, cfg, cfg.dtype)
files = page.files

st.title(page.title)
draw.notices(page.notices)
st.markdown(page.opening)
st.markdown(page.store)

st.header(page.headings["same_heading"])
left, right = st.columns(2)
with left:
    bound(
        st.segmented_control,
        "dtype",
        "Precision of the weights",
        options=list(DTYPES),
        required=True,
        help="The two passes do the same arithmetic in another order; in bfloat16 their "
        "rounding differs more.",
    )
with right:
    bound(
        st.number_input,
        "seed",
        "Sampling seed (empty: greedy decoding)",
        min_value=0,
        max_value=MAX_SEED,
        step=1,
        placeholder="greedy",
    )
for column, mode, text, caption in zip(
    (left, right), ("on", "off"), page.texts_on_off, page.run_captions, strict=True
):
    column.subheader(f"Cache {mode}")
    column.markdown(text)
    column.caption(caption)
if page.kind == "same":
    st.success(page.verdict, icon="✅")
else:
    st.warning(page.verdict, icon="⚠️")

st.header(page.headings["saves_heading"])
saved = page.saved
metrics = (
    ("Median step, cache on", f"{saved.median_on:.0f} ms"),
    ("Median step, cache off", f"{saved.median_off:.0f} ms"),
    ("Speedup (medians)", f"{saved.speedup:.2f}×"),
    ("Cells, cache on", f"{saved.cells_on:,}"),
    ("Cells, cache off", f"{saved.cells_off:,}"),
)
for column, (label, value) in zip(st.columns(5), metrics, strict=True):
    column.metric(label, value)
st.caption(page.saves_caption)
time_column, cells_column = st.columns(2)
with time_column:
    draw.chart(
        partial(charts.step_times, saved.context, saved.ms_on, saved.ms_off),
        files["times"],
    )
with cells_column:
    draw.chart(
        partial(charts.step_cells, page.on.cells, page.off.cells),
        files["cells"],
    )
st.markdown(page.pays)
size_column, size_text = st.columns([3, 2])
with size_column:
    size = page.size
    draw.chart(
        partial(charts.cache_size, size.tokens, size.measured, size.formula),
        files["size"],
    )
size_text.markdown(page.size_text)

st.header(page.headings["step_heading"])
step_column, grid_column = st.columns([3, 1])
with step_column:
    if page.n_steps > 1:
        bound(
            st.slider,
            "step",
            "Decoding step",
            value=page.step,
            min_value=0,
            max_value=page.n_steps - 1,
        )
    else:
        st.caption(page.headings["one_step"])
with grid_column:
    bound(
        st.segmented_control,
        "offgrid",
        "Cache-off grid too",
        options=["off", "on"],
        required=True,
    )
st.markdown(page.step_text)
layers = page.shape.layers
for name, grid in (("gridon", page.grid_on), ("gridoff", page.grid_off)):
    if grid is not None:
        draw.chart(
            partial(charts.cell_grid, grid.states, grid.labels, page.layer, grid.title),
            files[name],
            key=f"grid_{name}",
            on_select=state.copy_click(
                f"grid_{name}", charts.GRID_SELECTION, ("layer",), ("layer",), (layers,)
            ),
            selection_mode=charts.GRID_SELECTION,
        )

st.subheader(page.headings["reads_heading"])
layer_column, head_column = st.columns([3, 1])
with layer_column:
    bound(
        st.slider,
        "layer",
        "Layer",
        value=page.layer,
        auto=page.auto_layer,
        min_value=0,
        max_value=layers - 1,
    )
with head_column:
    bound(
        st.segmented_control,
        "kvhead",
        "KV head",
        value=page.kv_head,
        options=list(range(page.shape.kv_heads)),
        required=True,
    )
rows_args = (page.reads, page.grid_on.labels, page.layer, page.kv_head)
parts = draw.specs(partial(charts.cached_row_parts, *rows_args))
for column, part in zip(st.columns([2, 2, 1]), parts, strict=True):
    column.vega_lite_chart(spec=part, width="stretch")
draw.chart_downloads(partial(charts.cached_rows, *rows_args), files["rows"])
st.caption(page.reads_caption)
draw.data_downloads(resolved, files["data"], page, page.table)
