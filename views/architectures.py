"""Transformer, RNN and feedback transformer: who can read what, each rule verified on a toy."""

from functools import partial

import streamlit as st

from lib import site
from lib.charts import architectures as charts
from lib.pages.architectures import architectures_page, waiting_text
from lib.ui import draw, resources, state
from lib.ui.state import bound, bound_in_range

cfg = state.view()
resolved = state.current()
with st.spinner(waiting_text()):  # a new grid runs three live checks
    page = architectures_page(cfg, resources.verification)
cell = page.cell

st.title(page.title)
draw.notices(page.notices)
st.markdown(page.intro)
st.markdown(page.loop)

size, depth, width, token, layer, generation = st.columns([3, 3, 2, 2, 2, 2])
with size:
    bound_in_range(st.slider, "tokens", "Tokens")
with depth:
    bound_in_range(st.slider, "layers", "Layers")
with width:
    bound_in_range(
        st.number_input,
        "width",
        "Width (numbers per vector)",
        help="Sets the state sizes below; the diagrams do not depend on it.",
    )
with token:
    bound(
        st.number_input,
        "token",
        "Selected token",
        value=cell.token,
        auto=page.auto.token,
        min_value=0,
        max_value=page.tokens - 1,
        help="Or click a cell in any diagram.",
    )
with layer:
    bound(
        st.number_input,
        "layer",
        "Selected layer",
        value=cell.layer,
        auto=page.auto.layer,
        min_value=0,
        max_value=page.layers,
        help="0 is the token's embedding; or click a cell in any diagram.",
    )
with generation:
    bound(
        st.segmented_control,
        "generation",
        "Generation",
        options=["off", "on"],
        required=True,
        help="Draw the sampled token: the top of token t−1 picks the input of token t.",
    )

key, where = st.columns([3, 2], vertical_alignment="center")
key.vega_lite_chart(
    spec=draw.specs(partial(charts.legend_chart, page.role_labels))[0], width="stretch"
)
where.markdown(page.selected)

bounds = (page.tokens, page.layers + 1)
for column, panel in zip(st.columns(3), page.panels, strict=True):
    with column:
        chart_key = f"diagram-{panel.name}-{cell.token}-{cell.layer}"
        draw.chart(
            partial(charts.diagram_chart, panel.diagram),
            panel.file_name,
            partial(charts.for_file, kind="diagram"),
            key=chart_key,
            on_select=state.copy_click(
                chart_key, charts.SELECTION, ("token", "layer"), ("token", "layer"), bounds
            ),
            selection_mode=charts.SELECTION,
        )
        st.caption(panel.cone_caption)
        st.markdown(panel.numbers_markdown)
        st.caption(panel.readable)
        if panel.gain:
            st.markdown(panel.gain)
        st.markdown(panel.check_markdown)

st.header(page.state_heading)
st.markdown(page.real_text)
st.markdown(page.sufficient)

st.header(page.curves_heading)
sizes, paths = st.columns(2)
with sizes:
    draw.chart(
        partial(
            charts.state_size_chart, page.sizes, cell.token, page.curve_labels, *page.size_title
        ),
        page.files["state-size"],
        partial(charts.for_file, kind="curve"),
    )
with paths:
    draw.chart(
        partial(charts.serial_path_chart, page.paths, page.curve_labels, *page.path_title),
        page.files["serial-path"],
        partial(charts.for_file, kind="curve"),
    )

for path, label in page.links.items():
    st.page_link(site.page(path).file, label=label, icon=site.page(path).icon)
draw.data_downloads(resolved, page.files["data"], page, page.table)
