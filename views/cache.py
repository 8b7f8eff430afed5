"""Cache on vs off: the same tokens, what the cache saves, and what it holds at each step."""

import streamlit as st

from lib import cache_compare
from lib.cache_compare import CellState
from lib.charts import cache as charts
from lib.config import MAX_SEED
from lib.trace import decode_text
from lib.ui import cache as ui
from lib.ui import resources, share, state, text
from lib.ui.state import bound

cfg = state.current().config
st.title("“The KV cache is just an optimization”")
opening = st.container()

st.header("1 · Same result")
left, right = st.columns(2)
with left:
    bound(
        st.segmented_control,
        "dtype",
        "Precision of the weights",
        options=["float32", "bfloat16"],
        required=True,
        help="In bfloat16 the cached and uncached kernels round differently.",
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

lm = resources.loaded_model(cfg)
prompt = resources.encoded_prompt(cfg)
on, off = ui.both_runs(cfg, prompt.ids)
comparison = cache_compare.compare(on, off)
saved = cache_compare.savings(on, off)
decoding = "greedy decoding" if cfg.seed is None else f"sampling with seed {cfg.seed}"

prompt_text = decode_text(lm, prompt.ids)
generated = {}
for column, run, mode in ((left, on, "on"), (right, off, "off")):
    generated[f"cache {mode}"] = decode_text(lm, run.new_ids)
    column.subheader(f"Cache {mode}")
    column.markdown(text.continuation(prompt_text, generated[f"cache {mode}"], done=True))
    column.caption(f"{len(run.steps)} tokens, {decoding}, {cfg.dtype}.")

verdict = comparison.summary
if comparison.same_tokens and comparison.first_drift is None:
    st.success(
        f"**{verdict}** over all {comparison.steps} steps: the cache changed no token, and the "
        "logits only by the rounding of the two kernels.",
        icon="✅",
    )
elif comparison.same_tokens:
    st.warning(
        f"**{verdict}**. In {cfg.dtype} the two kernels round differently: the logits drift "
        f"by more than {cache_compare.FLOAT32_TOLERANCE:g} from step {comparison.first_drift} "
        "on, but every token held.",
        icon="⚠️",
    )
else:
    chose, instead = comparison.parting_labels
    st.warning(
        f"**{verdict}** (logits compared up to the step where the texts part). The two runs' "
        f"logits differ in {cfg.dtype} (max |Δlogit| above), and at step "
        f"{comparison.first_parting} the texts part: `{chose}` with the cache, `{instead}` "
        "without.",
        icon="⚠️",
    )

st.header("2 · What it saves")
metrics = st.columns(5)
metrics[0].metric("Time, cache on", f"{saved.seconds_on:.2f} s")
metrics[1].metric("Time, cache off", f"{saved.seconds_off:.2f} s")
metrics[2].metric("Speedup", f"{saved.speedup:.1f}×")
metrics[3].metric("Cells, cache on", f"{saved.cells_on:,}")
metrics[4].metric("Cells, cache off", f"{saved.cells_off:,}")
shape = lm.shape
timing = (
    f"took {saved.speedup:.1f}× as long"
    if saved.speedup >= 1
    else "yet took less time this once: wall time on a shared CPU is noisy, counted cells are not"
)
st.caption(
    f"A cell is one token passing through one of the {shape.layers} layers, counted by hooks on "
    f"the decoder layers. Without the cache the model computed {saved.cells_ratio:.1f}× as many "
    f"cells and {timing}. Median step: {saved.median_step_on * 1000:.0f} ms with the cache, "
    f"{saved.median_step_off * 1000:.0f} ms without."
)
time_column, cells_column = st.columns(2)
with time_column:
    time_chart = charts.step_times(on.seconds, off.seconds)
    st.altair_chart(time_chart, width="stretch")
    share.chart_downloads(time_chart, ui.export_name(cfg, ("fig", "times")))
with cells_column:
    cells_chart = charts.step_cells(on.cells, off.cells)
    st.altair_chart(cells_chart, width="stretch")
    share.chart_downloads(cells_chart, ui.export_name(cfg, ("fig", "cells")))

size = cache_compare.cache_size(on, shape)
size_column, size_text = st.columns([3, 2])
with size_column:
    size_chart = charts.cache_size(size.tokens, size.measured, size.formula)
    st.altair_chart(size_chart, width="stretch")
    share.chart_downloads(size_chart, ui.export_name(cfg, ("fig", "size")))
agree = "equal the formula at every step" if size.agree else "DO NOT equal the formula"
size_text.markdown(
    f"**Measured on the cache tensors** after the last step: {int(size.tokens[-1])} tokens, "
    f"{int(size.measured[-1]):,} bytes ({text.human_bytes(int(size.measured[-1]))}).\n\n"
    f"**Formula:** 2 × {shape.layers} layers × {shape.kv_heads} KV heads × {shape.head_dim} "
    f"values × tokens × {shape.bytes_per_value} bytes = "
    f"{shape.cache_bytes_per_token:,} bytes per token.\n\n"
    f"The measured sizes {agree}; after the prompt, one step added at most "
    f"{size.largest_growth:,} bytes ({size.largest_growth / shape.cache_bytes_per_token:g} "
    "token's K and V)."
)

st.header("3 · Step through the decoding")
trace = resources.traced(cfg, prompt.ids + on.new_ids)
n_steps = len(on.steps)
step_column, grid_column = st.columns([3, 1])
with step_column:
    if n_steps > 1:
        state.clamped("step", cfg.step, n_steps)
        step = bound(
            st.slider,
            "step",
            "Decoding step",
            min_value=0,
            max_value=n_steps - 1,
        )
    else:
        step = 0
        st.caption("One step only: generate more tokens to step through them.")
with grid_column:
    offgrid = bound(
        st.segmented_control,
        "offgrid",
        "Cache-off grid too",
        options=["off", "on"],
        required=True,
    )

layer = state.clamped("layer", cfg.layer, shape.layers)
query = cache_compare.query_position(on, step)
labels_on = cache_compare.sequence_labels(trace.tokens[: len(prompt.ids)], on)
grid_on = cache_compare.cell_states(on, step, cache_compare.fed_positions(on))
counts_on = cache_compare.state_counts(grid_on)
fed = "the prompt" if step == 0 else f"`{labels_on[query]}` (position {query})"
st.markdown(
    f"**Step {step}** feeds {fed} and chooses `{on.steps[step].label}`. With the cache it "
    f"computes {counts_on[CellState.COMPUTED]} cells and reads "
    f"{counts_on[CellState.CACHED]} from the cache; without it the same step computes "
    f"{int(off.cells[cache_compare.step_within(off, step)])}. Click a cell to choose its layer "
    "below."
)
grid_on_chart = charts.cell_grid(
    grid_on, labels_on, layer, f"Cache on, step {step} (outlined: layer {layer}, read below)"
)
st.altair_chart(
    grid_on_chart,
    width="stretch",
    key="grid_on",
    on_select=ui.layer_from_click("grid_on", shape.layers),
    selection_mode=charts.GRID_SELECTION,
)
selected = (("step", step), ("layer", layer))
share.chart_downloads(grid_on_chart, ui.export_name(cfg, *selected, ("fig", "gridon")))
grids = {"cache on": ui.grid_data(grid_on, step)}
if offgrid == "on":
    off_step = cache_compare.step_within(off, step)
    grid_off = cache_compare.cell_states(off, off_step, cache_compare.fed_positions(off))
    counts_off = cache_compare.state_counts(grid_off)
    grid_off_chart = charts.cell_grid(
        grid_off,
        cache_compare.sequence_labels(trace.tokens[: len(prompt.ids)], off),
        layer,
        f"Cache off, step {off_step}: {counts_off[CellState.RECOMPUTED]} cells recomputed, "
        f"{counts_off[CellState.COMPUTED]} computed now",
    )
    st.altair_chart(
        grid_off_chart,
        width="stretch",
        key="grid_off",
        on_select=ui.layer_from_click("grid_off", shape.layers),
        selection_mode=charts.GRID_SELECTION,
    )
    share.chart_downloads(grid_off_chart, ui.export_name(cfg, *selected, ("fig", "gridoff")))
    grids["cache off"] = ui.grid_data(grid_off, off_step)

st.subheader("What the new token reads from the cache")
layer_column, head_column = st.columns([3, 1])
with layer_column:
    layer = bound(
        st.slider,
        "layer",
        "Layer",
        min_value=0,
        max_value=shape.layers - 1,
    )
with head_column:
    state.clamped("kvhead", cfg.kvhead, shape.kv_heads)
    kv_head = bound(
        st.segmented_control,
        "kvhead",
        "KV head",
        options=list(range(shape.kv_heads)),
        required=True,
    )
view = cache_compare.cache_view(trace, query, layer, kv_head)
rows_chart = charts.cached_rows(view, labels_on, layer, kv_head)
st.altair_chart(rows_chart, width="content")
rows_view = (("step", step), ("layer", layer), ("kvhead", kv_head))
share.chart_downloads(rows_chart, ui.export_name(cfg, *rows_view, ("fig", "rows")))
top, top_weight = view.most_read
st.caption(
    f"The cache of layer {layer}, KV head {kv_head}, at step {step}: one K row and one V row "
    f"of {shape.head_dim} values for each of the {query + 1} tokens fed so far (the last row is "
    f"the new token's own, written in this step). Query heads "
    f"{', '.join(map(str, view.heads))} share this KV head; on average they weigh "
    f"`{labels_on[top]}` (position {top}) most, {top_weight:.2f} of "
    "their attention. These rows are the past internal states the new token reads."
)

table = ui.step_table(on, off, comparison, size)
share.data_downloads(
    ui.PAGE,
    cfg,
    ui.export_name(cfg, *rows_view),
    ui.page_data(
        shape=shape,
        prompt_tokens=len(prompt.ids),
        generated=generated,
        comparison=comparison,
        saved=saved,
        size=size,
        table=table,
        step=step,
        labels=labels_on,
        grids=grids,
        view=view,
        layer=layer,
        kv_head=kv_head,
    ),
    table,
)

last = cache_compare.query_position(on, n_steps - 1)
if comparison.same_tokens:
    claim_one, agreement = "Right about the result.", "which is why the tokens agree"
else:
    claim_one = (
        f"Right up to rounding: in {cfg.dtype} the two runs' logits differ, and the "
        f"texts part at step {comparison.first_parting}."
    )
    agreement = "up to the rounding that parted the texts here"
cost_moved = "Only the cost moved" if comparison.same_tokens else "The cost moved too"
with opening:
    st.markdown(
        f"**“The KV cache is just an optimization.”** {claim_one} On your prompt the model"
        f" generated {comparison.steps} tokens twice ({decoding}, {cfg.dtype}), once "
        f"keeping the cache and once recomputing the whole sequence at every step: "
        f"**{verdict}**. {cost_moved}: {saved.cells_off:,} (token, layer) cells instead "
        f"of {saved.cells_on:,}; a median step of {saved.median_step_off * 1000:.0f} ms instead "
        f"of {saved.median_step_on * 1000:.0f} ms."
    )
    st.markdown(
        f"**“The cache is a store of past internal states.”** Right about what it holds. At the "
        f"last step the new token read, in each of the {shape.layers} layers, the K and V rows "
        f"of {last} earlier tokens and its own: {text.human_bytes(int(on.cache_bytes[-1]))} of "
        "the model's internal state, not of its text. Without the cache the very same states "
        f"are rebuilt from the text at every step, {agreement}. The past internal states are "
        "read either way; the cache decides only whether they are kept or recomputed."
    )
