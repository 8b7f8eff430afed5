"""Several sessions share one model: each must get exactly what it gets alone."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from lib.generate import generate
from lib.trace import encode_prompt, run_trace

PROMPTS = ["The cure for cancer is", "Roses are red,", "def add(a, b):", "Paris is the capital of"]


def work(lm, prompt: str):
    ids = encode_prompt(lm, prompt, 64).ids
    run = generate(lm, ids, 8, use_cache=True)
    trace = run_trace(lm, ids + run.new_ids)
    return run.new_ids, trace.top_ids[:, 0], trace.attentions[-1]


def test_parallel_sessions_get_the_results_they_get_alone(real):
    alone = [work(real, prompt) for prompt in PROMPTS]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda prompt: work(real, prompt), PROMPTS * 2))
    for index, (new_ids, top, attention) in enumerate(together):
        expected = alone[index % len(PROMPTS)]
        assert new_ids == expected[0]
        np.testing.assert_array_equal(top, expected[1])
        np.testing.assert_allclose(attention, expected[2], atol=1e-6)
    layers = real.model.model.layers
    assert all(not layer._forward_pre_hooks for layer in layers)  # no hook outlived its call
