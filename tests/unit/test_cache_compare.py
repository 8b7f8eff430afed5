"""Cache on vs off: both runs in lockstep, the verdict, the per-step grid, what the cache costs
and holds, when it pays, and the /cache page model."""

import dataclasses
import io
import json
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lib import cache_compare, export, models, site
from lib.cache_compare import TOLERANCE, CacheRuns, CellState
from lib.charts import cache as charts
from lib.charts import clicked
from lib.config import ViewConfig
from lib.lab import Lab
from lib.pages.cache import cache_page, step_table, verdict_text
from lib.trace import run_trace

PROMPT = (4, 5, 6, 7)
NEW = 6


@pytest.fixture(scope="module")
def runs(tiny) -> CacheRuns:
    return cache_compare.run_both(tiny, PROMPT, NEW)


def with_steps(run, changes):
    """A copy of `run` whose steps at the given indices are changed as given."""
    steps = list(run.steps)
    for index, change in changes.items():
        steps[index] = dataclasses.replace(steps[index], **change)
    return dataclasses.replace(run, steps=tuple(steps))


@pytest.mark.parametrize("seed", [None, 3])
def test_the_two_runs_choose_the_same_tokens_within_rounding(tiny, seed):
    both = cache_compare.run_both(tiny, PROMPT, NEW, seed=seed)
    c = cache_compare.compare(both, "float32")
    assert c.same_tokens and c.kind == "same" and c.first_parting is None
    assert both.step_abs_dlogit.shape == (NEW,) and (both.step_abs_dlogit >= 0).all()
    assert c.max_abs_dlogit < TOLERANCE["float32"]
    assert c.summary.startswith(f"{NEW}/{NEW} tokens identical · max |Δlogit| = ")


def test_the_decode_cache_is_the_prefill_cache_up_to_rounding(tiny, runs):
    """The page shows the decode cache; a fresh pass over the same tokens stores the same rows
    (to float32 rounding), and the attention each step recorded sums to one over them."""
    on = runs.on
    trace = run_trace(tiny, PROMPT + on.new_ids[:-1])  # every token the run fed
    assert on.cache.keys.shape == trace.keys.shape
    np.testing.assert_allclose(on.cache.keys, trace.keys, atol=1e-5)
    np.testing.assert_allclose(on.cache.values, trace.values, atol=1e-5)
    for index, step in enumerate(on.steps):
        query = cache_compare.query_position(on, index)
        assert step.reads.shape == (tiny.shape.layers, tiny.shape.heads, query + 1)
        np.testing.assert_allclose(step.reads.sum(-1), 1, atol=1e-5)
        np.testing.assert_allclose(
            step.reads, trace.attentions[:, :, query, : query + 1], atol=1e-5
        )


def test_logits_are_compared_only_while_the_runs_share_a_context(runs):
    other = (runs.on.steps[3].token_id + 1) % 256
    parted = dataclasses.replace(
        runs,
        off=with_steps(runs.off, {3: {"token_id": other, "label": "X"}}),
        step_abs_dlogit=np.array([0.0, 1e-6, 2e-6, 0.5]),
    )
    c = cache_compare.compare(parted, "float32")
    assert c.kind == "parted" and c.identical == NEW - 1 and c.steps == NEW
    assert c.first_parting == 3 and c.parting_labels == (runs.on.steps[3].label, "X")
    assert c.first_drift == 3 and c.max_abs_dlogit == 0.5


def test_drift_is_measured_against_the_tolerance_of_the_dtype(runs):
    drifted = dataclasses.replace(runs, step_abs_dlogit=np.array([0, 0, 0.01, 0.02, 0, 0]))
    assert cache_compare.compare(drifted, "float32").kind == "drift"
    assert cache_compare.compare(drifted, "float32").first_drift == 2
    assert cache_compare.compare(drifted, "bfloat16").kind == "same"  # rounding in bfloat16


def test_a_run_that_stops_early_parts_where_it_stops(runs):
    shorter = dataclasses.replace(runs, off=dataclasses.replace(runs.off, steps=runs.off.steps[:4]))
    c = cache_compare.compare(shorter, "float32")
    assert c.steps == NEW and c.identical == 4 and c.first_parting == 4
    assert c.parting_labels == (runs.on.steps[4].label, "(end)")


