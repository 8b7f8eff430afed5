"""Who feeds whom on the token × layer grid of a real model: attention edges, value-weighted
edges, the measured gradient cone, and the staircase that pyramidal depth imposes.

Grid convention (the one `lib.trace.Trace.hidden` and `lib.architectures` use): cell `(t, l)` is
the hidden state of token `t` at row `l`; row 0 is the embedding, row `l ≥ 1` the output of
decoder layer `l - 1` (the top row is the final-normed state the unembedding reads). Decoder
layer `l - 1` caches K/V projections of row `l - 1` of every token, and the attention of token
`t` in that layer (`trace.attentions[l - 1]`) reads them for every token `i ≤ t`. So the direct
parents of `(t, l)` are the cells `(i, l - 1)`, `i ≤ t`, weighted by that attention.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch
from transformers import PreTrainedModel

from lib.models import LoadedModel
from lib.stepping import Cell
from lib.trace import Trace

Weight = Literal["attn", "value"]
Aggregate = Literal["mean", "max"]
GRADIENT_SEED = 0


def value_norms(lm: LoadedModel, trace: Trace) -> np.ndarray:
    """‖W_O^h v_i‖ for every decoder layer, query head h and token i: (L, H, T).

    This is the size of what token i hands to query head h once the output projection has mapped
    it into the residual stream (Kobayashi et al. 2020); attention × this norm is how much of the
    head's output really comes from token i. Computed once per trace from the cached values.
    """
    n_layers, _, n_tokens, head_dim = trace.values.shape
    n_heads = trace.attentions.shape[1]
    group = [lm.shape.kv_head_of(h) for h in range(n_heads)]
    values = torch.from_numpy(np.array(trace.values))  # (L, H_kv, T, hd)
    norms = np.empty((n_layers, n_heads, n_tokens), dtype=np.float32)
    with lm.lock, torch.no_grad():
        for index, layer in enumerate(lm.model.model.layers):
            out_proj = layer.self_attn.o_proj.weight.float()  # (d, H * hd)
            per_head = out_proj.view(-1, n_heads, head_dim).permute(1, 2, 0)  # (H, hd, d)
            projected = values[index, group] @ per_head  # (H, T, d)
            norms[index] = projected.norm(dim=-1).numpy()
    norms.flags.writeable = False
    return norms


@dataclass(frozen=True)
class IncomingEdges:
    """The edges into one cell: source tokens 0..t at row `layer - 1`, with both weightings."""

    cell: Cell
    head: int | str  # a query head, or "all" (heads combined by `agg`)
    agg: Aggregate
    weight: Weight  # which weighting the picture draws
    attention: np.ndarray  # (t+1,) attention of the query token on each source
    value_weighted: np.ndarray  # (t+1,) attention × ‖W_O v‖

    @property
    def sources(self) -> np.ndarray:  # (t+1,), or (0,) for the embedding row
        return np.arange(self.attention.shape[0])

    @property
    def source_row(self) -> int:
        return self.cell.layer - 1

    @property
    def drawn(self) -> np.ndarray:
        return self.attention if self.weight == "attn" else self.value_weighted

    @property
    def attention_share(self) -> np.ndarray:
        return _share(self.attention)

    @property
    def value_share(self) -> np.ndarray:
        return _share(self.value_weighted)

    @property
    def most_attended(self) -> int:
        return int(np.argmax(self.attention))

    @property
    def most_carried(self) -> int:
        return int(np.argmax(self.value_weighted))

    def table(self, labels: Sequence[str]) -> pd.DataFrame:
        """One row per source token, strongest drawn edge first, both weightings side by side."""
        frame = pd.DataFrame(
            {
                "token": self.sources,
                "text": [labels[i] for i in self.sources],
                "% of attention": 100 * self.attention_share,
                "% of value-weighted": 100 * self.value_share,
                "attention": self.attention,
                "attn × ‖W_O v‖": self.value_weighted,
            }
        )
        return frame.iloc[np.argsort(-self.drawn, kind="stable")].reset_index(drop=True)


def _share(weights: np.ndarray) -> np.ndarray:
    total = weights.sum()
    return weights / total if total > 0 else weights


def _combine(per_head: np.ndarray, head: int | str, agg: Aggregate) -> np.ndarray:
    """(H, n) → (n,): one head, or the mean / max over heads."""
    if head != "all":
        return per_head[int(head)]
    return per_head.mean(axis=0) if agg == "mean" else per_head.max(axis=0)


def incoming_edges(
    trace: Trace,
    norms: np.ndarray,
    cell: Cell,
    head: int | str = "all",
    agg: Aggregate = "mean",
    weight: Weight = "attn",
) -> IncomingEdges:
    """What feeds `cell`, read from the model's own attention weights (no model call)."""
    if cell.layer == 0:  # an embedding reads no other token
        empty = np.zeros(0, dtype=np.float32)
        return IncomingEdges(cell, head, agg, weight, empty, empty)
    decoder = cell.layer - 1
    attention = trace.attentions[decoder, :, cell.token, : cell.token + 1]  # (H, t+1)
    carried = attention * norms[decoder, :, : cell.token + 1]  # (H, t+1)
    return IncomingEdges(
        cell, head, agg, weight, _combine(attention, head, agg), _combine(carried, head, agg)
    )


