"""The real SmolLM2-135M: our trace and our decoding against plain transformers calls."""

import numpy as np
import pytest
import torch

from lib.generate import generate, steps
from lib.trace import encode_prompt, run_trace

PROMPTS = [
    "The cure for cancer is",
    "Alice has 3 apples. Bob gives her 2 more. Now Alice has",
    "Roses are red, violets are blue,",
    "def fibonacci(n):",
    "La capitale de la France est",
]


def test_real_model_has_the_documented_shape(real):
    shape = real.shape
    assert (shape.layers, shape.heads, shape.kv_heads, shape.hidden) == (30, 9, 3, 576)
    assert shape.cache_bytes_per_token == 2 * 30 * 3 * 64 * 4


def test_trace_matches_a_plain_forward(real):
    ids = list(encode_prompt(real, PROMPTS[1], 64).ids)
    trace = run_trace(real, ids)
    with torch.inference_mode():
        out = real.model(
            input_ids=torch.tensor([ids]), output_attentions=True, output_hidden_states=True
        )
    np.testing.assert_allclose(trace.attentions, torch.stack(out.attentions)[:, 0], atol=1e-5)
    top_logits = torch.gather(out.logits[0], -1, torch.from_numpy(trace.top_ids))
    np.testing.assert_allclose(trace.top_logits, top_logits.numpy(), atol=1e-4)
    np.testing.assert_array_equal(trace.top_ids[:, 0], out.logits[0].argmax(-1).numpy())


@pytest.mark.parametrize("prompt", PROMPTS)
def test_cache_on_and_off_agree_on_the_real_model(real, prompt):
    ids = encode_prompt(real, prompt, 64).ids
    on = generate(real, ids, 32, use_cache=True)
    off = generate(real, ids, 32, use_cache=False)
    assert on.new_ids == off.new_ids
    logits_on, logits_off = (
        np.stack([logits.numpy() for _, logits, _ in steps(real, ids, 32, use_cache=cached)])
        for cached in (True, False)
    )
    assert np.abs(logits_on - logits_off).max() <= 1e-3
    assert (on.cells[1:] == real.shape.layers).all()
    assert off.cells[-1] == (len(ids) + len(off.steps) - 1) * real.shape.layers


def test_greedy_decoding_matches_transformers_generate(real):
    ids = encode_prompt(real, PROMPTS[0], 64).ids
    ours = generate(real, ids, 16, use_cache=True)
    assert len(ours.new_ids) == 16 or ours.new_ids[-1] == real.tokenizer.eos_token_id
    with torch.inference_mode():
        theirs = real.model.generate(
            torch.tensor([ids]), max_new_tokens=16, do_sample=False, pad_token_id=2
        )
    assert list(ours.new_ids) == theirs[0, len(ids) :].tolist()[: len(ours.new_ids)]
