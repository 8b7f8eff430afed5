"""The logit lens and /plan's page model on the tiny random Llama, without Streamlit: the lens
against a plain per-cell reference, chunking and the already-normed last hidden state; first
seen and its matched baseline against the definitions counted cell by cell; the page's top-k
against a plain full-logits pass; its tables, texts and export; the charts' selections, colours
and contrast."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import threading
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from lib import export, lens, site
from lib.charts import clicked, palette
from lib.charts import plan as charts
from lib.config import ViewConfig
from lib.content import FILLED, templates
from lib.generate import generate
from lib.lab import Lab
from lib.models import load, tiny_tokenizer
from lib.pages import plan as plan_module
from lib.pages.plan import PlanPage, plan_page
from lib.trace import Trace, run_trace, token_labels

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


# ---- First seen and its baseline: the definitions, counted one cell at a time ----------------


def reference_first_seen(top_ids, next_rank, token_ids, first, k):
    """Every field of `lens.first_seen`, from its documented definition, by brute force: one
    Python set per cell, every count a loop over cells."""
    rows, n_tokens = next_rank.shape
    top = rows - 1
    held = {
        (t, layer): set(top_ids[layer, t, :k].tolist())
        for layer in range(1, rows)
        for t in range(n_tokens)
    }
    everything = set().union(*held.values())
    found = []
    for p in range(first, n_tokens - 1):
        x = int(token_ids[p + 1])
        ranks = next_rank[:, p]
        inside = [layer for layer in range(1, rows) if ranks[layer] < k]
        settled = None
        if ranks[top] < k:
            settled = top
            while settled > 1 and ranks[settled - 1] < k:
                settled -= 1

        def base(y, p=p):
            return sum(y in cells for (t, _), cells in held.items() if t != p)

        def window(y, p=p):
            return sum(y in cells for (t, _), cells in held.items() if t < p)

        sightings = sorted(cell for cell, cells in held.items() if cell[0] < p and x in cells)
        text = set(token_ids[: p + 1].tolist())
        b = base(x)
        matched = [
            y for y in everything if b and y != x and y not in text and b / 2 <= base(y) <= 2 * b
        ]
        found.append(
            {
                "position": p,
                "token_id": x,
                "entered": inside[0] if inside else None,
                "settled": settled,
                "earlier": sightings[0] if sightings else None,
                "earlier_below_top": next((c for c in sightings if c[1] < top), None),
                "earlier_cells": window(x),
                "window_cells": top * p,
                "in_text_before": x in text,
                "base_count": b,
                "matched": len(matched),
                "matched_seen": sum(window(y) > 0 for y in matched),
                "matched_as_often": sum(window(y) >= max(window(x), 1) for y in matched),
            }
        )
    return found


def random_lens(seed: int, rows: int, n_tokens: int, vocab: int):
    """A self-consistent lens over a small vocabulary: each cell ranks every token (a
    permutation), and the rank of the token that came next is its place in that ranking."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(0, vocab, n_tokens)
    top_ids = np.stack(
        [np.stack([rng.permutation(vocab) for _ in range(n_tokens)]) for _ in range(rows)]
    )  # (rows, T, vocab)
    following = np.append(token_ids[1:], -1)
    next_rank = np.argmax(top_ids == following[None, :, None], axis=-1)
    next_rank[:, -1] = -1
    return token_ids, top_ids, next_rank


def make_lens(top_ids: np.ndarray, next_rank: np.ndarray) -> lens.Lens:
    zeros = np.zeros(next_rank.shape)
    return lens.Lens(top_ids, np.zeros(top_ids.shape), zeros, next_rank, zeros.astype(str))