@dataclass(frozen=True)
class Cones:
    """The structural cones of a cell on a grid of `tokens` × (L+1) rows, as (L+1, T) masks."""

    backward: np.ndarray  # cells that can influence the cell: i ≤ t, l < L
    forward: np.ndarray  # cells the cell can reach: i ≥ t, l > L


def structural_cones(cell: Cell, n_tokens: int, n_layers: int) -> Cones:
    """The closed form of `lib.architectures.TransformerRule`'s ancestors and descendants (a
    unit test checks that they agree): the graph search takes tens of milliseconds on a 64 × 31
    grid, too long for every click; these comparisons take microseconds."""
    tokens = np.arange(n_tokens)[None, :]  # (1, T)
    rows = np.arange(n_layers + 1)[:, None]  # (L+1, 1)
    return Cones(
        backward=(tokens <= cell.token) & (rows < cell.layer),
        forward=(tokens >= cell.token) & (rows > cell.layer),
    )


@dataclass(frozen=True)
class GradientCone:
    """‖∂s/∂h(i, l)‖ for every cell, where s = u · h(cell) for a fixed random unit vector u."""

    cell: Cell
    norms: np.ndarray  # (L+1, T), float32

    @property
    def row_relative(self) -> np.ndarray:
        """(L+1, T): each gradient over the largest of its row (0 where a row has none).
        Gradient sizes differ from row to row (each layer reads a state through RMSNorm, and
        states grow with depth), so shades compare within a row, not across rows."""
        largest = self.norms.max(axis=1, keepdims=True)  # (L+1, 1)
        return np.divide(self.norms, largest, out=np.zeros_like(self.norms), where=largest > 0)


@contextmanager
def layer_by_layer(model: PreTrainedModel) -> Iterator[None]:
    """Activation checkpointing for one pass: the forward keeps only each decoder layer's input
    and the backward recomputes the layer from it. Measured on the real model at 276 tokens,
    the gradient cone's pass took 456 MB above the server's resting memory without it (the
    largest transient of any view) and 56 MB with it, for 1.6 × the time. Checkpointing runs
    only in training mode, which computes what eval mode does only without dropout: a model
    with dropout gets the plain pass. Call it under the model's lock: both switches are the
    shared model's."""
    if getattr(model.config, "attention_dropout", 0.0) or not model.supports_gradient_checkpointing:
        yield
        return
    model.activation_checkpointing_enable()
    model.train()
    try:
        yield
    finally:
        model.eval()
        model.activation_checkpointing_disable()


