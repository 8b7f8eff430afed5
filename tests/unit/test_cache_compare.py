"""Cache on vs off: the verdict, the per-step cell grid, the cache-size formula, the charts."""

import dataclasses
import io
import json
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lib import cache_compare, export, models
from lib.cache_compare import CellState
from lib.charts import cache as charts
from lib.charts import clicked
from lib.config import ViewConfig
from lib.generate import generate
from lib.trace import encode_prompt, run_trace
from lib.ui import cache as ui

PROMPT = (4, 5, 6, 7)
NEW = 6


@pytest.fixture(scope="module")
def runs(tiny):
    return generate(tiny, PROMPT, NEW, use_cache=True), generate(tiny, PROMPT, NEW, False)


def with_steps(run, changes):
    """A copy of `run` whose steps at the given indices are changed as given."""
    steps = list(run.steps)
    for index, change in changes.items():
        steps[index] = dataclasses.replace(steps[index], **change)
    return dataclasses.replace(run, steps=tuple(steps))


@pytest.mark.parametrize("seed", [None, 3])
def test_identical_runs_give_a_full_verdict(tiny, seed):
    on = generate(tiny, PROMPT, NEW, use_cache=True, seed=seed)
    off = generate(tiny, PROMPT, NEW, use_cache=False, seed=seed)
    comparison = cache_compare.compare(on, off)
    assert comparison.verdict == f"{len(on.steps)}/{len(on.steps)} tokens identical"
    assert comparison.same_tokens and comparison.first_parting is None
    assert comparison.first_drift is None and comparison.parting_labels is None
    assert comparison.step_abs_dlogit.shape == (len(on.steps),)
    assert comparison.max_abs_dlogit < cache_compare.FLOAT32_TOLERANCE
    assert comparison.summary.startswith(comparison.verdict + " · max |Δlogit| = ")


def test_logits_are_compared_only_while_the_runs_share_a_context(runs):
    on, off = runs
    other = (on.steps[3].token_id + 1) % 256
    parted = with_steps(
        off,
        {
            3: {"token_id": other, "label": "X", "logits": off.steps[3].logits + 0.5},
            4: {"logits": off.steps[4].logits + 10.0},  # after the parting: not comparable
        },
    )
    comparison = cache_compare.compare(on, parted)
    assert comparison.identical == NEW - 1 and comparison.steps == NEW
    assert comparison.first_parting == 3
    assert comparison.parting_labels == (on.steps[3].label, "X")
    assert comparison.step_abs_dlogit.shape == (4,)
    assert comparison.max_abs_dlogit == pytest.approx(0.5, abs=1e-3)
    assert comparison.first_drift == 3


def test_drift_without_parting_is_reported_at_its_first_step(runs):
    on, off = runs
    drifted = with_steps(off, {2: {"logits": off.steps[2].logits + 0.01}})
    comparison = cache_compare.compare(on, drifted)
    assert comparison.same_tokens and comparison.first_drift == 2


def test_a_run_that_stops_early_parts_where_it_stops(runs):
    on, off = runs
    shorter = dataclasses.replace(off, steps=off.steps[:4])
    comparison = cache_compare.compare(on, shorter)
    assert comparison.steps == NEW and comparison.identical == 4
    assert comparison.first_parting == 4
    assert comparison.parting_labels == (on.steps[4].label, "(end)")


def test_cell_states_follow_what_the_hooks_counted(runs, tiny):
    on, off = runs
    layers, n_prompt = tiny.shape.layers, len(PROMPT)
    positions = cache_compare.fed_positions(on)
    assert positions == n_prompt + NEW - 1 == cache_compare.fed_positions(off)
    for step in range(NEW):
        grid_on = cache_compare.cell_states(on, step, positions)
        grid_off = cache_compare.cell_states(off, step, positions)
        count_on, count_off = (cache_compare.state_counts(g) for g in (grid_on, grid_off))
        assert grid_on.shape == (layers, positions)
        assert count_on[CellState.COMPUTED] + count_on[CellState.RECOMPUTED] == on.cells[step]
        assert count_off[CellState.COMPUTED] + count_off[CellState.RECOMPUTED] == off.cells[step]
        assert count_on[CellState.RECOMPUTED] == 0 and count_off[CellState.CACHED] == 0
        query = cache_compare.query_position(on, step)
        assert query == n_prompt - 1 + step == cache_compare.query_position(off, step)
        assert (grid_on[:, query + 1 :] == CellState.NOT_YET).all()
        if step:
            # cache on: one new column, every earlier one read; off: every earlier one again
            assert (grid_on[:, query] == CellState.COMPUTED).all()
            assert (grid_on[:, :query] == CellState.CACHED).all()
            assert (grid_off[:, query] == CellState.COMPUTED).all()
            assert (grid_off[:, :query] == CellState.RECOMPUTED).all()
        else:
            assert (grid_on[:, :n_prompt] == CellState.COMPUTED).all()
            np.testing.assert_array_equal(grid_on, grid_off)