@pytest.mark.parametrize("kind", ["same", "drift", "parted"])
def test_the_verdict_says_what_the_numbers_say(runs, kind):
    dlogit = {"same": [0] * NEW, "drift": [0, 0.5, 0, 0, 0, 0], "parted": [0, 0, 0.3]}[kind]
    off = runs.off
    if kind == "parted":
        off = with_steps(off, {2: {"token_id": 0, "label": "X"}})
    c = cache_compare.compare(
        dataclasses.replace(runs, off=off, step_abs_dlogit=np.array(dlogit)), "float32"
    )
    assert c.kind == kind
    text = verdict_text(c, "float32")
    assert c.summary in text
    if kind == "same":
        assert "the largest difference on any step was 0.0e+00" in text and "0.001" in text
    elif kind == "drift":
        assert "first at step 1 the logits differ" in text
    else:
        assert "At step 2 the texts part" in text and "`X` without" in text


def test_cell_states_follow_what_the_hooks_counted(runs, tiny):
    on, off = runs.on, runs.off
    layers, n_prompt = tiny.shape.layers, len(PROMPT)
    positions = cache_compare.fed_positions(on)
    assert positions == n_prompt + NEW - 1 == cache_compare.fed_positions(off)
    for step in range(NEW):
        grid_on = cache_compare.cell_states(on, step, positions)
        grid_off = cache_compare.cell_states(off, step, positions)
        count_on, count_off = (cache_compare.state_counts(g) for g in (grid_on, grid_off))
        assert count_on[CellState.COMPUTED] + count_on[CellState.RECOMPUTED] == on.cells[step]
        assert count_off[CellState.COMPUTED] + count_off[CellState.RECOMPUTED] == off.cells[step]
        assert count_on[CellState.RECOMPUTED] == 0 and count_off[CellState.CACHED] == 0
        query = cache_compare.query_position(on, step)
        assert query == n_prompt - 1 + step == cache_compare.query_position(off, step)
        assert (grid_on[:, query + 1 :] == CellState.NOT_YET).all()
        if step:
            assert (grid_on[:, query] == CellState.COMPUTED).all()
            assert (grid_on[:, :query] == CellState.CACHED).all()
            assert (grid_off[:, :query] == CellState.RECOMPUTED).all()
        else:
            np.testing.assert_array_equal(grid_on, grid_off)
    assert grid_on.shape == (layers, positions)


@pytest.mark.parametrize("dtype, bytes_per_value", [("float32", 4), ("bfloat16", 2)])
def test_measured_cache_bytes_equal_the_formula(dtype, bytes_per_value):
    lm = models.load("tiny-random", dtype)
    on = cache_compare.run_both(lm, PROMPT, NEW).on
    size = cache_compare.cache_size(on, lm.shape)
    config = lm.model.config
    tokens = len(PROMPT) + np.arange(NEW)
    expected = 2 * config.num_hidden_layers * config.num_key_value_heads * config.head_dim
    np.testing.assert_array_equal(size.tokens, tokens)
    np.testing.assert_array_equal(size.measured, expected * tokens * bytes_per_value)
    assert size.agree


def test_savings_time_the_steps_after_the_prompt(runs):
    saved = cache_compare.savings(runs.on, runs.off)
    np.testing.assert_array_equal(saved.context, len(PROMPT) + np.arange(1, NEW))
    np.testing.assert_allclose(saved.ms_on, runs.on.seconds[1:] * 1000)
    assert saved.cells_on == runs.on.cells.sum() and saved.cells_ratio > 1
    assert saved.speedup == pytest.approx(np.median(saved.ms_off) / np.median(saved.ms_on))


@pytest.mark.parametrize(
    "off, expected",
    [
        ([10, 10, 10, 10, 10, 10, 10, 10], None),  # never slower
        ([10, 10, 10, 10, 20, 20, 20, 20, 20, 20], 14),  # the first window that pays
        ([20, 20, 20, 20, 20, 20], 10),  # from the start
        ([20, 20, 20, 20, 20, 10, 10, 10, 10], None),  # slower, then not: it does not stay
        ([], None),
    ],
)
def test_the_cache_pays_from_where_the_uncached_step_stays_slower(off, expected):
    context = 10 + np.arange(len(off))
    assert cache_compare.pays_from(context, np.full(len(off), 10.0), np.array(off)) == expected


def test_the_model_weighs_what_its_parameters_hold(tiny):
    weights = cache_compare.weight_bytes(tiny)
    config = tiny.model.config
    embedding = config.vocab_size * config.hidden_size * 4  # tied: counted once
    assert embedding < weights < 3 * sum(p.numel() for p in tiny.model.parameters()) * 4


