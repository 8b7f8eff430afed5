"""A tiny feedback transformer (Fan et al. 2020, arXiv:2002.09402).

After token t is processed, its layers 0..L are mixed into one memory vector
m_t = Σ_l softmax(w)_l · x[t, l]. Layer l of a later token attends to all past memories, with its
own key/value projections of them, so even layer 1 reads what the past computed in its top layer.
As in the official code, step t attends only to m_<t (its own state enters through the residual),
so token 0 has nothing to attend to.

There is no parallel form: `full_cells` must also go token by token, through the same `_token` as
`step_cells`, so step ≡ full here checks the memory bookkeeping rather than a second code path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lib.toy.common import Block, Cells, ToyModel, rms_norm, seeded_weight


@dataclass(frozen=True)
class Memories:
    """One memory vector per past token: (t, d)."""

    memories: Tensor

    def size(self) -> int:
        return self.memories.numel()


class ToyFeedbackTransformer(ToyModel[Memories]):
    name = "feedback"

    def __init__(
        self, layers: int, *, seed: int = 0, width: int = 16, heads: int = 2, vocab: int = 16
    ) -> None:
        super().__init__(layers, seed=seed, width=width, heads=heads, vocab=vocab)
        self.blocks = nn.ModuleList(Block(width, heads, self.generator) for _ in range(layers))
        self.layer_logits = seeded_weight(self.generator, layers + 1, fan_in=1)  # (L+1,)

    def initial_state(self) -> Memories:
        return Memories(self.embedding.new_zeros(0, self.width))

    def step_cells(self, x: Tensor, state: Memories) -> tuple[list[Tensor], Memories]:
        cells = self._token(x, state.memories)  # L+1 × (d,)
        memories = torch.cat([state.memories, self._memory(torch.stack(cells))[None]])  # (t+1, d)
        return cells, Memories(memories)

    def full_cells(self, tokens: Tensor) -> Cells:
        cells: Cells = []
        memories: list[Tensor] = []  # t × (d,)
        for token in tokens.tolist():
            past = torch.stack(memories) if memories else self.embedding.new_zeros(0, self.width)
            cells.append(self._token(self.embedding[token], past))
            memories.append(self._memory(torch.stack(cells[-1])))
        return cells

    def _token(self, x: Tensor, memories: Tensor) -> list[Tensor]:
        """The L+1 cells of one token, each (d,), from its embedding x (d,) and the past
        memories (t, d)."""
        cells = [x]  # [(d,)]
        normed = rms_norm(memories)  # (t, d)
        for block in self.blocks:
            k, v = block.attention.keys_values(normed)  # (t, d) each: this layer's own view
            cells.append(block(cells[-1][None], k, v, mask=None)[0])  # (d,)
        return cells

    def _memory(self, cells: Tensor) -> Tensor:
        """m_t = Σ_l softmax(w)_l · x[t, l]: cells (L+1, d) → (d,)."""
        return self.layer_logits.softmax(dim=0) @ cells