def gradient_cone(lm: LoadedModel, token_ids: Sequence[int], cell: Cell) -> GradientCone:
    """One real forward and backward pass of the model over the whole sequence.

    The embeddings enter as a leaf that requires grad, so the pass works whatever the weights'
    `requires_grad` says; `autograd.grad` (not `backward`) leaves no `.grad` on the shared
    weights. Positions after `cell.token` are in the pass too: their zero gradient is measured,
    not assumed. Each layer is recomputed in the backward pass (`layer_by_layer`), so the pass
    keeps every layer's input but only one layer's activations at a time.
    """
    input_ids = torch.tensor([list(token_ids)])  # (1, T)
    generator = torch.Generator().manual_seed(GRADIENT_SEED)
    direction = torch.randn(lm.shape.hidden, generator=generator)
    direction /= direction.norm()  # (d,)
    with lm.lock, layer_by_layer(lm.model), torch.enable_grad():
        embeds = lm.model.get_input_embeddings()(input_ids).detach().requires_grad_()  # (1, T, d)
        out = lm.model.model(inputs_embeds=embeds, output_hidden_states=True, use_cache=False)
        states = out.hidden_states  # L+1 tensors (1, T, d), the ones used downstream
        scalar = states[cell.layer][0, cell.token].float() @ direction
        grads = torch.autograd.grad(scalar, states, materialize_grads=True)
    norms = torch.stack(grads)[:, 0].float().norm(dim=-1)  # (L+1, T)
    array = norms.numpy()
    array.flags.writeable = False
    return GradientCone(cell, array)


@dataclass(frozen=True)
class ConeSummary:
    """What the measured cone says about the structural one, for the page's text."""

    inside: int  # cells in the backward structural cone
    inside_nonzero: int  # of those, with a non-zero gradient
    outside: int  # every other cell but the selected one
    outside_max: float  # the largest gradient norm among them (zero if the structure holds)
    strongest_parent: int | None  # the earlier token whose direct parent cell moves it most
    strongest_parent_ratio: float  # its gradient ÷ that of the token's own parent (t, l-1)


def cone_summary(cone: GradientCone, cones: Cones) -> ConeSummary:
    """Parents are compared within their row only: a gradient's size also depends on the size
    of the state (RMSNorm divides it out), and states grow from row to row."""
    cell = cone.cell
    outside = ~cones.backward
    outside[cell.layer, cell.token] = False
    strongest, ratio = None, 0.0
    if cell.layer > 0 and cell.token > 0:
        parents = cone.norms[cell.layer - 1, : cell.token + 1]  # (t+1,)
        strongest = int(np.argmax(parents[:-1]))
        ratio = float(parents[strongest] / parents[-1]) if parents[-1] > 0 else float("inf")
    return ConeSummary(
        inside=int(cones.backward.sum()),
        inside_nonzero=int((cone.norms[cones.backward] > 0).sum()),
        outside=int(outside.sum()),
        outside_max=float(cone.norms[outside].max()) if outside.any() else 0.0,
        strongest_parent=strongest,
        strongest_parent_ratio=ratio,
    )


@dataclass(frozen=True)
class Staircase:
    """A chain of dependent hops through a cell, one token further at each layer.

    What token i holds at row l reaches *every* later token at row l+1: distance along the text
    costs no depth. Dependence does: when each hop needs the result of the hop before, every
    hop climbs at least one row and needs one more earlier token, so a chain can end at cell
    (t, l) after at most min(t, l) hops, and at most L - l more fit above it in one pass, however
    many tokens follow. The line hops to the next token each time."""

    cells: tuple[Cell, ...]  # (t+k, l+k) for every k that stays on the grid, in order
    hops_above: int  # hops that still fit above the cell in one pass: L - l
    hops_below: int  # hops a chain can have made before reaching the cell: min(t, l)


def staircase(cell: Cell, n_tokens: int, n_layers: int) -> Staircase:
    lowest = -min(cell.token, cell.layer)
    highest = min(n_tokens - 1 - cell.token, n_layers - cell.layer)
    cells = tuple(Cell(cell.token + k, cell.layer + k) for k in range(lowest, highest + 1))
    return Staircase(cells, hops_above=n_layers - cell.layer, hops_below=min(cell))