@pytest.mark.parametrize(
    "selection, expected",
    [
        ({"selection": {"cell": [{"layer": 2, "position": 5}]}}, 2),
        ({"selection": {"cell": [{"layer": "1", "position": 0}]}}, 1),
        ({"selection": {"cell": [{"layer": 3, "position": 0}]}}, None),  # beyond the depth
        ({"selection": {"cell": [{"layer": -1}]}}, None),
        ({"selection": {"cell": []}}, None),
        ({"selection": "garbage"}, None),
        (None, None),
    ],
)
def test_a_grid_click_selects_a_layer(selection, expected):
    found = clicked(selection, charts.GRID_SELECTION, ("layer",), (3,))
    assert (found[0] if found else None) == expected


def test_charts_carry_the_data_they_are_given(runs, tiny):
    on, off = runs.on, runs.off
    positions = cache_compare.fed_positions(on)
    labels = cache_compare.sequence_labels([f"p{i}" for i in range(len(PROMPT))], on)
    states = cache_compare.cell_states(on, 2, positions)
    spec = charts.cell_grid(states, labels, 1, "grid").to_dict()
    cells, frame = (spec["datasets"][layer["data"]["name"]] for layer in spec["layer"])
    assert len(cells) == tiny.shape.layers * positions
    cached = sum(row["state"] == "read from the cache" for row in cells)
    assert cached == cache_compare.state_counts(states)[CellState.CACHED]
    assert {row["layer"] for row in frame} == {1} and len(frame) == positions
    saved = cache_compare.savings(on, off)
    (rows,) = (
        charts.step_times(saved.context, saved.ms_on, saved.ms_off).to_dict()["datasets"].values()
    )
    assert len(rows) == 2 * saved.context.size


def test_the_step_grid_and_the_cached_rows_export_as_png_and_svg(runs, tiny):
    on = runs.on
    labels = cache_compare.sequence_labels(tiny.tokenizer.convert_ids_to_tokens(PROMPT), on)
    states = cache_compare.cell_states(on, 2, cache_compare.fed_positions(on))
    view = cache_compare.cache_view(on, tiny.shape, 2, layer=1, kv_head=1)
    assert view.heads == tiny.shape.query_heads_of(1)
    for chart in (
        charts.cell_grid(states, labels, 1, "Cache on, step 2"),
        charts.cached_rows(view, labels, 1, 1),
    ):
        image = Image.open(io.BytesIO(export.chart_png(chart)))
        image.load()
        assert image.format == "PNG" and image.width > 100 and image.height > 100
        svg = ElementTree.fromstring(export.chart_svg(chart))
        assert "layer" in "".join(svg.itertext())  # a title, drawn as SVG text


def test_the_step_table_covers_a_run_that_stopped_early(runs, tiny):
    on = runs.on
    shorter = dataclasses.replace(runs.off, steps=runs.off.steps[:4])
    c = cache_compare.compare(dataclasses.replace(runs, off=shorter), "float32")
    table = step_table((on, shorter), c, cache_compare.cache_size(on, tiny.shape))
    assert len(table) == NEW
    assert table["token_id_cache_off"].isna().tolist() == [False] * 4 + [True] * 2
    np.testing.assert_array_equal(table["cells_cache_on"], on.cells)
    assert pd.read_csv(io.StringIO(export.table_csv(table))).shape == table.shape


def test_the_page_model_shows_its_run_and_exports_itself(tiny):
    cfg = ViewConfig(model="tiny-random", prompt="abcd", new=5, step=9, layer=1, offgrid="on")
    page = cache_page(cfg, Lab.direct(tiny))
    assert page.step == 4 and any("`step` must be 0–4" in n for n in page.notices)
    assert page.comparison.summary in page.opening and page.kind == "same"
    assert page.grid_off is not None and page.grid_on.title.startswith("Cache on, step 4")
    assert f"{page.saved.cells_off:,} (token, layer) cells" in page.opening
    assert page.files["gridon"] == "cache-new5-float32-greedy-step4-layer1-figgridon"
    document = json.loads(export.view_json(site.page("cache"), cfg, page))
    assert document["config"]["step"] == 9 and "from_" not in json.dumps(document)
    assert document["data"]["comparison"]["identical"] == 5
    assert "on" not in document["data"]  # the runs themselves stay out of the file
    assert len(document["data"]["table"]) == 5


def test_the_real_model_gives_identical_tokens_in_float32(real):
    lab = Lab.direct(real)
    ids = lab.prompt("The cure for cancer is").ids
    both = cache_compare.run_both(real, ids, 8)
    c = cache_compare.compare(both, "float32")
    assert c.kind == "same" and c.identical == 8
    assert cache_compare.cache_size(both.on, real.shape).agree
    saved = cache_compare.savings(both.on, both.off)
    assert saved.cells_on == (len(ids) + 7) * real.shape.layers
    assert saved.cells_off == sum(len(ids) + s for s in range(8)) * real.shape.layers