FIELDS = [field.name for field in dataclasses.fields(lens.Sighting) if field.name != "ranks"]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(2, 6),
    n_tokens=st.integers(2, 9),
    vocab=st.integers(3, 14),
    k=st.integers(1, 5),
    first=st.integers(0, 3),
)
def test_first_seen_is_its_definition_counted_cell_by_cell(seed, rows, n_tokens, vocab, k, first):
    token_ids, top_ids, next_rank = random_lens(seed, rows, n_tokens, vocab)
    first = min(first, n_tokens - 1)
    got = lens.first_seen(make_lens(top_ids, next_rank), token_ids, first, k)
    want = reference_first_seen(top_ids, next_rank, token_ids, first, k)
    assert [{name: getattr(s, name) for name in FIELDS} for s in got] == want
    for s in got:
        np.testing.assert_array_equal(s.ranks, next_rank[:, s.position])
        # Properties that hold whatever the data: the token enters before it settles, cannot
        # be seen in more earlier cells than hold it anywhere else, and p is a probability.
        if s.settled is not None:
            assert s.entered is not None and 1 <= s.entered <= s.settled
            assert (s.ranks[s.settled :] < k).all()
        assert s.earlier_cells <= s.base_count
        assert (s.earlier is None) == (s.earlier_cells == 0)
        assert s.matched_as_often <= s.matched_seen <= s.matched
        if s.p_value is not None:
            assert 1 / (1 + s.matched) <= s.p_value <= 1
        assert not s.is_hint or (s.p_value <= lens.ALPHA and not s.in_text_before)


def test_first_seen_on_a_hand_made_lens():
    # 3 rows (embedding + 2 layers), 4 positions; tokens 10 11 12 13, the last two emitted.
    token_ids = np.array([10, 11, 12, 13])
    top_ids = np.full((3, 4, 2), 99)
    top_ids[0, 0, 0] = 13  # layer 0 of position 0: ignored, the embedding holds the input
    top_ids[2, 1, 1] = 13  # the top row of position 1 ranks token 13 second
    next_rank = np.array([[5, 5, 0, 7], [5, 5, 3, 0], [0, 0, 0, 0]])
    next_rank[:, -1] = -1
    first, second = lens.first_seen(make_lens(top_ids, next_rank), token_ids, 1, k=2)
    assert (first.position, first.token_id, first.earlier) == (1, 12, None)
    assert (first.entered, first.settled) == (2, 2)
    assert (second.position, second.token_id) == (2, 13)
    assert (second.entered, second.settled) == (2, 2)  # layer 0 does not count, 1 is out
    assert second.earlier == (1, 2) and second.steps_ahead == 1
    assert second.earlier_below_top is None  # seen only in a top row: nobody reads it
    assert second.earlier_share == pytest.approx(1 / 4)  # 1 of 2 layers × 2 positions
    assert second.base_count == 1 and second.matched == 0  # 99 is held 7 times: no match
    assert second.p_value is None and not second.is_hint
    assert not second.in_text_before
    with_k1 = lens.first_seen(make_lens(top_ids, next_rank), token_ids, 2, k=1)[0]
    assert with_k1.earlier is None  # at k = 1 the second-ranked sighting no longer counts


@pytest.mark.parametrize(
    "inside, settled",
    [([1, 1, 1], 0), ([0, 0, 1], 2), ([1, 0, 1, 1], 2), ([1, 1, 0], None), ([0], None)],
)
def test_settled_layer(inside, settled):
    assert lens.settled_layer(np.array(inside, dtype=bool)) == settled


def sighting(**fields) -> lens.Sighting:
    """A sighting with plain defaults: new, not seen, nothing matched."""
    base = {
        "position": 3,
        "token_id": 7,
        "ranks": np.zeros(31, int),
        "entered": 1,
        "settled": 1,
        "earlier": None,
        "earlier_below_top": None,
        "earlier_cells": 0,
        "window_cells": 90,
        "in_text_before": False,
        "base_count": 0,
        "matched": 0,
        "matched_seen": 0,
        "matched_as_often": 0,
    }
    return lens.Sighting(**(base | fields))


