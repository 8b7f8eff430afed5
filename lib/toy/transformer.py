"""A tiny causal transformer: layer l of token t reads layer l-1 of every token up to t.

`full_cells` is the training path — each layer handles all positions at once behind a causal
mask — and `step` is the generation path with a growing per-layer K/V cache. The two share the
weights but not the code path (mask vs cache), so step ≡ full is a real check.
No positional encoding: it changes no dependency, and causal attention alone already orders tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lib.toy.common import Block, Cells, ToyModel, rms_norm


@dataclass(frozen=True)
class KVCache:
    """Keys and values of every past token, per layer: L tensors of (t, d) each."""

    keys: tuple[Tensor, ...]
    values: tuple[Tensor, ...]

    def size(self) -> int:
        return sum(k.numel() + v.numel() for k, v in zip(self.keys, self.values, strict=True))


class ToyTransformer(ToyModel[KVCache]):
    name = "transformer"

    def __init__(
        self, layers: int, *, seed: int = 0, width: int = 16, heads: int = 2, vocab: int = 16
    ) -> None:
        super().__init__(layers, seed=seed, width=width, heads=heads, vocab=vocab)
        self.blocks = nn.ModuleList(Block(width, heads, self.generator) for _ in range(layers))

    def initial_state(self) -> KVCache:
        empty = tuple(self.embedding.new_zeros(0, self.width) for _ in range(self.layers))
        return KVCache(keys=empty, values=empty)

    def step_cells(self, x: Tensor, state: KVCache) -> tuple[list[Tensor], KVCache]:
        cells, keys, values = [x], [], []  # cells: (d,) each
        for block, past_k, past_v in zip(self.blocks, state.keys, state.values, strict=True):
            h = cells[-1][None]  # (1, d)
            k, v = block.attention.keys_values(rms_norm(h))  # (1, d) each
            keys.append(torch.cat([past_k, k]))  # (t+1, d)
            values.append(torch.cat([past_v, v]))  # (t+1, d)
            cells.append(block(h, keys[-1], values[-1], mask=None)[0])  # (d,)
        return cells, KVCache(tuple(keys), tuple(values))

    def full_cells(self, tokens: Tensor) -> Cells:
        cells = [[e] for e in self.embedding[tokens].unbind(0)]  # T × [(d,)]
        causal = torch.ones(len(tokens), len(tokens), dtype=torch.bool).tril()  # (T, T)
        for block in self.blocks:
            x = torch.stack([row[-1] for row in cells])  # (T, d)
            k, v = block.attention.keys_values(rms_norm(x))  # (T, d) each
            for row, cell in zip(cells, block(x, k, v, causal).unbind(0), strict=True):
                row.append(cell)
        return cells
