"""/readable: what a later token can read of an earlier one — the widths, how much of the MLP's
wide activation linear probes recover from K and V, and patching K/V between two prompts."""

from functools import partial

import streamlit as st

from lib.charts import readable as charts
from lib.config import MAX_PAIR_CHARS
from lib.export import view_name
from lib.pages.readable import readable_page
from lib.ui import draw, resources, state
from lib.ui.state import bound

R2_KEY = "readable_r2"

cfg = state.view()
resolved = state.current()
page = resources.page_model(readable_page, cfg)
layer, top = page.layer, page.shape.layers - 1


def name(*parts: tuple[str, object]) -> str:
    """The file name of one figure or of the page's data: `readable-layer12-figr2`."""
    return view_name("readable", *parts)


st.title(page.title)
draw.notices(page.notices)
for paragraph in page.opening:
    st.markdown(paragraph)

bound(
    st.slider,
    "layer",
    "Layer ℓ (its MLP activation, read from the K/V of layer ℓ + 1)",
    value=layer,
    auto=page.auto_layer,
    min_value=0,
    max_value=page.probed_layers - 1,
)

st.header(page.headings["widths_section"])
draw.chart(
    partial(charts.widths_chart, page.widths, layer), name(("layer", layer), ("fig", "widths"))
)
st.caption(page.widths_caption)

st.header(page.headings["probe_section"])
st.markdown(page.probe_summary)
draw.chart(
    partial(
        charts.r2_chart, page.readable_r2, page.ceiling_r2, page.floor_r2, page.prompt_scores, layer
    ),
    name(("layer", layer), ("fig", "r2")),
    key=R2_KEY,
    on_select=state.copy_click(
        R2_KEY, charts.LAYER_SELECTION, ("layer",), ("layer",), (page.probed_layers,)
    ),
    selection_mode=charts.LAYER_SELECTION,
)
st.caption(page.chart_caption)
st.subheader(page.layer_heading)
st.markdown(page.layer_text)
st.caption(page.prompt_caption)
st.markdown(page.below_ceiling)
st.markdown(page.layer0_text)
st.caption(page.fit_caption)

st.header(page.headings["patch_section"])
st.markdown(page.side)
st.markdown(page.patch_intro)
st.markdown(f"**{page.labels['pairs_label']}**")
for column, preset in zip(st.columns(len(page.presets)), page.presets, strict=True):
    with column:
        st.button(
            preset.label,
            on_click=state.setter(clean=preset.clean, corrupt=preset.corrupt),
            width="stretch",
        )
texts = st.columns(2)
for column, key in zip(texts, ("clean", "corrupt"), strict=True):
    with column:
        bound(st.text_input, key, page.labels[f"{key}_label"], max_chars=MAX_PAIR_CHARS)
controls = st.columns(4)
for column, key, value in (
    (controls[0], "from", page.patch_from),
    (controls[1], "to", page.patch_to),
):
    with column:
        label = page.labels[f"{key}_label"]
        bound(st.number_input, key, label, value=value, min_value=0, max_value=top)

if page.patch_notice:
    st.info(page.patch_notice, icon="ℹ️")
patch = page.patch
if patch is not None:
    st.markdown(patch.pair_text)
    span = (("from", patch.first), ("to", patch.last))
    for column, bars, fig in zip(
        st.columns(3), patch.bars, ("clean", "corrupt", "patched"), strict=True
    ):
        with column:
            st.subheader(bars.heading)
            draw.chart(
                partial(charts.next_token_bars, bars.labels, bars.probs, bars.kinds),
                name(*span, ("fig", fig)),
            )
    st.caption(page.bars_caption)
    st.markdown(patch.restored_text)
    st.subheader(page.headings["curve_heading"])
    draw.chart(partial(charts.restoration_chart, patch.curve), name(("fig", "restored")))
    st.caption(patch.curve_caption)
    st.markdown(patch.curve_text)
    st.markdown(page.patch_means)

draw.data_downloads(resolved, name(("layer", layer)), page, page.table)
