"""Pieces shared by the three toy models: the model interface, seeded weights, attention, MLP.

Every model computes the same token × layer grid of cells as `lib.architectures`: cell (t, l) is a
(d,) tensor, l = 0 the embedding. `full_cells` builds the whole grid with each cell a real node of
the autograd graph, so the gradient of one cell with respect to every other cell shows exactly which
cells it was computed from. `step` is the generation path: one token at a time with a state (cache)
that the model carries itself, as in transformers' cache design. Each model is a
`lib.stepping.SteppingModel`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar, Generic, Protocol, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from lib.architectures import Architecture, make_rule
from lib.stepping import Cell

DTYPE = torch.float64  # exact enough that step ≡ full holds to ~1e-13
Cells = list[list[Tensor]]  # cells[t][l], each (d,)


class SizedState(Protocol):
    """What a toy model carries from one `step` to the next."""

    def size(self) -> int:
        """How many numbers the state holds (compare `Architecture.state_values`)."""
        ...


S = TypeVar("S", bound=SizedState)


def seeded_weight(generator: torch.Generator, *shape: int, fan_in: int) -> nn.Parameter:
    """Gaussian weights scaled by 1/√fan_in from the model's own generator, so a seed fixes the
    model whatever else has touched torch's global random state."""
    weight = torch.randn(*shape, generator=generator, dtype=DTYPE) / math.sqrt(fan_in)
    return nn.Parameter(weight)


def rms_norm(x: Tensor) -> Tensor:
    """Parameter-free RMS norm over the last axis; keeps deep random stacks in a sane range."""
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + 1e-6)


