"""The logit lens on the tiny random Llama: against a plain per-cell reference, chunking, the
already-normed last hidden state, first-seen bookkeeping, and the charts' selections."""

from __future__ import annotations

import io
import threading
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
import torch
from PIL import Image

from lib import export, lens
from lib.charts import clicked
from lib.charts import plan as charts
from lib.generate import generate
from lib.models import load, tiny_tokenizer
from lib.trace import Trace, run_trace

PROMPT = tiny_tokenizer()("The cure").input_ids


@pytest.fixture(scope="module")
def traced(tiny) -> Trace:
    run = generate(tiny, PROMPT, 6, use_cache=True)
    return run_trace(tiny, PROMPT + list(run.new_ids))


@pytest.fixture(scope="module")
def lensed(tiny, traced) -> lens.Lens:
    return lens.logit_lens(tiny, traced)


def reference_logits(lm, trace: Trace) -> torch.Tensor:
    """Plain transformers: every hidden state of a fresh forward through norm and lm_head, except
    the last, which transformers already returns normed. (L+1, T, V)"""
    with torch.inference_mode():
        out = lm.model(
            input_ids=torch.tensor([trace.token_ids.tolist()]), output_hidden_states=True
        )
        states = list(out.hidden_states)
        rows = [lm.model.model.norm(h[0]) for h in states[:-1]] + [states[-1][0]]
        return lm.model.lm_head(torch.stack(rows)).float()


@pytest.fixture(scope="module")
def scaled_norm():
    """A private tiny model whose final norm has non-unit weights (fresh ones are all 1, which
    makes norming twice look harmless)."""
    lm = load("tiny-random")
    with torch.no_grad():
        lm.model.model.norm.weight.copy_(torch.linspace(0.5, 3.0, lm.shape.hidden))
    return lm


def test_the_last_hidden_state_is_already_normed(scaled_norm):
    """transformers 5 returns `last_hidden_state` as the last of `hidden_states`: unembedding it
    gives the model's logits; norming it once more would not, and the lens does not."""
    traced = run_trace(scaled_norm, PROMPT)
    with torch.inference_mode():
        out = scaled_norm.model(input_ids=torch.tensor([PROMPT]))
        last = torch.tensor(traced.hidden[-1])  # (T, d)
        direct = scaled_norm.model.lm_head(last)
        twice = scaled_norm.model.lm_head(scaled_norm.model.model.norm(last))
    np.testing.assert_allclose(direct.numpy(), out.logits[0].numpy(), atol=1e-5)
    assert (twice - out.logits[0]).abs().max() > 1e-2
    read = lens.logit_lens(scaled_norm, traced)
    np.testing.assert_array_equal(read.top_ids[-1], traced.top_ids)
    np.testing.assert_allclose(read.top_probs[-1], traced.top_probs, atol=1e-6)


def test_the_top_row_is_the_models_own_output(lensed, traced):
    top = lensed.n_layers - 1
    np.testing.assert_array_equal(lensed.top_ids[top], traced.top_ids)
    np.testing.assert_allclose(lensed.top_probs[top], traced.top_probs, atol=1e-6)
    np.testing.assert_allclose(lensed.entropy[top], traced.entropy, atol=1e-5)


def test_every_cell_matches_a_plain_reference(tiny, traced, lensed):
    logits = reference_logits(tiny, traced)  # (L+1, T, V)
    probs = torch.softmax(logits, -1)
    top = torch.topk(logits, lensed.top_ids.shape[-1], dim=-1)
    np.testing.assert_array_equal(lensed.top_ids, top.indices.numpy())
    np.testing.assert_allclose(lensed.top_probs, probs.gather(-1, top.indices).numpy(), atol=1e-6)
    entropy = -(probs * torch.log_softmax(logits, -1)).sum(-1)
    np.testing.assert_allclose(lensed.entropy, entropy.numpy(), atol=1e-5)
    following = torch.tensor(traced.token_ids[1:])  # (T-1,)
    target = logits[:, :-1].gather(-1, following.expand(logits.shape[0], -1)[..., None])
    ranks = (logits[:, :-1] > target).sum(-1)  # (L+1, T-1)
    np.testing.assert_array_equal(lensed.next_rank[:, :-1], ranks.numpy())
    assert (lensed.next_rank[:, -1] == -1).all()  # nothing follows the last token


