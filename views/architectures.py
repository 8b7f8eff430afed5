"""Transformer, RNN and feedback transformer: who can read what, each rule verified on a toy."""

import streamlit as st

from lib.architectures import ARCHITECTURES, make_rule, step_numbers
from lib.charts import architectures as charts
from lib.ui import architectures as ui
from lib.ui import share, state

cfg = state.current().config
rules = {name: make_rule(name, cfg.layers) for name in ARCHITECTURES}
final = {
    name: step_numbers(rule, cfg.tokens - 1, cfg.tokens, cfg.width) for name, rule in rules.items()
}
tr, rnn, fb = final["transformer"], final["rnn"], final["feedback"]

grid_size = f"{ui.plural(cfg.tokens, 'token')} × {ui.plural(cfg.layers, 'layer')}"
past_tops = ui.plural(tr.step, "top-layer state")

st.title("Three ways to carry the past")
st.markdown(
    f"""
A remark from the source threads: a transformer is *pyramidal, not a straight line*. On a grid of
**{grid_size}**, the longest chain of dependent computations from token 0 to token {tr.step} is
**{tr.longest_path}** in a transformer of depth {cfg.layers}, since every hop to a later token
climbs a layer; it is **{rnn.longest_path}** in a stacked RNN and **{fb.longest_path}** in a
feedback transformer, whose chains run straight through time.

Each shape has its price. Token {tr.step}'s top layer depends on **{tr.past_tops_in_cone} of the
{past_tops}** of earlier tokens in the transformer ({rnn.past_tops_in_cone} in the RNN,
{fb.past_tops_in_cone} in the feedback transformer), although its KV cache carries
{tr.state_values:,} numbers into that step. The RNN squeezes the past into {rnn.state_values:,}
numbers, the feedback transformer into {fb.state_values:,} (width {cfg.width}); but training on
{ui.plural(cfg.tokens, "token")} then takes {rnn.training_steps} and {fb.training_steps} steps one
after another, against {tr.training_steps} for the transformer.
"""
)

view = ui.controls(cfg)
t, layer = view.cell
key, where = st.columns([3, 2], vertical_alignment="center")
where.markdown(f"**Selected cell: token {t}, layer {layer}.** Click any cell to move it.")
key.altair_chart(charts.legend_chart(), width="stretch")

numbers, cells, checks = {}, {}, {}
for column, (name, rule) in zip(st.columns(3), rules.items(), strict=True):
    diagram = charts.diagram_data(rule, view.cell, view.tokens)
    numbers[name] = step_numbers(rule, t, view.tokens, view.width)
    cells[name] = diagram.cells
    with column:
        chart = charts.diagram_chart(diagram)
        ui.clickable_diagram(chart, name, view)
        share.chart_downloads(ui.for_export(chart, "diagram"), ui.export_name(view, name))
        st.caption(
            f"Backward cone: {ui.plural(diagram.count('past'), 'cell')} · "
            f"forward reach: {ui.plural(diagram.count('future'), 'cell')}"
        )
        st.markdown(ui.numbers_markdown(numbers[name], view.layers))
        st.caption(numbers[name].readable_past)
        with st.spinner("Checking the toy model…"):
            checks[name] = ui.verification(name, view.tokens, view.layers)
        st.markdown(
            f"**Live check on a tiny {rule.label} in torch** ({grid_size}, random weights):  \n"
            f"{ui.verification_markdown(checks[name])}"
        )

size_data = charts.state_size_data(view.layers, view.tokens, view.width)
path_data = charts.serial_path_data(view.layers, view.tokens)
sizes, paths = st.columns(2)
with sizes:
    chart = charts.state_size_chart(size_data, t)
    st.altair_chart(chart, width="stretch")
    share.chart_downloads(ui.for_export(chart, "curve"), ui.export_name(view, "state-size"))
with paths:
    chart = charts.serial_path_chart(path_data, view.layers)
    st.altair_chart(chart, width="stretch")
    share.chart_downloads(ui.for_export(chart, "curve"), ui.export_name(view, "serial-path"))

ui.flow_link(cfg)
st.page_link(
    "views/tracking.py",
    label="See the difference trained: variable tracking, transformer vs feedback → /tracking",
    icon="🧮",
)
data, table = ui.export_data(view, numbers, cells, checks, size_data, path_data)
share.data_downloads(ui.PAGE, cfg, ui.export_name(view), data, table)