def test_summary_counts_hints_only_against_their_matched_tokens():
    seen = {"earlier": (1, 4), "earlier_below_top": (1, 4), "earlier_cells": 3, "base_count": 9}
    hint = sighting(position=4, matched=39, matched_seen=10, matched_as_often=0, **seen)
    common = sighting(position=5, matched=9, matched_seen=9, matched_as_often=5, **seen)
    unseen = sighting(position=6, entered=29, settled=29, base_count=2, matched=10, matched_seen=4)
    late_again = sighting(position=7, entered=3, settled=30, in_text_before=True)
    lonely = sighting(position=8, base_count=0)  # no cell elsewhere: nothing to compare
    sampled = sighting(position=9, entered=None, settled=None)
    summary = lens.summarize((hint, common, unseen, late_again, lonely, sampled), n_layers=31)
    assert hint.p_value == pytest.approx(1 / 40) and hint.is_hint
    assert common.p_value == pytest.approx(6 / 10) and not common.is_hint
    assert (summary.emitted, summary.settled, summary.new) == (6, 5, 5)
    assert (summary.compared, summary.compared_seen, summary.new_seen) == (3, 2, 2)
    assert summary.seen_rate == pytest.approx(2 / 3)
    assert summary.matched_rate == pytest.approx((10 / 39 + 1 + 4 / 10) / 3)
    assert (summary.tested, summary.hints, summary.below_top) == (3, 1, 1)
    assert summary.chance_hints == pytest.approx(3 * lens.ALPHA)
    assert summary.best is hint
    assert (summary.settled_late, summary.late_in_before) == (2, 1)  # layers 29 and 30
    assert summary.median_entered == 1 and summary.median_settled == 1


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


# ---- The page model on the tiny model, without Streamlit ------------------------------------


@pytest.fixture(scope="module")
def lab(tiny) -> Lab:
    return Lab.direct(tiny)


def plan(lab: Lab, **settings_) -> PlanPage:
    return plan_page(ViewConfig(model="tiny-random", new=6, **settings_), lab)


@pytest.fixture(scope="module")
def sampled(lab) -> PlanPage:
    """Sampling from the tiny model's near-uniform output: new tokens, outside the top-k."""
    return plan(lab, seed=3, token=4, layer=2, k=5)


