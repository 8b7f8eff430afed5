"""Home: the question, the prompt as tokens, the model's continuation, the model's shape."""

import streamlit as st

from lib import export, markdown, site
from lib.pages.home import home_page
from lib.ui import draw, resources, state

cfg = state.view()
resolved = state.current()
live = st.empty()
shown: list[int] = []

with resources.lab(cfg) as lab:
    prompt_text = lab.text(lab.prompt(cfg.prompt).ids)

    def stream(step) -> None:
        """Each new token on the page as soon as it exists."""
        shown.append(step.token_id)
        live.markdown(markdown.continuation(prompt_text, lab.text(shown), done=False))

    page = home_page(cfg, lab, on_step=stream)

live.empty()
st.title(page.title)
st.markdown(page.intro)
draw.notices(page.notices)
st.subheader(page.prompt_heading)
st.markdown(markdown.token_chips(page.prompt_tokens))
st.subheader(page.continuation_heading)
st.markdown(page.continuation_markdown)
st.caption(page.continuation_caption)

st.subheader(page.model_heading)
shape = page.shape
for column, (label, value) in zip(
    st.columns(6),
    (
        ("Layers", shape.layers),
        ("Query heads", shape.heads),
        ("KV heads", shape.kv_heads),
        ("Hidden size", shape.hidden),
        ("Head size", shape.head_dim),
        ("Cache per token", markdown.human_bytes(shape.cache_bytes_per_token)),
    ),
    strict=True,
):
    column.metric(label, value)
st.caption(page.cache_caption)
draw.data_downloads(resolved, export.view_name("home", ("new", cfg.new)), page, None)

st.subheader(page.explore_heading)
for link in page.explore:
    st.page_link(site.page(link.path).file, label=link.label, icon="➡️")
    st.caption(link.summary)

st.subheader(page.tour_heading)
st.caption(page.tour_caption)
for card in page.tour:
    with st.container(border=True):
        st.markdown(f"**{card.number}. {markdown.escape_markdown(card.claim)}** · *{card.side}*")
        st.markdown(markdown.escape_markdown(card.look))
        st.page_link(
            site.page(card.link.path).file,
            label=card.link.label,
            query_params=card.link.params,
            icon="🔎",
        )
