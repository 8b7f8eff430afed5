import numpy as np
import pytest
import torch

from lib.trace import ROWS_AT_ONCE, encode_prompt, run_trace, token_label


def plain_forward(lm, ids):
    with torch.inference_mode():
        return lm.model(
            input_ids=torch.tensor([ids]), output_attentions=True, output_hidden_states=True
        )


def test_trace_matches_a_plain_forward(tiny):
    ids = list(encode_prompt(tiny, "The cure for cancer is", 64).ids)
    trace = run_trace(tiny, ids)
    out = plain_forward(tiny, ids)
    T, L = len(ids), tiny.shape.layers
    assert trace.hidden.shape == (L + 1, T, tiny.shape.hidden)
    assert trace.attentions.shape == (L, tiny.shape.heads, T, T)
    assert trace.keys.shape == (L, tiny.shape.kv_heads, T, tiny.shape.head_dim)
    np.testing.assert_allclose(trace.attentions, torch.stack(out.attentions)[:, 0], atol=1e-6)
    np.testing.assert_allclose(trace.hidden, torch.stack(out.hidden_states)[:, 0], atol=1e-5)
    logits = out.logits[0]
    np.testing.assert_array_equal(trace.top_ids[:, 0], logits.argmax(-1).numpy())
    np.testing.assert_allclose(trace.logsumexp, torch.logsumexp(logits, -1), rtol=1e-6)


def test_trace_arrays_are_read_only(tiny):
    trace = run_trace(tiny, [1, 2, 3])
    with pytest.raises(ValueError):
        trace.hidden[0, 0, 0] = 1.0


def test_cached_keys_and_values_are_projections_of_the_layer_input(tiny):
    """K and V at layer l are k_proj/v_proj(norm(hidden state entering layer l)); K is rotated."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    ids = [5, 9, 2, 7]
    trace = run_trace(tiny, ids)
    layer = tiny.model.model.layers[1]
    T, H_kv = len(ids), tiny.shape.kv_heads
    with torch.inference_mode():
        entering = layer.input_layernorm(torch.from_numpy(trace.hidden[1].copy()))  # (T, d)
        values = layer.self_attn.v_proj(entering).view(T, H_kv, -1).transpose(0, 1)
        keys = layer.self_attn.k_proj(entering).view(1, T, H_kv, -1).transpose(1, 2)
        cos, sin = tiny.model.model.rotary_emb(keys, torch.arange(T)[None])
        rotated, _ = apply_rotary_pos_emb(keys, keys, cos, sin)  # (1, H_kv, T, hd)
    np.testing.assert_allclose(trace.values[1], values.numpy(), atol=1e-5)
    np.testing.assert_allclose(trace.keys[1], rotated[0].numpy(), atol=1e-5)


def test_probabilities_and_entropy_match_the_softmax_of_a_plain_forward(tiny):
    trace = run_trace(tiny, [3, 4, 5])
    probs = torch.softmax(plain_forward(tiny, [3, 4, 5]).logits[0], -1)  # (T, V)
    expected_top = torch.gather(probs, -1, torch.from_numpy(trace.top_ids.copy()))
    np.testing.assert_allclose(trace.top_probs, expected_top.numpy(), rtol=1e-5)
    entropy = -(probs * probs.log()).sum(-1)
    np.testing.assert_allclose(trace.entropy, entropy.numpy(), rtol=1e-5)


def test_a_prompt_longer_than_one_chunk_of_rows_is_summarised_whole(tiny):
    ids = [(7 * i) % 50 + 3 for i in range(ROWS_AT_ONCE + 9)]  # a full chunk and a short one
    trace = run_trace(tiny, ids)
    probs = torch.softmax(plain_forward(tiny, ids).logits[0], -1)  # (T, V)
    assert trace.top_ids.shape[0] == trace.entropy.shape[0] == len(ids)
    np.testing.assert_array_equal(trace.top_ids[:, 0], probs.argmax(-1).numpy())
    np.testing.assert_allclose(trace.entropy, -(probs * probs.log()).sum(-1).numpy(), rtol=1e-5)


def test_prompt_budget_truncates_with_a_notice(tiny):
    encoded = encode_prompt(tiny, "x" * 50, max_tokens=10)
    assert len(encoded.ids) == 10 and "first 10" in encoded.notices[0]
    assert encode_prompt(tiny, "short", 10).notices == ()


def test_token_labels_are_readable(tiny, real):
    assert token_label(tiny.tokenizer, tiny.tokenizer(" ").input_ids[0]) == "·"
    partial = real.tokenizer("שלום", add_special_tokens=False).input_ids
    labels = [token_label(real.tokenizer, i) for i in partial]
    assert all("\ufffd" not in label for label in labels)
