"""Step-by-step decoding with the KV cache on or off, instrumented.

Each step records the token it chose, how long the forward pass took, how many bytes the cache
holds, and which (token, layer) cells the model really computed. The cells are counted by hooks
on the decoder layers of the real forward pass, not by formula: with the cache on a step
computes one column of the grid, with it off every earlier column again. A cached run can also
keep what the new token read: its attention over the cache at every layer, and the cache itself
at the end, so a page shows the decode cache, not a re-computation of it.

Full-vocabulary logits are not kept (200 KB a step for SmolLM2): whoever compares them does so
while they exist (`steps`).
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
from lib.trace import token_labels


@dataclass(frozen=True)
class Step:
    token_id: int
    label: str
    seconds: float  # wall time of the forward pass (lock wait excluded)
    computed: np.ndarray  # (L, 2): positions [start, stop) each layer computed in this step
    cache_bytes: int  # bytes of K and V held by the cache after this step (0 without cache)
    reads: np.ndarray | None = None  # (L, H, q+1): the fed token's attention, when recorded


@dataclass(frozen=True)
class DecodeCache:
    """The K and V rows the cache held after the last step: (L, H_kv, T, d_head) each, T being
    every position fed (the last chosen token is never fed, so it has none)."""

    keys: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class GenerationTrace:
    model_id: str
    use_cache: bool
    seed: int | None
    prompt_ids: tuple[int, ...]
    steps: tuple[Step, ...]
    cache: DecodeCache | None = None  # with the cache on and `record=True`

    @property
    def new_ids(self) -> tuple[int, ...]:
        return tuple(step.token_id for step in self.steps)

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


def _frozen(tensor: torch.Tensor) -> np.ndarray:
    array = tensor.detach().float().numpy().copy()
    array.flags.writeable = False
    return array


def steps(
    lm: LoadedModel,
    prompt_ids: Sequence[int],
    new_tokens: int,
    use_cache: bool,
    seed: int | None = None,
    record: bool = False,
) -> Iterator[tuple[Step, torch.Tensor, DynamicCache | None]]:
    """Yield each Step with the logits (V,) it chose from and the cache after it; stops early at
    the end-of-sequence token. With `record` (cache on), each step keeps the fed token's
    attention over every cached row.

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
                output_attentions=record,
            )
            logits = out.logits[0, -1]
            token = choose(logits, generator)
            seconds = time.perf_counter() - start
        label = token_labels(lm, [token])[0]
        computed = np.zeros((lm.model.config.num_hidden_layers, 2), dtype=np.int64)
        for layer, first, stop in calls:
            computed[layer] = (first, stop)
        reads = _frozen(torch.stack([a[0, :, -1] for a in out.attentions])) if record else None
        step = Step(
            token_id=token,
            label=label,
            seconds=seconds,
            computed=computed,
            cache_bytes=cache_nbytes(cache) if use_cache else 0,
            reads=reads,  # (L, H, q+1)
        )
        yield step, logits, cache
        ids.append(token)
        if token == eos:
            return


def decode_cache(cache: DynamicCache) -> DecodeCache:
    """The cache's K and V rows as read-only arrays, (L, H_kv, T, d_head) each."""
    return DecodeCache(
        keys=_frozen(torch.stack([layer.keys[0] for layer in cache.layers])),
        values=_frozen(torch.stack([layer.values[0] for layer in cache.layers])),
    )


def generate(
    lm: LoadedModel,
    prompt_ids: Sequence[int],
    new_tokens: int,
    use_cache: bool,
    seed: int | None = None,
    on_step: Callable[[Step], None] | None = None,
    record: bool = False,
) -> GenerationTrace:
    """Run `steps` to the end and keep every step; `on_step` sees each as it comes."""
    kept, cache = [], None
    for step, _, after in steps(lm, prompt_ids, new_tokens, use_cache, seed, record):
        kept.append(step)
        cache = after
        if on_step is not None:
            on_step(step)
    final = decode_cache(cache) if record and use_cache else None
    return GenerationTrace(lm.spec.id, use_cache, seed, tuple(prompt_ids), tuple(kept), final)
