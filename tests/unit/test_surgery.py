"""lib.surgery on the tiny random model: what an edit can and cannot reach, keys moved to the
source's position, and the report of what moved."""

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from lib import surgery
from lib.generate import generate
from lib.surgery import (
    CacheEdit,
    edited_pass,
    kl_divergence,
    replacements,
    rotate_keys,
    run_surgery,
)
from lib.trace import ROWS_AT_ONCE, by_rows

IDS = [5, 17, 99, 3, 42, 7, 61, 250, 8, 33, 120, 64]
REPEATED = [5, 17, 99, 3, 42, 7, 61, 250, 8, 3, 120, 64]  # token 3 at positions 3 and 9


def later_rows_moved(before, after, src):
    """Largest |Δ| per grid row, over the positions after the source: (L+1,)."""
    return np.abs(after[:, src + 1 :] - before[:, src + 1 :]).max(axis=(1, 2))


@pytest.mark.parametrize("kind", ["zero", "mean", "token"])
@pytest.mark.parametrize("first, last", [(0, 0), (1, 2), (2, 2)])
def test_an_edit_reaches_only_what_reads_the_edited_cache(tiny, kind, first, last):
    src = 4
    states = edited_pass(tiny, IDS, CacheEdit(src, first, last, kind, other=9))
    assert states.before.shape == states.after.shape == (4, len(IDS), tiny.shape.hidden)
    np.testing.assert_allclose(states.after[:, : src + 1], states.before[:, : src + 1], atol=1e-5)
    moved = later_rows_moved(states.before, states.after, src)
    assert np.all(moved[: first + 1] < 1e-5)  # rows 0..first of later tokens: out of reach
    assert moved[first + 1] > 1e-3  # the first row that reads the edited cache


def pre_rope_keys(lm, ids, layer):
    """The keys of one decoder layer before RoPE, as its k_proj computed them: (H_kv, T, hd)."""
    captured = {}
    k_proj = lm.model.model.layers[layer].self_attn.k_proj
    handle = k_proj.register_forward_hook(lambda module, args, out: captured.update(k=out))
    cache = DynamicCache(config=lm.model.config)
    try:
        with torch.inference_mode():
            lm.model(input_ids=torch.tensor([ids]), past_key_values=cache, use_cache=True)
    finally:
        handle.remove()
    shape = lm.shape
    keys = captured["k"][0].view(len(ids), shape.kv_heads, shape.head_dim).transpose(0, 1)
    return keys, cache


def rope_at(lm, keys, position):
    """`keys` (H_kv, n, hd) as the model rotates them at `position`, by transformers' own
    apply_rotary_pos_emb."""
    cos, sin = lm.model.model.rotary_emb(keys, torch.tensor([[position] * keys.shape[1]]))
    _, rotated = apply_rotary_pos_emb(keys[None], keys[None], cos, sin)
    return rotated[0]


@pytest.mark.parametrize("src, other, layer", [(3, 9, 1), (8, 2, 0), (5, 5, 2)])
def test_a_copied_key_is_the_other_tokens_key_at_the_source_position(tiny, src, other, layer):
    """The oracle: the other token's key before RoPE (hooked at k_proj), rotated to `src`."""
    before_rope, cache = pre_rope_keys(tiny, IDS, layer)
    with torch.inference_mode():
        key, value = replacements(tiny, cache, CacheEdit(src, layer, layer, "token", other))[layer]
        expected = rope_at(tiny, before_rope[:, other : other + 1], src)[:, 0]
        np.testing.assert_allclose(key[0].numpy(), expected.numpy(), atol=1e-5)
        np.testing.assert_array_equal(value[0].numpy(), cache.layers[layer].values[0, :, other])
        cached = cache.layers[layer].keys[0, :, other]  # where RoPE put it: position `other`
        assert (src == other) == np.allclose(key[0].numpy(), cached.numpy(), atol=1e-5)
        back = rotate_keys(tiny, key[:, :, None], torch.tensor([other - src]))[:, :, 0]
        np.testing.assert_allclose(back[0].numpy(), cached.numpy(), atol=1e-5)


