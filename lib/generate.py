"""Step-by-step decoding with the KV cache on or off, instrumented.

Each step records the token it chose, the logits it chose from, how long the forward pass took,
how many bytes the cache holds, and which (token, layer) cells the model really computed. The
cells are counted by hooks on the decoder layers of the real forward pass, not by formula: with
the cache on a step computes one column of the grid, with it off every earlier column again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from transformers import DynamicCache

from lib.models import LoadedModel
from lib.trace import token_label


@dataclass(frozen=True)
class Step:
    token_id: int
    label: str
    logits: np.ndarray  # (V,) float32: the distribution this step chose from
    seconds: float  # wall time of the forward pass (lock wait excluded)
    computed: np.ndarray  # (L, 2): positions [start, stop) each layer computed in this step
    cache_bytes: int  # bytes of K and V held by the cache after this step (0 without cache)


@dataclass(frozen=True)
class GenerationTrace:
    model_id: str
    use_cache: bool
    seed: int | None
    prompt_ids: tuple[int, ...]
    steps: tuple[Step, ...]

    @property
    def new_ids(self) -> tuple[int, ...]:
        return tuple(step.token_id for step in self.steps)

    @property
    def logits(self) -> np.ndarray:  # (N, V)
        return np.stack([step.logits for step in self.steps])

    @property
    def seconds(self) -> np.ndarray:  # (N,)
        return np.array([step.seconds for step in self.steps])

    @property
    def cells(self) -> np.ndarray:  # (N,): (token, layer) cells computed per step
        return np.array([int((s.computed[:, 1] - s.computed[:, 0]).sum()) for s in self.steps])

    @property
    def cache_bytes(self) -> np.ndarray:  # (N,)
        return np.array([step.cache_bytes for step in self.steps])


@contextmanager
def cell_counter(model: torch.nn.Module) -> Iterator[list[tuple[int, int, int]]]:
    """Record (layer, first position, last position + 1) for every decoder layer call.

    The hooks live only inside the `with` block: the model is shared by every session, and a
    hook left attached would count (or slow) someone else's forward pass.
    """
    records: list[tuple[int, int, int]] = []
    handles = []

    def hook_for(layer: int):
        def record(module, args, kwargs):
            positions = kwargs["position_ids"][0]
            records.append((layer, int(positions[0]), int(positions[-1]) + 1))

        return record

    try:
        for index, layer in enumerate(model.model.layers):
            handles.append(layer.register_forward_pre_hook(hook_for(index), with_kwargs=True))
        yield records
    finally:
        for handle in handles:
            handle.remove()


def cache_nbytes(cache: DynamicCache) -> int:
    """Bytes held by the K and V tensors of every layer of a cache, measured on the tensors."""
    return sum(
        layer.keys.nelement() * layer.keys.element_size()
        + layer.values.nelement() * layer.values.element_size()
        for layer in cache.layers
        if layer.keys is not None
    )


def choose(logits: torch.Tensor, generator: torch.Generator | None) -> int:
    """Greedy without a generator; otherwise a draw from the softmax with that seeded generator."""
    if generator is None:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.float(), dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def generate_steps(
    lm: LoadedModel,
    prompt_ids: Sequence[int],
    new_tokens: int,
    use_cache: bool,
    seed: int | None = None,
) -> Iterator[Step]:
    """Yield one Step per generated token; stops early at the end-of-sequence token.

    The shared lock is held per step, not for the whole generation: the cache belongs to this
    generation alone, so sessions may interleave their steps safely.
    """
    if not prompt_ids:
        raise ValueError("generation needs at least one prompt token")
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    ids = list(prompt_ids)
    cache = DynamicCache(config=lm.model.config) if use_cache else None
    eos = lm.tokenizer.eos_token_id
    for _ in range(new_tokens):
        fed = ids[-1:] if use_cache and cache.get_seq_length() else ids
        with lm.lock, torch.inference_mode(), cell_counter(lm.model) as calls:
            start = time.perf_counter()
            out = lm.model(
                input_ids=torch.tensor([fed]),
                past_key_values=cache,
                use_cache=use_cache,
                logits_to_keep=1,
            )
            logits = out.logits[0, -1]
            token = choose(logits, generator)
            seconds = time.perf_counter() - start
            label = token_label(lm.tokenizer, token)
        computed = np.zeros((lm.model.config.num_hidden_layers, 2), dtype=np.int64)
        for layer, first, stop in calls:
            computed[layer] = (first, stop)
        yield Step(
            token_id=token,
            label=label,
            logits=logits.float().numpy().copy(),
            seconds=seconds,
            computed=computed,
            cache_bytes=cache_nbytes(cache) if use_cache else 0,
        )
        ids.append(token)
        if token == eos:
            return


def generate(
    lm: LoadedModel,
    prompt_ids: Sequence[int],
    new_tokens: int,
    use_cache: bool,
    seed: int | None = None,
    on_step: Callable[[Step], None] | None = None,
) -> GenerationTrace:
    """Run `generate_steps` to the end and keep every step; `on_step` sees each as it comes."""
    steps = []
    for step in generate_steps(lm, prompt_ids, new_tokens, use_cache, seed):
        steps.append(step)
        if on_step is not None:
            on_step(step)
    return GenerationTrace(lm.spec.id, use_cache, seed, tuple(prompt_ids), tuple(steps))