def test_the_off_grid_of_a_shorter_run_uses_its_last_step(runs):
    on, off = runs
    shorter = dataclasses.replace(off, steps=off.steps[:2])
    assert cache_compare.step_within(shorter, 5) == 1
    assert cache_compare.step_within(on, 5) == 5


@pytest.mark.parametrize("dtype, bytes_per_value", [("float32", 4), ("bfloat16", 2)])
def test_measured_cache_bytes_equal_the_formula(dtype, bytes_per_value):
    lm = models.load("tiny-random", dtype)
    run = generate(lm, PROMPT, NEW, use_cache=True)
    size = cache_compare.cache_size(run, lm.shape)
    config = lm.model.config
    tokens = len(PROMPT) + np.arange(NEW)
    expected = (
        2
        * config.num_hidden_layers
        * config.num_key_value_heads
        * config.head_dim
        * tokens
        * bytes_per_value
    )
    np.testing.assert_array_equal(size.tokens, tokens)
    np.testing.assert_array_equal(size.measured, expected)  # measured on the cache tensors
    np.testing.assert_array_equal(size.formula, expected)
    assert size.agree


def test_savings_add_up_the_steps(runs):
    on, off = runs
    saved = cache_compare.savings(on, off)
    assert saved.cells_on == on.cells.sum() and saved.cells_off == off.cells.sum()
    assert saved.cells_ratio > 1
    assert saved.speedup == pytest.approx(off.seconds.sum() / on.seconds.sum())
    assert saved.median_step_on == pytest.approx(np.median(on.seconds))
    assert saved.median_step_off == pytest.approx(np.median(off.seconds))


@pytest.mark.parametrize(
    "heads, kv_heads, kv_head, expected",
    [(9, 3, 1, (3, 4, 5)), (6, 2, 0, (0, 1, 2)), (6, 2, 1, (3, 4, 5)), (4, 4, 2, (2,))],
)
def test_query_heads_sharing_a_kv_head(heads, kv_heads, kv_head, expected):
    assert cache_compare.kv_group_heads(heads, kv_heads, kv_head) == expected


def test_cache_view_reads_the_trace_rows_of_the_step(tiny, runs):
    on, _ = runs
    trace = run_trace(tiny, PROMPT + on.new_ids)
    query = cache_compare.query_position(on, 3)
    view = cache_compare.cache_view(trace, query, layer=1, kv_head=1)
    assert view.heads == (3, 4, 5)
    np.testing.assert_array_equal(view.keys, trace.keys[1, 1, : query + 1])
    np.testing.assert_array_equal(view.values, trace.values[1, 1, : query + 1])
    assert view.attention.shape == (3, query + 1)
    np.testing.assert_allclose(view.attention.sum(axis=1), 1, atol=1e-5)
    row, weight = view.most_read
    assert weight == pytest.approx(view.attention[:, row].mean())
    assert weight == pytest.approx(view.attention.mean(axis=0).max())


@pytest.mark.parametrize(
    "selection, expected",
    [
        ({"selection": {"cell": [{"layer": 2, "position": 5}]}}, 2),
        ({"selection": {"cell": [{"layer": "1", "position": 0}]}}, 1),
        ({"selection": {"cell": [{"layer": 3, "position": 0}]}}, None),  # beyond the depth
        ({"selection": {"cell": [{"layer": -1}]}}, None),
        ({"selection": {"cell": []}}, None),
        ({"selection": {}}, None),
        ({"selection": {"cell": [{"position": 4}]}}, None),
        ({"selection": {"cell": [{"layer": "x"}]}}, None),
        ({"selection": "garbage"}, None),
        (None, None),
    ],
)
def test_a_grid_click_selects_a_layer(selection, expected):
    found = clicked(selection, charts.GRID_SELECTION, ("layer",), (3,))
    assert (found[0] if found else None) == expected


def test_charts_carry_the_data_they_are_given(runs, tiny):
    on, off = runs
    positions = cache_compare.fed_positions(on)
    labels = cache_compare.sequence_labels([f"p{i}" for i in range(len(PROMPT))], on)
    assert len(labels) == len(PROMPT) + NEW
    states = cache_compare.cell_states(on, 2, positions)
    spec = charts.cell_grid(states, labels, 1, "grid").to_dict()
    (rows,) = spec["datasets"].values()
    assert len(rows) == tiny.shape.layers * positions
    cached = sum(row["state"] == "read from the cache" for row in rows)
    assert cached == cache_compare.state_counts(states)[CellState.CACHED]
    assert sum(row["chosen"] for row in rows) == positions  # the chosen layer's row
    assert spec["params"][0]["name"] == charts.GRID_SELECTION
    for chart in (
        charts.step_times(on.seconds, off.seconds),
        charts.step_cells(on.cells, off.cells),
    ):
        (rows,) = chart.to_dict()["datasets"].values()
        assert len(rows) == len(on.steps) + len(off.steps)


