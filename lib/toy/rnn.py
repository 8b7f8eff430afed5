"""A tiny stacked Elman RNN: h[t, l] = tanh(W h[t, l-1] + U h[t-1, l] + b), h[-1, l] = 0.

`full_cells` runs layer by layer over the whole sequence (as cuDNN-style training does); `step`
runs all layers for one token and carries one hidden vector per layer — a state that never grows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lib.toy.common import Cells, ToyModel, seeded_weight


@dataclass(frozen=True)
class HiddenState:
    """The last hidden vector of each layer: (L, d)."""

    hidden: Tensor

    def size(self) -> int:
        return self.hidden.numel()


class ElmanCell(nn.Module):
    def __init__(self, width: int, generator: torch.Generator) -> None:
        super().__init__()
        self.w = seeded_weight(generator, width, width, fan_in=width)
        self.u = seeded_weight(generator, width, width, fan_in=width)
        self.b = seeded_weight(generator, width, fan_in=width)

    def forward(self, below: Tensor, previous: Tensor) -> Tensor:
        """below, previous: (d,) → (d,)"""
        return torch.tanh(self.w @ below + self.u @ previous + self.b)


class ToyRNN(ToyModel[HiddenState]):
    name = "rnn"

    def __init__(
        self, layers: int, *, seed: int = 0, width: int = 16, heads: int = 2, vocab: int = 16
    ) -> None:
        super().__init__(layers, seed=seed, width=width, heads=heads, vocab=vocab)
        self.cells = nn.ModuleList(ElmanCell(width, self.generator) for _ in range(layers))

    def initial_state(self) -> HiddenState:
        return HiddenState(self.embedding.new_zeros(self.layers, self.width))

    def step_cells(self, x: Tensor, state: HiddenState) -> tuple[list[Tensor], HiddenState]:
        cells = [x]  # (d,) each
        for cell, previous in zip(self.cells, state.hidden, strict=True):
            cells.append(cell(cells[-1], previous))  # (d,)
        return cells, HiddenState(torch.stack(cells[1:]))  # (L, d)

    def full_cells(self, tokens: Tensor) -> Cells:
        cells = [[e] for e in self.embedding[tokens].unbind(0)]  # T × [(d,)]
        for cell in self.cells:
            h = self.embedding.new_zeros(self.width)  # (d,)
            for row in cells:
                h = cell(row[-1], h)  # (d,)
                row.append(h)
        return cells