class Attention(nn.Module):
    """Multi-head attention split into its two halves, because the models differ only in where the
    keys and values come from (the same layer's tokens, a cache, or the feedback memories)."""

    def __init__(self, width: int, heads: int, generator: torch.Generator) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.wq, self.wk, self.wv, self.wo = (
            seeded_weight(generator, width, width, fan_in=width) for _ in range(4)
        )

    def keys_values(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values of the rows of x: (n, d) → (n, d), (n, d)."""
        return x @ self.wk.T, x @ self.wv.T

    def forward(self, x: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None) -> Tensor:
        """Queries from x (n, d) attend to keys/values (m, d); mask (n, m) True = may attend.
        With no keys (nothing in the past) the output is zero."""
        n, width = x.shape
        if keys.shape[0] == 0:
            return x.new_zeros(n, width)
        head = width // self.heads
        q = (x @ self.wq.T).view(n, self.heads, head).transpose(0, 1)  # (h, n, dh)
        k = keys.view(-1, self.heads, head).transpose(0, 1)  # (h, m, dh)
        v = values.view(-1, self.heads, head).transpose(0, 1)  # (h, m, dh)
        scores = q @ k.transpose(1, 2) / math.sqrt(head)  # (h, n, m)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        mixed = scores.softmax(dim=-1) @ v  # (h, n, dh)
        return mixed.transpose(0, 1).reshape(n, width) @ self.wo.T  # (n, d)


class Mlp(nn.Module):
    """Two-layer GELU MLP; GELU (not ReLU) so no gradient is exactly zero by accident."""

    def __init__(self, width: int, generator: torch.Generator) -> None:
        super().__init__()
        self.w_in = seeded_weight(generator, 2 * width, width, fan_in=width)
        self.w_out = seeded_weight(generator, width, 2 * width, fan_in=2 * width)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.gelu(x @ self.w_in.T) @ self.w_out.T  # (n, d)


class Block(nn.Module):
    """Pre-norm residual block: x + Attn(norm x) then + MLP(norm ·). The caller supplies keys and
    values, already projected by `self.attention.keys_values`."""

    def __init__(self, width: int, heads: int, generator: torch.Generator) -> None:
        super().__init__()
        self.attention = Attention(width, heads, generator)
        self.mlp = Mlp(width, generator)

    def forward(self, x: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None) -> Tensor:
        h = x + self.attention(rms_norm(x), keys, values, mask)  # (n, d)
        return h + self.mlp(rms_norm(h))  # (n, d)


class ToyModel(nn.Module, ABC, Generic[S]):
    """The interface of the three toy models: a `lib.stepping.SteppingModel` whose `parents` is
    its architecture's rule. Subclasses build their layers in `__init__` from `self.generator`
    after calling this constructor; all take the same arguments (the RNN ignores `heads`) so
    the page can build any of them by name.

    Besides the token-by-token `step` and the `full` pass over a fixed text, each can generate
    with a *soft* token (`generation_cells`): the next input is the embedding mixed by the
    softmax of a readout of the top layer, a differentiable stand-in for sampling that lets
    autograd see the sampled-token edge (t-1, L) → (t, 0)."""

    name: ClassVar[str]

    def __init__(
        self, layers: int, *, seed: int = 0, width: int = 16, heads: int = 2, vocab: int = 16
    ) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be at least 1, got {layers}")
        self.layers, self.width, self.heads, self.vocab = layers, width, heads, vocab
        self.generator = torch.Generator().manual_seed(seed)
        self.embedding = seeded_weight(self.generator, vocab, width, fan_in=1)  # (V, d)
        self.readout = seeded_weight(self.generator, vocab, width, fan_in=width)  # (V, d)

    @property
    def rule(self) -> Architecture:
        """The dependency rule this model claims to follow (over a fixed text)."""
        return make_rule(self.name, self.layers)

    def parents(self, cell: Cell) -> tuple[Cell, ...]:
        return self.rule.parents(cell)

    @abstractmethod
    def initial_state(self) -> S:
        """The state before the first token."""

    @abstractmethod
    def step_cells(self, x: Tensor, state: S) -> tuple[list[Tensor], S]:
        """One token whose embedding is x (d,): its L+1 cells, each (d,) and each the very
        tensor that later steps read, and the state for the next token."""

    @abstractmethod
    def full_cells(self, tokens: Tensor) -> Cells:
        """All cells of tokens (T,), each a (d,) tensor that later cells really read."""

    def step(self, token: int, state: S) -> tuple[Tensor, S]:
        """Process one token: its cells (L+1, d) and the state for the next token."""
        cells, state = self.step_cells(self.embedding[token], state)
        return torch.stack(cells), state

    def full(self, tokens: Tensor) -> Tensor:
        """All cells stacked: (T, L+1, d)."""
        return torch.stack([torch.stack(row) for row in self.full_cells(tokens)])

    def soft_token(self, top: Tensor) -> Tensor:
        """The next input from a top cell (d,): softmax(readout · norm(top)) mixes the
        embeddings (d,). Sampling would pick one row instead; argmax of the same logits is
        greedy decoding."""
        weights = (self.readout @ rms_norm(top)).softmax(dim=0)  # (V,)
        return weights @ self.embedding  # (d,)

    def generation_cells(self, first: int, tokens: int) -> Cells:
        """Generate `tokens` tokens from the token `first`, each next input a soft token of the
        previous top cell: every cell a real node of one autograd graph."""
        state = self.initial_state()
        cells: Cells = []
        x = self.embedding[first]  # (d,)
        for _ in range(tokens):
            row, state = self.step_cells(x, state)
            cells.append(row)
            x = self.soft_token(row[-1])
        return cells


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread, then restore the previous count (also usable as a decorator,
    which re-enters it on every call). These ops are so small that
    intra-op threads only add synchronisation, and on a busy 2-core machine that made `verify`
    erratically 10-100× slower (seconds instead of ~0.2 s). The setting is process-wide, so a
    model running concurrently in another Streamlit session is briefly single-threaded too."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def dependency_masks(cells: Cells, width: int, eps: float = 1e-12) -> np.ndarray:
    """Boolean (T, L+1, T, L+1): `[t, l, i, k]` is True when a random projection of cell (t, l)
    has a gradient of norm > eps with respect to cell (i, k). The diagonal is False: a cell is
    not its own ancestor.

    One backward per cell, run as lanes of a single vmapped backward (`is_grads_batched`): lane b
    seeds only cell b with a random direction, so lane b holds the gradients of cell b alone. The
    random projection makes an accidental zero gradient a measure-zero event; masked attention
    and unread cells give exact zeros."""
    flat = [cell for row in cells for cell in row]  # n × (d,)
    n = len(flat)
    generator = torch.Generator().manual_seed(0)
    directions = torch.randn(n, width, generator=generator, dtype=DTYPE)  # (n, d)
    eye = torch.eye(n, dtype=torch.bool)  # (n, n)
    seeds = eye[:, :, None] * directions  # (lanes n, cells n, d)
    grads = torch.autograd.grad(flat, flat, seeds.unbind(1), is_grads_batched=True)  # n × (n, d)
    reached = (torch.stack(grads, dim=1).norm(dim=-1) > eps) & ~eye  # (lanes n, cells n)
    shape = (len(cells), len(cells[0]))
    return reached.view(*shape, *shape).numpy()


@single_thread()
def gradient_masks(model: ToyModel, tokens: Tensor) -> np.ndarray:
    """Who feeds whom in the full pass over the text `tokens` (T,), measured by autograd."""
    return dependency_masks(model.full_cells(tokens), model.width)


@single_thread()
def generation_masks(model: ToyModel, first: int, tokens: int) -> np.ndarray:
    """Who feeds whom while generating `tokens` tokens from `first` with soft tokens."""
    return dependency_masks(model.generation_cells(first, tokens), model.width)
