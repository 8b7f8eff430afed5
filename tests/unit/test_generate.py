import dataclasses

import numpy as np
import pytest

from lib.generate import cell_counter, generate


@pytest.mark.parametrize("seed", [None, 3])
def test_cache_on_and_off_give_the_same_tokens(tiny, seed):
    on = generate(tiny, [10, 20, 30], 12, use_cache=True, seed=seed)
    off = generate(tiny, [10, 20, 30], 12, use_cache=False, seed=seed)
    assert on.new_ids == off.new_ids
    assert np.abs(on.logits - off.logits).max() < 1e-4


def test_seeds_change_sampled_tokens_and_greedy_is_argmax(tiny):
    greedy = generate(tiny, [1, 2], 8, use_cache=True)
    assert greedy.new_ids == tuple(int(np.argmax(row)) for row in greedy.logits)
    draws = {generate(tiny, [1, 2], 8, use_cache=True, seed=s).new_ids for s in range(4)}
    assert len(draws) > 1


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
