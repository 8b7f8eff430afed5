"""Home: the question, the prompt as tokens, the model's continuation, the model's shape."""

import dataclasses

import streamlit as st

from lib import content, export
from lib.trace import decode_text, token_labels
from lib.ui import resources, share, state, text

cfg = state.current().config
st.title(content.page_text("home", "title"))
st.markdown(content.page_text("home", "intro"))

lm = resources.loaded_model(cfg)
prompt = resources.encoded_prompt(cfg)

st.subheader(f"Your prompt, as the model sees it: {len(prompt.ids)} tokens")
st.markdown(text.token_chips(token_labels(lm, prompt.ids)))

st.subheader("The model's continuation")
prompt_text = decode_text(lm, prompt.ids)  # as the model read it, after any cut
live = st.empty()
shown: list[int] = []


def stream(step) -> None:
    shown.append(step.token_id)
    live.markdown(text.continuation(prompt_text, decode_text(lm, shown), done=False))


run = resources.generation(cfg, prompt.ids, on_step=stream)
live.markdown(text.continuation(prompt_text, decode_text(lm, run.new_ids), done=True))
decoding = "greedy decoding" if cfg.seed is None else f"sampling with seed {cfg.seed}"
st.caption(
    f"{len(run.steps)} tokens, {decoding} with the KV cache on, "
    f"{run.seconds.sum():.2f} s of forward passes on this machine's CPU."
)

shape = lm.shape
st.subheader(f"The model: {lm.spec.label}")
columns = st.columns(6)
columns[0].metric("Layers", shape.layers)
columns[1].metric("Query heads", shape.heads)
columns[2].metric("KV heads", shape.kv_heads)
columns[3].metric("Hidden size", shape.hidden)
columns[4].metric("Head size", shape.head_dim)
columns[5].metric("Cache per token", text.human_bytes(shape.cache_bytes_per_token))
held = len(prompt.ids) + len(run.steps) - 1  # the last token chosen was never fed back
st.caption(
    f"Every token leaves 2 × {shape.layers} layers × {shape.kv_heads} KV heads × "
    f"{shape.head_dim} values × {shape.bytes_per_value} bytes = "
    f"{text.human_bytes(shape.cache_bytes_per_token)} in the cache. After this run the cache "
    f"held {held} tokens: {text.human_bytes(int(run.cache_bytes[-1]))}, measured on its tensors."
)
share.data_downloads(
    "home",
    cfg,
    export.view_name("home", ("new", cfg.new)),
    {
        "prompt_tokens": token_labels(lm, prompt.ids),
        "continuation": decode_text(lm, run.new_ids),
        "continuation_tokens": [step.label for step in run.steps],
        "step_seconds": run.seconds,
        "cache_bytes": run.cache_bytes,
        "shape": dataclasses.asdict(shape),
    },
)

st.subheader("Explore")
for name, summary in content.texts()["pages"].items():
    st.page_link(content.page_file(name), label=f"/{name}", icon="➡️")
    st.caption(summary)

st.subheader("A guided tour of the debate")
st.caption("Each step is a claim from the forum threads, paraphrased, and the view that tests it.")
for number, step in enumerate(content.tour(), start=1):
    with st.container(border=True):
        st.markdown(f"**{number}. {text.escape_markdown(step.claim)}** · *{step.side}*")
        st.markdown(text.escape_markdown(step.look))
        st.page_link(
            content.page_file(step.page),
            label=f"Open /{step.page}" if step.page else "Stay on this page",
            query_params=step.params,
            icon="🔎",
        )