def test_probabilities_sum_to_one(tiny, traced):
    whole = lens.logit_lens(tiny, traced, top_k=tiny.shape.vocab)  # every token is in the top-k
    np.testing.assert_allclose(whole.top_probs.sum(-1), 1.0, atol=1e-5)
    assert (np.diff(whole.top_probs, axis=-1) <= 0).all()  # sorted, likeliest first


def test_chunking_does_not_change_the_result(tiny, traced, lensed, monkeypatch):
    monkeypatch.setattr(lens, "CHUNK_CELLS", 7)  # chunks that straddle rows, and a short tail
    again = lens.logit_lens(tiny, traced)
    for field in ("top_ids", "next_rank"):
        np.testing.assert_array_equal(getattr(again, field), getattr(lensed, field))
    np.testing.assert_allclose(again.top_probs, lensed.top_probs, atol=1e-6)
    np.testing.assert_allclose(again.entropy, lensed.entropy, atol=1e-5)


@pytest.mark.parametrize(("vocab", "k", "block"), [(49152, 20, 128), (1000, 7, 16), (130, 3, 128)])
def test_blocked_top_k_is_torch_top_k(vocab, k, block):
    logits = torch.randn(5, vocab, generator=torch.Generator().manual_seed(vocab))
    logits[0, -3:] = torch.arange(3) + 100.0  # winners in the tail that fills no block
    logits[1, :k] = torch.arange(k) + 50.0  # all winners in one block
    got, want = lens.top_k_blocked(logits, k, block), torch.topk(logits, k, dim=-1)
    torch.testing.assert_close(got.values, want.values)
    torch.testing.assert_close(got.indices, want.indices)


def test_blocked_top_k_inside_the_lens(tiny, traced, lensed, monkeypatch):
    monkeypatch.setattr(lens, "TOPK_BLOCK", 3)  # tiny's vocabulary would otherwise fill no block
    again = lens.logit_lens(tiny, traced)
    np.testing.assert_array_equal(again.top_ids, lensed.top_ids)
    np.testing.assert_allclose(again.top_probs, lensed.top_probs, atol=1e-6)


def test_greedy_tokens_are_the_argmax_of_the_output_row(traced, lensed):
    top = lensed.n_layers - 1
    generated = range(len(PROMPT) - 1, traced.n_tokens - 1)
    assert [int(lensed.top_ids[top, t, 0]) for t in generated] == traced.token_ids[
        len(PROMPT) :
    ].tolist()
    assert all(lensed.next_rank[top, t] == 0 for t in generated)


def test_results_are_read_only(lensed):
    with pytest.raises(ValueError):
        lensed.top_probs[0, 0, 0] = 1.0


def test_the_lens_waits_for_the_models_lock(tiny, traced):
    done = threading.Event()
    with tiny.lock:
        worker = threading.Thread(target=lambda: (lens.logit_lens(tiny, traced), done.set()))
        worker.start()
        assert not done.wait(0.5)  # blocked while another session holds the model
    worker.join(30)
    assert done.is_set()


def test_bfloat16_weights_give_the_same_top_row():
    lm = load("tiny-random", "bfloat16")
    trace = run_trace(lm, PROMPT)
    read = lens.logit_lens(lm, trace)
    np.testing.assert_array_equal(read.top_ids[-1, :, 0], trace.top_ids[:, 0])


def make_trace(token_ids: list[int]) -> Trace:
    """A trace with only the token ids filled in: all `first_seen` reads of it."""
    empty = np.zeros((0,))
    ids = np.array(token_ids)
    return Trace("test", ids, tuple(map(str, token_ids)), *[empty] * 8)


def make_lens(top_ids: np.ndarray, next_rank: np.ndarray) -> lens.Lens:
    zeros = np.zeros(next_rank.shape)
    return lens.Lens(top_ids, np.zeros(top_ids.shape), zeros, next_rank, zeros.astype(str))


