"""/flow: which layer-(l−1) states of earlier tokens feed a later token, how strongly, how far a
chain of hops can climb, and what later tokens do when one token's cached states are edited."""

import math

import streamlit as st

from lib import export, flow
from lib.charts import flow as charts
from lib.settings import SETTINGS
from lib.surgery import CacheEdit
from lib.trace import decode_text, token_labels
from lib.ui import flow as ui
from lib.ui import resources, share, state, text

PAGE = "flow"
cfg = state.current().config
st.title("What feeds a token: the earlier states it reads")

lm = resources.loaded_model(cfg)
run = resources.session_run(cfg)
trace = run.trace
if trace.n_tokens > SETTINGS.max_grid_tokens:  # the gradient and surgery grids are bounded
    st.warning(
        f"This page works on at most {SETTINGS.max_grid_tokens} tokens (the gradient and "
        f"surgery views grow with the square of the length); your {trace.n_tokens} tokens are "
        f"cut to the first {SETTINGS.max_grid_tokens}. Generate fewer tokens to see them all.",
        icon="✂️",
    )
    trace = resources.traced(cfg, tuple(trace.token_ids[: SETTINGS.max_grid_tokens].tolist()))
shape = lm.shape
n_tokens, n_layers, labels = trace.n_tokens, trace.n_layers, trace.tokens
n_prompt = min(run.n_prompt, n_tokens)
group = shape.heads // shape.kv_heads

st.markdown(
    f"**The claim.** When {lm.spec.label} computes token *t* at layer *l*, the attention of "
    f"that layer reads keys and values it computed from the layer-below states of **every** "
    f"token up to *t*: internal states of earlier tokens, not their words. The KV cache is "
    f"where those states wait. Below, your {n_tokens} tokens "
    f"({n_prompt} of the prompt, {n_tokens - n_prompt} "
    f"generated) run across and the {n_layers + 1} rows (the "
    f"embedding, then {n_layers} layers) run up; every square is one hidden state.\n\n"
    "**Start here:** click a square high up on a late token (or press the example button). "
    "Its incoming edges appear in the grid; the cone below measures, with a real backward "
    "pass, which earlier states move it; the last section edits one token's cache and "
    "watches the later predictions move while every word stays the same."
)

token = state.clamped("token", cfg.token, n_tokens)
layer = state.clamped("layer", cfg.layer, n_layers + 1)
head = ui.clamped_head(cfg.head, shape.heads)
cell = flow.Cell(token, layer)
selected = (("token", token), ("layer", layer))  # the parts of a file name that pick the cell

columns = st.columns([3, 3, 1.3, 1.3, 2])
with columns[0]:
    state.bound(st.slider, "token", "Token (column)", min_value=0, max_value=n_tokens - 1)
with columns[1]:
    state.bound(st.slider, "layer", "Layer (row)", min_value=0, max_value=n_layers)
heads = ["all", *(str(h) for h in range(shape.heads))]
with columns[2]:
    state.bound(
        st.selectbox,
        "head",
        "Query head",
        options=heads,
        help=f"{shape.heads} query heads share {shape.kv_heads} KV heads: query head h reads "
        f"the cached K/V of KV head h // {group}.",
    )
with columns[3]:
    state.bound(
        st.radio,
        "agg",
        "All heads by",
        options=("mean", "max"),
        disabled=head != "all",
    )
weights = {"attn": "attention", "value": "attention × ‖W_O v‖"}
with columns[4]:
    state.bound(
        st.radio,
        "weight",
        "Edge weight",
        options=list(weights),
        captions=list(weights.values()),
        help="attention × the norm of the value vector after the output projection: how much "
        "a source really adds to the head's output (Kobayashi et al., 2020).",
    )