def test_a_mean_key_is_the_mean_of_the_keys_before_rope_at_the_source(tiny):
    src, layer = 4, 1
    before_rope, cache = pre_rope_keys(tiny, IDS, layer)
    with torch.inference_mode():
        key, value = replacements(tiny, cache, CacheEdit(src, layer, layer, "mean"))[layer]
        expected = rope_at(tiny, before_rope.mean(dim=1, keepdim=True), src)[:, 0]
    np.testing.assert_allclose(key[0].numpy(), expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(value[0].numpy(), cache.layers[layer].values[0].mean(dim=1))


def test_layer_0_is_the_word_a_copy_of_the_same_word_changes_nothing(tiny, monkeypatch):
    """Layer 0's K/V are projections of the embedding alone: token 3 at position 9 offers the
    same key and value as at position 3, once its key is turned to position 3. A plain copy,
    without the turn, moves the token and changes what later tokens compute."""
    edit = CacheEdit(3, 0, 0, "token", other=9)
    rotated = run_surgery(tiny, REPEATED, 6, edit)
    assert rotated.kl.max() < 1e-9
    assert rotated.row_change.max() < 1e-6
    monkeypatch.setattr(surgery, "rotate_keys", lambda lm, keys, shift: keys)
    unrotated = run_surgery(tiny, REPEATED, 6, edit)
    assert unrotated.row_change[1:].min() > 100 * rotated.row_change.max()


def test_kl_divergence_is_torchs_and_zero_only_for_the_same_distribution():
    generator = torch.Generator().manual_seed(0)
    log_p = torch.log_softmax(torch.randn(50, 257, generator=generator), dim=-1)
    log_q = torch.log_softmax(torch.randn(50, 257, generator=generator), dim=-1)
    oracle = F.kl_div(log_q, log_p, reduction="none", log_target=True).sum(dim=-1)
    torch.testing.assert_close(kl_divergence(log_p, log_q), oracle)
    assert torch.all(kl_divergence(log_p, log_q) > 0)
    assert torch.all(kl_divergence(log_p, log_p) == 0)


def test_rows_compared_a_few_at_a_time_equal_all_at_once():
    generator = torch.Generator().manual_seed(1)
    rows = 2 * ROWS_AT_ONCE + 5  # two full chunks and a short one
    before, after = torch.randn(2, rows, 257, generator=generator)
    kl, top_before, top_after = by_rows(surgery._compare_rows, before, after)
    log_before, log_after = torch.log_softmax(before, -1), torch.log_softmax(after, -1)
    torch.testing.assert_close(kl, kl_divergence(log_before, log_after))
    assert torch.equal(top_before, before.argmax(-1)) and torch.equal(top_after, after.argmax(-1))
    assert not torch.equal(top_before, top_after)


def test_an_edit_without_effect_measures_only_rounding(tiny):
    """Replacing token 3's K/V by its own: the copy comes from the full pass, the cache from the
    prefix pass, so they differ by rounding only, and so does everything after."""
    result = run_surgery(tiny, IDS, 6, CacheEdit(3, 0, 2, "token", other=3))
    assert np.all(result.kl >= 0) and result.kl.max() < 1e-6
    assert not result.top_changed.any()
    assert result.row_change.max() < 1e-5 and result.split_rounding < 1e-5
    assert result.continuation_after == result.continuation_before


def test_surgery_reports_every_later_position(tiny):
    src, n_prompt = 2, 6
    result = run_surgery(tiny, IDS, n_prompt, CacheEdit(src, 0, 2, "zero"))
    assert list(result.positions) == list(range(src + 1, len(IDS)))
    assert result.kl.shape == result.top_before.shape == result.top_after.shape == (9,)
    assert np.all(result.kl >= 0) and result.kl.max() > 0
    assert result.row_change.shape == (4,)
    assert result.below_edit_change == 0.0 < result.above_edit_change  # same ops below the edit
    assert 0 < result.split_rounding < 1e-5
    assert result.start == n_prompt and result.wanted == len(IDS) - n_prompt
    assert len(result.continuation_before) == len(result.continuation_after) == 6
    table = result.table([str(i) for i in IDS], ["a"] * 9, ["b"] * 9)
    assert list(table["position"]) == list(result.positions)
    assert set(table["top-1 changed"]) <= {"yes", "no"}
    assert not table.isna().any().any()


def test_a_source_inside_the_continuation_regenerates_after_it(tiny):
    result = run_surgery(tiny, IDS, 4, CacheEdit(8, 1, 1, "mean"))
    assert result.start == 9 and len(result.continuation_after) == len(IDS) - 9


def test_the_greedy_continuation_is_what_the_unedited_cache_decodes(tiny):
    """The shortcut `continuation_is_greedy` relies on: the app's own greedy generation equals
    a greedy decode from the unedited cache of a full forward pass."""
    prompt = IDS[:5]
    run = generate(tiny, prompt, 8, use_cache=True)
    ids = list(prompt) + list(run.new_ids)
    edit = CacheEdit(1, 0, 2, "zero")
    decoded = run_surgery(tiny, ids, len(prompt), edit)
    reused = run_surgery(tiny, ids, len(prompt), edit, continuation_is_greedy=True)
    assert decoded.continuation_before == tuple(run.new_ids) == reused.continuation_before
    assert decoded.continuation_after == reused.continuation_after


def test_a_continuation_that_meets_the_end_of_sequence_says_so(tiny):
    """Make a token the model generates the end of sequence: the unedited continuation, decoded
    again, stops at its first appearance and says so."""
    prompt = IDS[:5]
    run = generate(tiny, prompt, 8, use_cache=True)
    ids = list(prompt) + list(run.new_ids)
    stop = run.new_ids[2]
    first = run.new_ids.index(stop)
    eos = tiny.tokenizer.eos_token_id
    tiny.tokenizer.eos_token_id = stop
    try:
        result = run_surgery(tiny, ids, len(prompt), CacheEdit(0, 1, 2, "zero"))
    finally:
        tiny.tokenizer.eos_token_id = eos
    assert tiny.tokenizer.eos_token_id == eos
    assert result.continuation_before == tuple(run.new_ids[: first + 1]) and result.ended_before
    assert result.ended_after == (result.continuation_after[-1] == stop)
    assert len(result.continuation_after) == 8 or result.ended_after


def test_first_divergence(tiny):
    result = run_surgery(tiny, IDS, 6, CacheEdit(3, 0, 2, "token", other=3))
    assert result.first_divergence is None
    cases = [((1, 2, 3), (1, 5, 3), 1), ((4, 2), (4, 2, 3), 2), ((7,), (8,), 0), ((), (), None)]
    for before, after, expected in cases:
        changed = replace(result, continuation_before=before, continuation_after=after)
        assert changed.first_divergence == expected


def test_an_edit_names_itself_as_the_url_does():
    assert CacheEdit(3, 1, 15, "zero").query == {"src": 3, "from": 1, "to": 15, "edit": "zero"}
    assert CacheEdit(3, 2, 2, "token", 7).query["other"] == 7


@pytest.mark.parametrize(
    "edit",
    [
        CacheEdit(11, 0, 0, "zero"),  # no later token
        CacheEdit(-1, 0, 0, "zero"),
        CacheEdit(2, 2, 1, "zero"),  # first above last
        CacheEdit(2, 0, 3, "zero"),  # beyond the last layer
        CacheEdit(2, 0, 0, "token", other=12),
    ],
)
def test_impossible_edits_are_refused(tiny, edit):
    with pytest.raises(ValueError):
        run_surgery(tiny, IDS, 6, edit)