def test_first_seen_follows_ranks_and_looks_back():
    # 3 rows (embedding + 2 layers), 4 positions; tokens 10 11 12 13, the last two emitted.
    trace = make_trace([10, 11, 12, 13])
    top_ids = np.full((3, 4, 2), 99)
    top_ids[0, 0, 0] = 13  # layer 0 of position 0: ignored, the embedding holds the input
    top_ids[2, 1, 1] = 13  # layer 2 of position 1 ranks token 13 second
    next_rank = np.array([[5, 5, 0, 7], [5, 5, 3, 0], [0, 0, 0, 0]])
    next_rank[:, -1] = -1
    first, second = lens.first_seen(make_lens(top_ids, next_rank), trace, 1, k=2)
    assert (first.position, first.token_id, first.earlier) == (1, 12, None)
    assert (first.entered, first.settled) == (2, 2)
    assert (second.position, second.token_id) == (2, 13)
    assert (second.entered, second.settled) == (0, 2)  # in at layer 0, out at 1, back at 2
    assert second.earlier == (1, 2) and second.steps_ahead == 1
    assert second.earlier_share == pytest.approx(1 / 4)  # 1 of 2 layers × 2 positions
    assert not second.in_text_before
    with_k1 = lens.first_seen(make_lens(top_ids, next_rank), trace, 2, k=1)[0]
    assert with_k1.earlier is None  # at k = 1 the second-ranked sighting no longer counts


def test_a_token_that_never_enters_the_top_k():
    trace = make_trace([1, 2, 1])
    next_rank = np.array([[4, 9, -1], [3, 8, -1]])
    sighting = lens.first_seen(make_lens(np.zeros((2, 3, 2), int), next_rank), trace, 1, k=2)[0]
    assert sighting.entered is None and sighting.settled is None
    assert sighting.in_text_before  # token 1 is already the first word
    summary = lens.summarize((sighting,), n_layers=2)
    assert summary.median_settled is None and summary.rarest is None
    assert summary.settled_late == 0


@pytest.mark.parametrize(
    "inside, settled",
    [([1, 1, 1], 0), ([0, 0, 1], 2), ([1, 0, 1, 1], 2), ([1, 1, 0], None), ([0], None)],
)
def test_settled_layer(inside, settled):
    assert lens.settled_layer(np.array(inside, dtype=bool)) == settled


def test_summary_picks_the_rarest_new_hint():
    common = lens.Sighting(3, 7, np.zeros(2), 0, 0, (1, 1), 0.6, False)
    rare = lens.Sighting(4, 8, np.zeros(2), 1, 28, (2, 1), 0.1, False)
    copied = lens.Sighting(5, 9, np.zeros(2), 1, 1, (0, 1), 0.01, True)
    summary = lens.summarize((common, rare, copied), n_layers=31)
    assert (summary.emitted, summary.with_earlier, summary.new_with_earlier) == (3, 3, 2)
    assert summary.rarest is rare and summary.median_settled == 1
    assert summary.settled_late == 1  # layer 28 of 30 is among the last three


def test_top_k_helpers(traced, lensed):
    cell = lens.cell_top_k(lensed, 1, 2, 3)
    assert cell.ids.shape == (3,) and cell.mass_outside == pytest.approx(1 - cell.probs.sum())
    assert cell.index_of(int(cell.ids[1])) == 1 and cell.index_of(-5) is None
    output = lens.output_top_k(traced, 2, 4)
    np.testing.assert_array_equal(output.ids, traced.top_ids[2, :4])
    assert output.entropy == pytest.approx(float(traced.entropy[2]))


def test_extremes_and_labels(tiny, traced):
    surest, hesitant = lens.entropy_extremes(traced, 2, 6)
    window = traced.entropy[2:6]
    assert traced.entropy[surest] == window.min() and traced.entropy[hesitant] == window.max()
    ids = traced.token_ids[[0, 1, 0, 3]].reshape(2, 2)  # T h T ·
    assert lens.label_grid(tiny, ids).tolist() == [["T", "h"], ["T", "·"]]