def test_a_link_without_a_cell_opens_the_prompts_last_position_at_the_middle_layer(lab):
    page = plan(lab)
    assert (page.auto_token, page.auto_layer) == (page.n_prompt - 1, page.n_rows // 2)
    assert (page.token, page.layer) == (page.auto_token, page.auto_layer) != (0, 0)
    assert page.notices == ()
    chosen = plan(lab, token=2, layer=1)
    assert (chosen.token, chosen.layer) == (2, 1) and chosen.auto_token == page.auto_token


def test_out_of_range_cells_are_clamped_with_a_notice(lab):
    page = plan(lab, token=999, layer=60)
    assert (page.token, page.layer) == (len(page.tokens) - 1, page.n_rows - 1)
    assert any("`token` must be 0–" in n for n in page.notices), page.notices
    assert any(f"`layer` must be 0–{page.n_rows - 1} here" in n for n in page.notices)


def plain_distributions(lm, token_ids, layer, position):
    """The model's own output and the lens at (layer, position), from one plain forward pass
    with every full-vocabulary logit: softmax, top-k, entropy, and rank of what came next."""
    with torch.inference_mode():
        out = lm.model(input_ids=torch.tensor([list(token_ids)]), output_hidden_states=True)
        state = out.hidden_states[layer][0, position]
        if layer < len(out.hidden_states) - 1:  # the last one comes back already normed
            state = lm.model.model.norm(state)
        return out.logits[0, position].float(), lm.model.lm_head(state).float()


@pytest.mark.parametrize(("token", "layer"), [(4, 2), (0, 0), (3, 3)])
def test_the_pages_top_k_is_a_plain_full_logits_computation(tiny, lab, token, layer):
    page = plan(lab, seed=3, token=token, layer=layer, k=5)
    output, lensed = plain_distributions(tiny, page.token_ids, layer, token)
    following = page.token_ids[token + 1]
    for shown, logits in ((page.output, output), (page.cell, lensed)):
        probs = torch.softmax(logits, -1)
        top = torch.topk(logits, 5)
        np.testing.assert_array_equal(shown.ids, top.indices.numpy())
        np.testing.assert_allclose(shown.probs, probs[top.indices].numpy(), atol=1e-6)
        assert shown.entropy == pytest.approx(-(probs * probs.log()).sum().item(), abs=1e-4)
        assert shown.mass_outside == pytest.approx(1 - probs[top.indices].sum().item(), abs=1e-5)
        assert shown.next_rank == int((logits > logits[following]).sum()) + 1
        assert shown.labels == token_labels(tiny, top.indices.tolist())
        inside = following in top.indices.tolist()
        assert (shown.came_next is not None) == inside


def test_the_baseline_rate_is_a_direct_count(lab, sampled):
    ids = np.array(sampled.token_ids)
    lensed = lab.lens(sampled.token_ids)
    want = reference_first_seen(lensed.top_ids, lensed.next_rank, ids, sampled.n_prompt - 1, 5)
    assert [{name: getattr(s, name) for name in FIELDS} for s in sampled.sightings] == want
    compared = [w for w in want if not w["in_text_before"] and w["matched"]]
    summary = sampled.summary
    assert summary.compared == len(compared) > 0
    assert summary.matched_rate == pytest.approx(
        np.mean([w["matched_seen"] / w["matched"] for w in compared])
    )
    assert summary.seen_rate == pytest.approx(np.mean([w["earlier"] is not None for w in compared]))
    assert f"against {summary.matched_rate:.0%} of their matched tokens" in sampled.lookback_text


def test_entered_comes_before_settled_on_the_run(lab, sampled):
    for page in (sampled, plan(lab, k=3)):
        for s in page.sightings:
            assert s.settled is None or 1 <= s.entered <= s.settled


def test_the_table_shows_words_or_numbers_never_a_bare_none(sampled, lab):
    for page in (sampled, plan(lab)):
        table = page.table
        assert len(table) == page.summary.emitted
        assert not table.isna().any().any()
        for column in table.columns:
            assert not any(str(value) in {"None", "nan", "<NA>"} for value in table[column])
        for s, p in zip(page.sightings, table["p"], strict=True):
            assert p == "–" if s.p_value is None else float(p) == pytest.approx(s.p_value, 1e-3)


def test_texts_are_filled_and_exported_json_is_the_page(sampled):
    texts = [
        *sampled.opening,
        sampled.output_caption,
        sampled.strip_caption,
        sampled.cell_caption,
        sampled.seen_text,
        sampled.lookback_text,
        sampled.means_text,
        sampled.table_caption,
        sampled.output.numbers,
    ]
    assert all("{" not in text and "}" not in text for text in texts)
    for text in texts:  # templates joined in code keep their spaces
        assert "  " not in text and not re.search(r"\w\(|[a-z][.;:][A-Z]", text), text
    document = json.loads(export.view_json(site.page("plan"), ViewConfig(), sampled))
    data = document["data"]
    assert "sightings" not in data and len(data["table"]) == sampled.summary.emitted
    assert data["summary"]["compared"] == sampled.summary.compared
    assert np.array(data["lens_next_rank"]).shape == (sampled.n_rows, len(sampled.tokens))


def test_who_can_read_a_row_is_said_per_row(lab):
    rows = plan(lab).n_rows
    captions = {layer: plan(lab, layer=layer).cell_caption for layer in range(rows)}
    assert "embedding" in captions[0] and "keys and values" in captions[0]
    assert all("keys and values" in captions[layer] for layer in range(1, rows - 1))
    assert "no later position reads it" in captions[rows - 1]


def test_every_plan_template_is_used(lab, sampled):
    """Run the page in every case it words differently, so no template is left unused."""
    seen = {"earlier": (1, 4), "earlier_below_top": (1, 4), "earlier_cells": 3, "base_count": 9}
    hint = sighting(matched=39, matched_seen=10, **seen)
    floor = sighting(matched=5, matched_seen=5, matched_as_often=2, **seen)
    top_first = sighting(
        **(seen | {"earlier": (0, 30)}), matched=40, matched_seen=30, matched_as_often=20
    )
    top_only = sighting(
        **(seen | {"earlier": (0, 30), "earlier_below_top": None}), matched=40, matched_seen=30
    )
    lonely = sighting(earlier=(1, 4), earlier_cells=2, base_count=5)  # seen, nothing matched
    copied = sighting(in_text_before=True, entered=None, settled=None)
    shape = lab.lm.shape
    tokens = tuple("abcdefghij")
    for s in (hint, floor, top_first, top_only):
        plan_module.best_text(s, tokens, 30, shape)
    plan_module.sightings_table((hint, floor, top_only, lonely, copied, sighting()), tokens)
    summary = lens.summarize((hint, floor), 31)
    plan_module.lookback_text(summary, tokens, 10, 30, shape)
    plan_module.lookback_text(lens.summarize((lonely,), 31), tokens, 10, 30, shape)
    more = sighting(matched=30, matched_seen=3, matched_as_often=3, **seen)  # p = 4 / 31
    more_text = plan_module.lookback_text(lens.summarize((more,), 31), tokens, 10, 30, shape)
    assert "seen more often than their matched tokens" in more_text
    plan_module.seen_text(lens.summarize((copied,), 31), 10, 30)
    plan_module.seen_text(lens.summarize((hint, copied), 31), 10, 30)
    plan_module.seen_text(lens.summarize((sighting(settled=29, entered=2),), 31), 10, 30)
    plan_module.means_text(summary, 10, shape)
    cases = (
        {},
        {"token": 0, "layer": 3},
        {"token": 999, "layer": 0},
        {"seed": 3, "token": 23, "k": 1},
    )
    for settings_ in cases:
        plan(lab, **settings_)
    unused = set(templates("plan")) - {key for page, key in FILLED if page == "plan"}
    assert not unused


# ---- Charts ----------------------------------------------------------------------------------


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


def svg_marks(chart) -> dict[str, list[tuple[str, str | None, str]]]:
    """(tag, fill, text) of every mark item in the chart's SVG, by mark group class."""
    groups: dict[str, list] = {}
    for node in ElementTree.fromstring(export.chart_svg(chart)).iter():
        kind = node.get("class", "")
        if "role-mark" in kind:
            groups[kind.split()[0]] = groups.get(kind.split()[0], []) + [
                (child.tag.split("}")[1], child.get("fill"), "".join(child.itertext()))
                for child in node
            ]
    return groups


def test_lens_cells_take_the_colour_python_expects_and_their_words_meet_wcag_aa():
    """Vega draws each cell in the colour `probability_color` names (threshold bins, edges
    included in the upper bin), so the ink picked in Python is the ink on that very cell."""
    probs = np.array([[0.0, 0.2, 0.4, 0.6, 0.8, 1.0]])  # (1 row, 6 positions)
    words = np.array([list("uvwxyz")], dtype=object)
    chart = charts.lens_heatmap(list("abcdef"), words, probs, np.ones(probs.shape), (0, 0))
    marks = svg_marks(chart)
    cells = [fill for tag, fill, _ in marks["mark-rect"] if tag == "path"][:6]
    inks = [fill for _, fill, _ in marks["mark-text"]]
    assert cells == list(charts.probability_color(probs[0]))
    assert len(set(cells)) == 5  # every bin of the scale shows up
    assert inks == [palette.text_on(cell) for cell in cells]
    assert all(palette.contrast(ink, cell) >= 4.5 for ink, cell in zip(inks, cells, strict=True))


def test_first_seen_ranks_are_written_only_inside_the_top_k_and_readable(traced, lensed):
    sightings = lens.first_seen(lensed, traced.token_ids, len(PROMPT) - 1, 3)
    frame = charts.first_seen_frame(sightings, 3)
    assert all(
        palette.contrast(ink, fill) >= 4.5
        for ink, fill in zip(frame["ink"], frame["fill"], strict=True)
    )
    assert (frame["fill"] == palette.ORANGE).eq(frame["rank"] <= 3).all()
    marks = charts.milestones(sightings, 3)
    assert len(marks) == sum(s.entered is not None for s in sightings) + sum(
        s.settled is not None for s in sightings
    )
    marked = set(zip(marks["column"], marks["layer"], strict=True))
    svg = svg_marks(charts.first_seen_chart(sightings, traced.tokens, 3))
    texts = [text for _, _, text in svg["mark-text"]]
    expected = [
        str(rank)
        for column, layer, rank in zip(frame["column"], frame["layer"], frame["rank"], strict=True)
        if rank <= 3 and (column, layer) not in marked  # a marker, not a number, sits there
    ]
    assert sorted(texts) == sorted(expected)


def test_charts_name_their_selections_and_label_what_came_next(traced, lensed):
    labels = traced.tokens
    heatmap = charts.lens_heatmap(
        labels, lensed.top1_labels, lensed.top_probs[:, :, 0], lensed.entropy, (2, 1)
    ).to_dict()
    assert [(p["name"], p["select"]["fields"]) for p in heatmap["params"]] == [
        ("lens_cell", ["position", "layer"])
    ]
    assert [layer["mark"]["type"] for layer in heatmap["layer"]] == ["rect", "text", "rect"]
    strip = charts.entropy_strip(labels, traced.entropy, 3, 4).to_dict()
    assert strip["params"][0]["select"]["fields"] == ["position"]
    rule = next(layer for layer in strip["layer"] if layer["mark"].get("type") == "rule")
    assert rule["mark"]["strokeDash"] and next(iter(strip["datasets"].values()))
    bars = charts.top_k_bars(["a", "b", "c"], np.array([0.5, 0.3, 0.1]), 1)
    rows = next(iter(bars.to_dict()["datasets"].values()))
    assert [row["kind"] for row in rows] == [charts.OTHER, charts.CAME_NEXT, charts.OTHER]
    # Drawn: only the bar that came next has an outline, besides its own colour.
    drawn = ElementTree.fromstring(export.chart_svg(bars))
    group = next(g for g in drawn.iter() if "mark-rect role-mark" in g.get("class", ""))
    outlines = [path.get("stroke") for path in group]
    fills = [path.get("fill") for path in group]
    assert outlines == [None, palette.BLACK, None]  # transparent strokes are not drawn
    assert fills == [palette.BLUE, palette.ORANGE, palette.BLUE]


def test_rank_bands_start_with_the_top_k():
    assert [label for _, label in charts.rank_buckets(10)] == [
        "top 10",
        "11–100",
        "101–1,000",
        "1,001–10,000",
        "over 10,000",
    ]
    assert charts.rank_buckets(20)[1] == (100, "21–100")
    assert len(charts.rank_colors(10)) == len(charts.rank_buckets(10))


def test_the_lens_drops_its_words_when_cells_get_too_narrow():
    many = [f"t{i}" for i in range(charts.WORDS_UP_TO + 1)]
    shape = (2, len(many))
    chart = charts.lens_heatmap(
        many, np.full(shape, "x", dtype=object), np.ones(shape), np.ones(shape), (0, 0)
    )
    assert [layer["mark"]["type"] for layer in chart.to_dict()["layer"]] == ["rect", "rect"]


def test_the_lens_heatmap_exports_as_png_and_svg(tiny, traced, lensed):
    assert lensed.top1_labels.tolist() == lens.label_grid(tiny, lensed.top_ids[:, :, 0]).tolist()
    heatmap = charts.lens_heatmap(
        traced.tokens, lensed.top1_labels, lensed.top_probs[:, :, 0], lensed.entropy, (2, 1)
    )
    image = Image.open(io.BytesIO(export.chart_png(heatmap)))
    image.load()
    assert image.format == "PNG" and image.width > 100 and image.height > 100
    cells = [tag for tag, _, _ in svg_marks(heatmap)["mark-rect"] if tag == "path"]
    assert len(cells) >= lensed.n_layers * lensed.n_tokens  # one rect per (layer, position)