st.button(
    f"Example: the last token at layer {n_layers // 2}",
    on_click=ui.select_cell,
    args=(n_tokens - 1, n_layers // 2),
)

# 1–2. The grid, and what feeds the selected cell
norms = ui.value_norms(cfg, lm, trace)
edges = flow.incoming_edges(trace, norms, cell, head, cfg.agg, cfg.weight)
cones = flow.structural_cones(cell, n_tokens, n_layers)
if head == "all":
    heads_read = f"the {cfg.agg} over all {shape.heads} query heads"
else:
    kv_head = flow.kv_head_of(int(head), shape.heads, shape.kv_heads)
    heads_read = f"query head {head} (it reads KV head {kv_head})"
heads_part = (("head", head), ("agg", cfg.agg)) if head == "all" else (("head", head),)
edges_name = export.view_name(PAGE, *selected, *heads_part, ("weight", cfg.weight))
edge_table = edges.table(labels) if edges.attention.size else None
st.subheader(f"What feeds token {token} “{labels[token]}” at layer {layer}")
chart_column, table_column = st.columns([5, 2])
with chart_column:
    grid = charts.grid_chart(labels, n_layers, cones, edges)
    st.altair_chart(
        grid,
        key=ui.GRID_KEY,
        on_select=ui.select_on_click(ui.GRID_KEY),
        selection_mode=charts.SELECTION,
        width="stretch",
    )
    share.chart_downloads(charts.for_file(grid, n_tokens), f"{edges_name}-figgrid")
with table_column:
    if edge_table is not None:
        st.dataframe(
            edge_table,
            hide_index=True,
            height=ui.table_height(token + 1, charts.plot_height(n_layers + 1)),
            column_config={
                "token": st.column_config.NumberColumn("#", width="small"),
                "text": st.column_config.TextColumn(width="small"),
                "attention": st.column_config.NumberColumn("attn", format="%.3f"),
                "attn × ‖W_O v‖": st.column_config.NumberColumn("attn×‖W_O v‖", format="%.3f"),
                "% of attention": st.column_config.NumberColumn("% attn", format="%.0f"),
                "% of value-weighted": st.column_config.NumberColumn("% value", format="%.0f"),
            },
        )
    else:
        st.info(
            f"Row 0 is the embedding of “{labels[token]}”: it reads no other token. Pick a row "
            "of 1 or more to see what feeds it."
        )
if edges.attention.size:
    top, carried = edges.most_attended, edges.most_carried
    contrast = (
        f" The source that carries most is token {carried} “{labels[carried]}”: "
        f"{edges.value_share[carried]:.0%} of the value-weighted flow for "
        f"{edges.attention_share[carried]:.0%} of the attention — high attention can carry "
        "little."
        if carried != top
        else " It also carries the most once value norms are counted."
    )
    st.caption(
        f"Cell ({token}, {layer}) is the output of decoder layer {layer - 1}. Its attention, "
        f"{heads_read}, reads the K/V that layer computed from row {layer - 1} of the "
        f"{token + 1} tokens 0…{token}: the edges, wider for more {weights[cfg.weight]}. Most "
        f"attention goes to token {top} "
        f"“{labels[top]}” ({edges.attention_share[top]:.0%} of it), which carries "
        f"{edges.value_share[top]:.0%} of the value-weighted flow.{contrast}"
    )

# 3. The cone, measured
st.subheader("The cone: what can move this state, measured by gradients")
cone = ui.gradient_cone(cfg, lm, trace, cell)
stairs = flow.staircase(cell, n_tokens, n_layers)
summary = flow.cone_summary(cone, cones)
cone_figure = charts.cone_chart(labels, cone, cones, stairs)
st.altair_chart(
    cone_figure,
    key=ui.CONE_KEY,
    on_select=ui.select_on_click(ui.CONE_KEY),
    selection_mode=charts.SELECTION,
    width="stretch",
)
share.chart_downloads(
    charts.for_file(cone_figure, n_tokens), export.view_name(PAGE, *selected, ("fig", "cone"))
)
strongest = (
    f" Among the direct parents (row {layer - 1}), the earlier token that moves it most is "
    f"token {summary.strongest_parent} “{labels[summary.strongest_parent]}”, with "
    f"{summary.strongest_parent_ratio:.2f}× the gradient of the token's own parent."
    if summary.strongest_parent is not None
    else ""
)
reach = f"Orange: the {int(cones.forward.sum())} states the selected one can reach."
if summary.inside:
    st.caption(
        f"Blue: ‖∂s/∂h‖ for every state h, where s is the selected state projected on a fixed "
        f"random direction, from one real backward pass over all {n_tokens} tokens. By "
        f"structure {summary.inside} states can influence the selected one (every "
        f"earlier-or-same token, every lower row); {summary.inside_nonzero} of them have a "
        f"non-zero gradient, and the largest gradient among the other {summary.outside} states "
        f"is {summary.outside_max:g}.{strongest} Each row has its own scale, so "
        f"compare shades within a row. {reach}"
    )
else:
    st.caption(
        (
            "An embedding depends on its own token only: the backward pass finds no gradient "
            "on any other state."
            if summary.outside_max == 0
            else f"The backward pass of this embedding finds gradients of up to "
            f"{summary.outside_max:g} on other states."
        )
        + f" {reach}"
    )
st.markdown(
    f"**The staircase (red).** What token *i* computes at row *l* reaches token *i+1* no lower "
    f"than row *l+1*: one layer per token-to-token hop. Above this cell the stack has room for "
    f"{ui.count(stairs.hops_above, 'more dependent hop')} before the top row; a chain "
    "that needs more must leave through the emitted token and re-enter at the embedding row of "
    f"the next one. At most {ui.count(stairs.hops_below, 'hop')} can have led into this cell "
    "within one pass."
)

# 4. Cache surgery
st.subheader("Cache surgery: edit one token's cached states, keep every word")
src = state.clamped("src", cfg.src, n_tokens - 1)
first = state.clamped("from", cfg.from_, n_layers)
last = state.clamped("to", cfg.to, n_layers)
other = state.clamped("other", cfg.other, n_tokens)
edit_kinds = {"zero": "zero them", "mean": "mean over tokens", "token": "another token's"}
controls = st.columns([2, 2, 2, 2, 3])
with controls[0]:
    state.bound(  # a number input: with two tokens the only source is 0, and a slider refuses
        st.number_input,
        "src",
        "Source token",
        min_value=0,
        max_value=n_tokens - 2,
    )
with controls[1]:
    state.bound(st.number_input, "from", "From layer", min_value=0, max_value=n_layers - 1)
with controls[2]:
    state.bound(st.number_input, "to", "To layer", min_value=0, max_value=n_layers - 1)
with controls[3]:
    state.bound(
        st.radio,
        "edit",
        "Replace K and V by",
        options=list(edit_kinds),
        captions=list(edit_kinds.values()),
    )
with controls[4]:
    state.bound(
        st.slider,
        "other",
        "Other token (for “another token's”)",
        min_value=0,
        max_value=n_tokens - 1,
        disabled=cfg.edit != "token",
    )
if first > last:
    st.warning(f"`from` ({first}) is above `to` ({last}): editing layers {last}–{first}.")
    first, last = last, first
edit = CacheEdit(src, first, last, cfg.edit, other)
edit_parts = (("src", src), ("from", first), ("to", last), ("edit", cfg.edit))
if cfg.edit == "token":
    edit_parts += (("other", other),)
layers_text = f"layer {first}" if first == last else f"layers {first}–{last}"
rows_text = "Row 0" if first == 0 else f"Rows 0–{first}"
result = ui.run_surgery(cfg, lm, trace, n_prompt, edit)
done = {
    "zero": "set to zero",
    "mean": f"replaced by their mean over all {n_tokens} tokens",
    "token": f"replaced by those of token {other} “{labels[other]}”",
}[cfg.edit]
st.markdown(
    f"The cached K and V of token {src} “{labels[src]}” in {layers_text} were "
    f"{done}; every word stays the same. Every later position was recomputed on that cache."
)
surgery_figure = charts.surgery_chart(labels, result)
st.altair_chart(surgery_figure, width="stretch")
share.chart_downloads(
    charts.for_file(surgery_figure, n_tokens),
    export.view_name(PAGE, *edit_parts, ("fig", "surgery")),
)
metrics = st.columns(4)
metrics[0].metric("Mean KL (nats)", f"{result.kl.mean():.3f}")
metrics[1].metric("Largest KL (nats)", f"{result.kl.max():.3f}")
metrics[2].metric("Top-1 changed", f"{int(result.top_changed.sum())} of {result.positions.size}")
metrics[3].metric(
    "Change before the source",
    f"{result.prefix_change:.0e}",
    help="Largest relative change of any state of the positions up to the source: they ran "
    "before the edit.",
)
float_error = "; float error of the split pass" if result.below_edit_change < 1e-4 else ""
st.caption(
    f"{rows_text} of later tokens cannot read the edit: they moved by at most "
    f"{result.below_edit_change:.1e} (relative{float_error}). Row {first + 1}, "
    f"the first that reads the edited cache, moved by up to {result.above_edit_change:.3f}."
)
surgery_table = result.table(
    labels, token_labels(lm, result.top_before), token_labels(lm, result.top_after)
)
with st.expander("Numbers per later position"):
    st.dataframe(surgery_table, hide_index=True)

prefix_text = decode_text(lm, trace.token_ids[: result.start])
text_before = decode_text(lm, result.continuation_before)
text_after = decode_text(lm, result.continuation_after)
diverge = result.first_divergence
before_column, after_column = st.columns(2)
with before_column:
    st.markdown("**Greedy continuation from the unedited cache**")
    st.markdown(text.continuation(prefix_text, text_before, True))
with after_column:
    st.markdown("**Greedy continuation from the edited cache**")
    st.markdown(text.continuation(prefix_text, text_after, True))
st.caption(
    f"Both are {ui.count(len(result.continuation_before), 'greedy token')} after position "
    f"{result.start - 1}. "
    + (
        "They agree token for token."
        if diverge is None
        else f"They part at regenerated token {diverge}: the edited internal state changed "
        "what the model wrote."
    )
)

# 5. Export: what the page shows, with the configuration that reproduces it (the JSON is built
# only when the button is pressed; these are references to numbers already computed above).
ratio = summary.strongest_parent_ratio
share.data_downloads(
    PAGE,
    cfg,
    edges_name,
    {
        "tokens": list(labels),
        "n_prompt": n_prompt,
        "cell": {"token": token, "layer": layer},
        "edges": {
            "heads": heads_read,
            "source_row": edges.source_row if edge_table is not None else None,
            "table": edge_table,
        },
        "cone": {
            "gradient_norms_by_row": cone.norms,  # (layers + 1, tokens): row 0 = embedding
            "inside": summary.inside,
            "inside_nonzero": summary.inside_nonzero,
            "outside": summary.outside,
            "outside_max": summary.outside_max,
            "strongest_parent": summary.strongest_parent,
            "strongest_parent_ratio": ratio if math.isfinite(ratio) else None,
            "staircase": [[step.token, step.layer] for step in stairs.cells],
            "hops_above": stairs.hops_above,
            "hops_below": stairs.hops_below,
        },
        "surgery": {
            "edit": {"src": src, "from": first, "to": last, "kind": cfg.edit, "other": other},
            "per_position": surgery_table,
            "row_change": result.row_change,
            "prefix_change": result.prefix_change,
            "below_edit_change": result.below_edit_change,
            "above_edit_change": result.above_edit_change,
            "continuation_before": text_before,
            "continuation_after": text_after,
            "first_divergence": result.first_divergence,
        },
    },
    edge_table,
)
