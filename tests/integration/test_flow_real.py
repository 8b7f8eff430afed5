"""/flow's claims on the real SmolLM2-135M: edges are the model's attention, the gradient cone
respects the structure, and cache surgery reaches exactly what reads the edited cache."""

import numpy as np
import pytest
import torch

from lib.flow import gradient_cone, incoming_edges, structural_cones, value_norms
from lib.generate import generate
from lib.stepping import Cell
from lib.surgery import CacheEdit, edited_pass, run_surgery
from lib.trace import encode_prompt, run_trace

PROMPT = "The capital of France is Paris. The capital of Italy is"


@pytest.fixture(scope="module")
def ids(real):
    return list(encode_prompt(real, PROMPT, 64).ids)


def test_edges_equal_a_plain_transformers_forward(real, ids):
    trace = run_trace(real, ids)
    norms = value_norms(real, trace)
    with torch.inference_mode():
        plain = real.model(input_ids=torch.tensor([ids]), output_attentions=True).attentions
    for token, layer in [(5, 12), (len(ids) - 1, 30), (3, 1)]:
        weights = plain[layer - 1][0, :, token, : token + 1].numpy()  # (H, t+1)
        cell = Cell(token, layer)
        for head in (0, 4, 8):  # one query head of each KV group
            edges = incoming_edges(trace, norms, cell, head)
            np.testing.assert_allclose(edges.attention, weights[head], atol=1e-5)
        mean = incoming_edges(trace, norms, cell, "all", "mean")
        np.testing.assert_allclose(mean.attention, weights.mean(axis=0), atol=1e-5)
        peak = incoming_edges(trace, norms, cell, "all", "max")
        np.testing.assert_allclose(peak.attention, weights.max(axis=0), atol=1e-5)


def test_gradient_cone_matches_the_structural_cone(real, ids):
    cell = Cell(7, 12)
    cone = gradient_cone(real, ids, cell)
    cones = structural_cones(cell, len(ids), real.shape.layers)
    outside = ~cones.backward
    outside[cell.layer, cell.token] = False
    assert np.abs(cone.norms[outside]).max() <= 1e-12  # later tokens, rows ≥ 12: nothing
    assert np.all(cone.norms[cell.layer - 1, : cell.token + 1] > 1e-6)  # the direct parents
    assert np.count_nonzero(cone.norms[cones.backward]) == cones.backward.sum()


def relative_change(before, after):
    """‖Δh‖ / ‖h‖ for every (row, position): states differ in size by 10⁴ across the grid."""
    return np.linalg.norm(after - before, axis=-1) / np.linalg.norm(before, axis=-1)


def test_surgery_on_one_layer_reaches_only_the_rows_above_it(real, ids):
    src, layer = 3, 10
    states = edited_pass(real, ids, CacheEdit(src, layer, layer, "zero"))
    change = relative_change(states.before, states.after)  # (L+1, T)
    assert change[: layer + 1, src + 1 :].max() < 1e-5  # split-pass float error only
    assert change[layer + 1, src + 1 :].max() > 1e-2  # the first row that reads the edit
    assert change[:, : src + 1].max() < 1e-5  # the source and before ran before the edit


def test_editing_earlier_internal_states_moves_later_predictions(real, ids):
    prompt = ids
    run = generate(real, prompt, 6, use_cache=True)
    sequence = prompt + list(run.new_ids)
    result = run_surgery(real, sequence, len(prompt), CacheEdit(0, 0, 29, "mean"))
    assert result.kl.max() > 0.05  # same words, different internal states, different output
    assert result.below_edit_change < 1e-6 and result.split_rounding < 1e-4
    assert result.continuation_before == tuple(run.new_ids)  # greedy from the unedited cache


def test_layer_0_holds_the_word_and_layers_above_hold_more(real, ids):
    """The same word twice: at layer 0 its K/V, moved to the other position, are the same (the
    word, nothing computed yet); from layer 1 on they differ, and swapping them moves later
    predictions — what the earlier occurrence computed is read, not only its word."""
    first, second = (i for i, token in enumerate(ids) if ids.count(token) > 1 and token == ids[1])
    word = run_surgery(real, ids, len(ids), CacheEdit(first, 0, 0, "token", other=second))
    assert word.kl.max() < 1e-6 and word.row_change.max() < 1e-4
    states = run_surgery(real, ids, len(ids), CacheEdit(first, 1, 29, "token", other=second))
    assert states.kl.max() > 100 * max(word.kl.max(), 1e-9)