@pytest.mark.parametrize(
    "event, expected",
    [
        ({"selection": {"lens_cell": [{"position": 3, "layer": 7}]}}, (3, 7)),
        ({"selection": {"lens_cell": [{"position": "3", "layer": 7.0}]}}, (3, 7)),
        ({"selection": {"lens_cell": []}}, None),
        ({"selection": {"other": [{"position": 1, "layer": 1}]}}, None),
        ({"selection": {"lens_cell": [{"position": 1}]}}, None),
        ({"selection": {"lens_cell": [{"position": "x", "layer": 1}]}}, None),
        ({}, None),
        (None, None),
    ],
)
def test_clicked_reads_only_our_selection(event, expected):
    assert clicked(event, charts.LENS_SELECTION, ("position", "layer")) == expected


def test_charts_name_their_selections_and_mark_what_came_next(traced, lensed):
    labels = traced.tokens
    top1 = np.full(lensed.top_ids.shape[:2], "x", dtype=object)
    frame = charts.lens_frame(labels, top1, lensed.top_probs[:, :, 0], lensed.entropy)
    assert len(frame) == lensed.n_layers * lensed.n_tokens
    heatmap = charts.lens_heatmap(frame, labels, (2, 1)).to_dict()
    assert [(p["name"], p["select"]["fields"]) for p in heatmap["params"]] == [
        ("lens_cell", ["position", "layer"])
    ]
    assert [layer["mark"]["type"] for layer in heatmap["layer"]] == ["rect", "text", "rect"]
    strip = charts.entropy_strip(labels, traced.entropy, 3, 4).to_dict()
    assert strip["params"][0]["select"]["fields"] == ["position"]
    bars = charts.top_k_bars(["a", "b", "c"], np.array([0.5, 0.3, 0.1]), 1).to_dict()
    kinds = [row["kind"] for row in next(iter(bars["datasets"].values()))]
    assert kinds == [charts.OTHER, charts.CAME_NEXT, charts.OTHER]
    sightings = lens.first_seen(lensed, traced, len(PROMPT) - 1, 5)
    seen = charts.first_seen_chart(sightings, labels, 5).to_dict()
    assert len(seen["layer"]) == 2


def test_rank_bands_start_with_the_top_k():
    assert [label for _, label in charts.rank_buckets(10)] == [
        "top 10",
        "11–100",
        "101–1,000",
        "1,001–10,000",
        "over 10,000",
    ]
    assert charts.rank_buckets(20)[1] == (100, "21–100")


def test_the_lens_drops_its_words_when_cells_get_too_narrow():
    many = [f"t{i}" for i in range(charts.WORDS_UP_TO + 1)]
    shape = (2, len(many))
    frame = charts.lens_frame(
        many, np.full(shape, "x", dtype=object), np.ones(shape), np.ones(shape)
    )
    marks = [
        layer["mark"]["type"]
        for layer in charts.lens_heatmap(frame, many, (0, 0)).to_dict()["layer"]
    ]
    assert marks == ["rect", "rect"]


def test_the_lens_heatmap_exports_as_png_and_svg(tiny, traced, lensed):
    assert lensed.top1_labels.tolist() == lens.label_grid(tiny, lensed.top_ids[:, :, 0]).tolist()
    frame = charts.lens_frame(
        traced.tokens, lensed.top1_labels, lensed.top_probs[:, :, 0], lensed.entropy
    )
    heatmap = charts.lens_heatmap(frame, traced.tokens, (2, 1))
    image = Image.open(io.BytesIO(export.chart_png(heatmap)))
    image.load()
    assert image.format == "PNG" and image.width > 100 and image.height > 100
    svg = ElementTree.fromstring(export.chart_svg(heatmap))
    assert svg.tag.endswith("svg")
    cells = [node for node in svg.iter() if node.tag.endswith("path")]
    assert len(cells) >= lensed.n_layers * lensed.n_tokens  # one rect per (layer, position)
