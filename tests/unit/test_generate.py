import dataclasses

import numpy as np
import pytest

from lib.generate import cell_counter, generate, steps


@pytest.mark.parametrize("seed", [None, 3])
def test_cache_on_and_off_give_the_same_tokens(tiny, seed):
    on = list(steps(tiny, [10, 20, 30], 12, use_cache=True, seed=seed))
    off = list(steps(tiny, [10, 20, 30], 12, use_cache=False, seed=seed))
    assert [s.token_id for s, _, _ in on] == [s.token_id for s, _, _ in off]
    for (_, logits_on, _), (_, logits_off, _) in zip(on, off, strict=True):
        assert (logits_on - logits_off).abs().max() < 1e-4


def test_seeds_change_sampled_tokens_and_greedy_is_argmax(tiny):
    greedy = list(steps(tiny, [1, 2], 8, use_cache=True))
    assert all(step.token_id == int(np.argmax(logits)) for step, logits, _ in greedy)
    draws = {generate(tiny, [1, 2], 8, use_cache=True, seed=s).new_ids for s in range(4)}
    assert len(draws) > 1


def test_a_recorded_run_keeps_its_reads_and_its_decode_cache_only(tiny):
    recorded = generate(tiny, [1, 2, 3], 4, use_cache=True, record=True)
    plain = generate(tiny, [1, 2, 3], 4, use_cache=True)
    assert recorded.new_ids == plain.new_ids and plain.cache is None
    assert all(step.reads is None for step in plain.steps)
    fed = 3 + 4 - 1  # the last token chosen is never fed
    assert recorded.cache.keys.shape[:3] == (tiny.shape.layers, tiny.shape.kv_heads, fed)
    assert not recorded.cache.keys.flags.writeable


def test_cells_are_counted_by_the_forward_pass(tiny):
    prompt, new, L = [4, 5, 6, 7], 6, tiny.shape.layers
    on = generate(tiny, prompt, new, use_cache=True)
    off = generate(tiny, prompt, new, use_cache=False)
    # cache on: the prompt once, then one column per step; off: every column again
    assert on.cells.tolist() == [len(prompt) * L] + [L] * (new - 1)
    assert off.cells.tolist() == [(len(prompt) + step) * L for step in range(new)]
    # step s >= 1 feeds the token chosen at step s - 1, which sits at position len(prompt) + s - 1
    assert on.steps[2].computed.tolist() == [[len(prompt) + 1, len(prompt) + 2]] * L


def test_cache_bytes_are_measured_and_grow_linearly(tiny):
    prompt = [4, 5, 6]
    run = generate(tiny, prompt, 5, use_cache=True)
    per_token = tiny.shape.cache_bytes_per_token
    assert run.cache_bytes.tolist() == [per_token * (len(prompt) + i) for i in range(5)]
    assert generate(tiny, prompt, 2, use_cache=False).cache_bytes.tolist() == [0, 0]


def test_hooks_are_removed_even_when_the_block_fails(tiny):
    layers = tiny.model.model.layers
    with pytest.raises(RuntimeError), cell_counter(tiny.model):
        assert all(len(layer._forward_pre_hooks) == 1 for layer in layers)
        raise RuntimeError("boom")
    assert all(len(layer._forward_pre_hooks) == 0 for layer in layers)


class EndsAt:
    """The tiny tokenizer, with another token declared the end of sequence."""

    def __init__(self, tokenizer, eos: int) -> None:
        self._tokenizer, self.eos_token_id = tokenizer, eos

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)


def test_generation_stops_at_end_of_sequence(tiny):
    free = generate(tiny, [1, 2, 3], 6, use_cache=True)
    eos = free.new_ids[2]  # declare the third token chosen to be the end of sequence
    ending = dataclasses.replace(tiny, tokenizer=EndsAt(tiny.tokenizer, eos))
    run = generate(ending, [1, 2, 3], 200, use_cache=True)
    assert run.new_ids == free.new_ids[: free.new_ids.index(eos) + 1]


def test_on_step_sees_every_step(tiny):
    seen = []
    run = generate(tiny, [1, 2], 5, use_cache=True, on_step=seen.append)
    assert tuple(seen) == run.steps