def test_the_step_grid_and_the_cached_rows_export_as_png_and_svg(runs, tiny):
    on, _ = runs
    trace = run_trace(tiny, PROMPT + on.new_ids)
    labels = cache_compare.sequence_labels(trace.tokens[: len(PROMPT)], on)
    query = cache_compare.query_position(on, 2)
    states = cache_compare.cell_states(on, 2, cache_compare.fed_positions(on))
    view = cache_compare.cache_view(trace, query, layer=1, kv_head=1)
    for chart in (
        charts.cell_grid(states, labels, 1, "Cache on, step 2"),
        charts.cached_rows(view, labels, 1, 1),
    ):
        image = Image.open(io.BytesIO(export.chart_png(chart)))
        image.load()
        assert image.format == "PNG" and image.width > 100 and image.height > 100
        svg = ElementTree.fromstring(export.chart_svg(chart))
        assert svg.tag.endswith("svg")
        assert "layer" in "".join(svg.itertext())  # an axis title, drawn as SVG text


def test_export_names_follow_the_run_and_the_selection():
    assert (
        ui.export_name(ViewConfig(new=6), ("fig", "times")) == "cache-new6-float32-greedy-figtimes"
    )
    seeded = ViewConfig(new=6, dtype="bfloat16", seed=3)
    name = ui.export_name(seeded, ("step", 2), ("layer", 1), ("fig", "gridon"))
    assert name == "cache-new6-bfloat16-seed3-step2-layer1-figgridon"


def test_the_step_table_and_the_json_cover_a_run_that_stopped_early(runs, tiny):
    on, off = runs
    shorter = dataclasses.replace(off, steps=off.steps[:4])
    comparison = cache_compare.compare(on, shorter)
    size = cache_compare.cache_size(on, tiny.shape)
    table = ui.step_table(on, shorter, comparison, size)
    assert len(table) == NEW
    assert table["token_id_cache_off"].isna().tolist() == [False] * 4 + [True] * 2
    assert table["max_abs_dlogit"].isna().tolist() == [False] * 4 + [True] * 2
    np.testing.assert_array_equal(table["cells_cache_on"], on.cells)
    csv = pd.read_csv(io.StringIO(export.table_csv(table)))
    assert csv.shape == table.shape

    trace = run_trace(tiny, PROMPT + on.new_ids)
    labels = cache_compare.sequence_labels(trace.tokens[: len(PROMPT)], on)
    states = cache_compare.cell_states(on, 5, cache_compare.fed_positions(on))
    view = cache_compare.cache_view(trace, cache_compare.query_position(on, 5), 2, 0)
    data = ui.page_data(
        shape=tiny.shape,
        prompt_tokens=len(PROMPT),
        generated={"cache on": "a", "cache off": "b"},
        comparison=comparison,
        saved=cache_compare.savings(on, shorter),
        size=size,
        table=table,
        step=5,
        labels=labels,
        grids={"cache on": ui.grid_data(states, 5)},
        view=view,
        layer=2,
        kv_head=0,
    )
    document = json.loads(export.view_json("cache", ViewConfig(model="tiny-random"), data))
    assert document["model"] == "tiny-random"
    got = document["data"]
    assert got["verdict"]["first_parting"] == 4 and got["steps"][5]["token_cache_off"] is None
    grid = got["step_through"]["grids"]["cache on"]
    assert np.array_equal(grid["states"], states)
    assert (
        grid["counts"]["read from the cache"]
        == cache_compare.state_counts(states)[CellState.CACHED]
    )
    np.testing.assert_allclose(got["cached_rows"]["keys"], view.keys, atol=1e-4)


@pytest.mark.real
def test_the_real_model_gives_identical_tokens_in_float32(real):
    ids = encode_prompt(real, "The cure for cancer is", 64).ids
    on = generate(real, ids, 8, use_cache=True)
    off = generate(real, ids, 8, use_cache=False)
    comparison = cache_compare.compare(on, off)
    assert comparison.verdict == "8/8 tokens identical"
    assert comparison.max_abs_dlogit < cache_compare.FLOAT32_TOLERANCE
    assert cache_compare.cache_size(on, real.shape).agree
    saved = cache_compare.savings(on, off)
    assert saved.cells_on == (len(ids) + 7) * real.shape.layers
    assert saved.cells_off == sum(len(ids) + s for s in range(8)) * real.shape.layers
