"""The trained models: a transformer, a feedback transformer, and a transformer that writes the
variable's value into the text after every statement (a scratchpad) and reads it back.

All are small (width 64, 4 heads) and have no position embeddings; they bias their attention
towards recent tokens in the same way (ALiBi), which works at any length. Each implements
`lib.stepping.SteppingModel`: a full pass over a token sequence, a step that carries a state (a
KV cache, or the feedback memories) and gives the same outputs, and `parents`, its dependency
rule on the token × layer grid of `lib.architectures`.

Their inference entry points (`answers`, `write`, `run`) run torch on one thread: at this size
extra threads only add synchronisation, which on a busy 2-core machine made them 10× slower.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
from torch import Tensor, nn

from lib.architectures import FeedbackRule, TransformerRule
from lib.stepping import Cell
from lib.toy.common import single_thread
from lib.tracking.task import (
    TOKEN_ID,
    VALUES,
    VOCAB,
    Program,
    encode,
    encode_with_values,
    with_values,
    written_positions,
)

FIRST_VALUE = TOKEN_ID["1"]  # the token of value v is FIRST_VALUE + v - 1


@cache
def recency_slopes(heads: int) -> Tensor:
    """ALiBi's slopes (Press et al. 2022), 2^(-8i/h) for head i = 1..h: each head's attention
    score drops by slope × distance. The only notion of position any model here has, the same in
    all, and one that extends to any length. Cached: read it, never write to it."""
    return 2.0 ** (-8.0 * torch.arange(1, heads + 1) / heads)  # (h,)


def recency_bias(distance: Tensor, heads: int) -> Tensor:
    """Additive attention bias (h, q, k) from the distances (q, k) between each query's token
    and each key's token: -slope × distance, and -inf for a key in the query's future."""
    bias = -recency_slopes(heads)[:, None, None] * distance  # (h, q, k)
    return bias.masked_fill(distance < 0, float("-inf"))


def causal_recency_mask(length: int, heads: int) -> Tensor:
    """The bias of a full pass over `length` tokens: (h, T, T)."""
    return recency_bias(torch.arange(length)[:, None] - torch.arange(length)[None, :], heads)


def split_heads(x: Tensor, heads: int) -> Tensor:
    """(B, T, d) → (B, h, T, dh)."""
    batch, length, width = x.shape
    return x.view(batch, length, heads, width // heads).transpose(1, 2)


def attention(query: Tensor, keys: Tensor, values: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """Scaled dot-product attention with an additive bias (h, T, S): the read (B, T, d), heads
    merged, and the weights (B, h, T, S)."""
    batch, heads, length, head = query.shape
    scores = query @ keys.transpose(2, 3) / math.sqrt(head) + bias  # (B, h, T, S)
    weights = scores.softmax(dim=-1)
    read = (weights @ values).transpose(1, 2).reshape(batch, length, heads * head)  # (B, T, d)
    return read, weights


def mlp(width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))


def said_at_prints(logits: Tensor, programs: Sequence[Program]) -> list[tuple[int, ...]]:
    """The value (1..VALUES) that logits (B, T, VALUES) pick at every print's `x`."""
    chosen = logits.argmax(-1) + 1  # (B, T)
    return [
        tuple(int(chosen[row, position]) for position in program.print_positions)
        for row, program in enumerate(programs)
    ]


class AnswersAtPrints:
    """A model that reads a program as it is and answers at each print's `x`."""

    def full(self, tokens: Tensor) -> Tensor:
        """Logits (T, VALUES) of one sequence (T,)."""
        return self(tokens[None])[0]

    def encode(self, programs: Sequence[Program]) -> tuple[Tensor, Tensor]:
        """Ids and targets to train on: the program's tokens, the value at each print's `x`."""
        return encode(programs)

    @single_thread()
    @torch.inference_mode()
    def answers(self, programs: Sequence[Program]) -> list[tuple[int, ...]]:
        """The value said at every print of every program, from one full pass."""
        return said_at_prints(self(encode(programs)[0]), programs)


class Block(nn.Module):
    """A pre-norm transformer block: x + attention(norm x), then + MLP(norm ·)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm_attention, self.norm_mlp = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.mlp = mlp(width)

    def project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys and values of x (B, T, d): each (B, h, T, dh)."""
        q, k, v = self.qkv(self.norm_attention(x)).chunk(3, dim=-1)  # (B, T, d) each
        return split_heads(q, self.heads), split_heads(k, self.heads), split_heads(v, self.heads)

    def finish(
        self, x: Tensor, query: Tensor, keys: Tensor, values: Tensor, bias: Tensor
    ) -> Tensor:
        """The block's output for x (B, T, d), whose queries read keys/values (B, h, S, dh)."""
        x = x + self.out(attention(query, keys, values, bias)[0])
        return x + self.mlp(self.norm_mlp(x))

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        query, keys, values = self.project(x)
        return self.finish(x, query, keys, values, bias)


@dataclass(frozen=True)
class KVCache:
    """What a transformer carries from step to step: per layer, the keys and the values of every
    token so far, (B, h, t, dh) each."""

    keys: tuple[Tensor, ...]
    values: tuple[Tensor, ...]

    @property
    def length(self) -> int:
        return self.keys[0].shape[2]


class TrackingTransformer(AnswersAtPrints, nn.Module):
    """A causal transformer: layer l of a token reads layer l−1 of every token so far, never a
    higher layer of the past. It answers at each print's `x`."""

    kind = "transformer"

    def __init__(self, layers: int, width: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.layers, self.width, self.heads = layers, width, heads
        self.embed = nn.Embedding(len(VOCAB), width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, VALUES)

    def forward(self, ids: Tensor) -> Tensor:
        """Logits over the values at every position: (B, T) → (B, T, VALUES)."""
        return self.extend(ids, self.initial_state(ids.shape[0]))[0]

    def initial_state(self, batch: int = 1) -> KVCache:
        empty = self.embed.weight.new_zeros(batch, self.heads, 0, self.width // self.heads)
        return KVCache((empty,) * self.layers, (empty,) * self.layers)

    def extend(self, ids: Tensor, state: KVCache) -> tuple[Tensor, KVCache]:
        """The next n tokens of every row, ids (B, n), after the t tokens in the cache: their
        logits (B, n, VALUES) and the cache grown by their keys and values. From an empty cache
        this is the full pass; one token at a time it is the generation path."""
        past, n = state.length, ids.shape[1]
        distance = torch.arange(past, past + n)[:, None] - torch.arange(past + n)[None, :]
        bias = recency_bias(distance, self.heads)  # (h, n, t+n)
        x = self.embed(ids)  # (B, n, d)
        keys, values = [], []
        for block, past_k, past_v in zip(self.blocks, state.keys, state.values, strict=True):
            query, k, v = block.project(x)  # (B, h, n, dh) each
            keys.append(torch.cat([past_k, k], dim=2))  # (B, h, t+n, dh)
            values.append(torch.cat([past_v, v], dim=2))
            x = block.finish(x, query, keys[-1], values[-1], bias)
        return self.head(self.norm(x)), KVCache(tuple(keys), tuple(values))

    def step(self, token: int, state: KVCache) -> tuple[Tensor, KVCache]:
        """The generation path: one token's logits (VALUES,) and the grown cache."""
        logits, state = self.extend(torch.tensor([[token]]), state)
        return logits[0, 0], state

    def parents(self, cell: Cell) -> tuple[Cell, ...]:
        """`TransformerRule`: (t, l) reads (i, l−1) for every i ≤ t."""
        return tuple(Cell(*parent) for parent in TransformerRule(self.layers).parents(cell))


@dataclass(frozen=True)
class Writing:
    """What the scratchpad model wrote on one program, reading its own values back: the value
    after each statement (`written`). Its answer at a print is the value it writes after that
    print's `;`."""

    program: Program
    written: tuple[int, ...]

    @property
    def tokens(self) -> tuple[str, ...]:
        """The text it read: the program with its own values after every `;`."""
        return with_values(self.program, self.written)

    @property
    def said(self) -> tuple[int, ...]:
        return tuple(self.written[line] for line in self.program.print_lines)

    @property
    def first_error(self) -> int | None:
        """The first statement after which it wrote a wrong value, None when all are right."""
        pairs = enumerate(zip(self.written, self.program.values, strict=True))
        return next((line for line, (written, true) in pairs if written != true), None)


class ScratchpadTransformer(TrackingTransformer):
    """A transformer that writes x's value after every statement and reads it back: recurrent
    through its own output. Trained with the true values written in (teacher forcing), it
    predicts at every `;` the value that follows; at test time it writes its own predictions
    (greedy) and never sees the true ones.

    `parents` is the transformer's rule over the text it reads. When it writes, each written
    value's embedding (t, 0) is also chosen by the top cell (t−1, L) through the argmax: an
    edge through the text, at the positions `task.written_positions` lists."""

    kind = "scratchpad"

    def encode(self, programs: Sequence[Program]) -> tuple[Tensor, Tensor]:
        """The text with the true values written in; at every `;`, the value that follows."""
        return encode_with_values(programs)

    @single_thread()
    @torch.inference_mode()
    def write(
        self, programs: Sequence[Program], forced: Mapping[int, int] | None = None
    ) -> list[Writing]:
        """Run on the programs through the cache, writing after every `;` the value it predicts
        there and reading it back; the tokens up to each written value go in as one chunk.
        `forced` maps a statement index to a value written there instead of its own (in every
        program): a way to plant an error."""
        ids, _ = encode_with_values(programs)  # (B, T'): true values, overwritten below
        free = torch.zeros_like(ids, dtype=torch.bool)  # (B, T'): positions it writes
        written = [written_positions(program) for program in programs]
        for row, positions in enumerate(written):
            free[row, list(positions)] = True
            for line, value in (forced or {}).items():
                free[row, positions[line]] = False
                ids[row, positions[line]] = FIRST_VALUE + value - 1
        state, start = self.initial_state(len(programs)), 0
        for end in torch.nonzero(free.any(0)).flatten().tolist():
            logits, state = self.extend(ids[:, start:end], state)  # (B, end-start, VALUES)
            chosen = FIRST_VALUE + logits[:, -1].argmax(-1)  # (B,)
            ids[:, end] = torch.where(free[:, end], chosen, ids[:, end])
            start = end
        return [
            Writing(program, tuple((ids[row, list(positions)] - FIRST_VALUE + 1).tolist()))
            for row, (program, positions) in enumerate(zip(programs, written, strict=True))
        ]

    def answers(self, programs: Sequence[Program]) -> list[tuple[int, ...]]:
        """The value it writes after every print, reading its own values."""
        return [writing.said for writing in self.write(programs)]


class FeedbackLayer(nn.Module):
    """One layer of the feedback transformer: the token's state attends to past memories, with
    this layer's own key/value projections of them, then an MLP."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm_x, self.norm_m, self.norm_mlp = (nn.LayerNorm(width) for _ in range(3))
        self.query, self.out = nn.Linear(width, width), nn.Linear(width, width)
        self.key_value = nn.Linear(width, 2 * width)
        self.mlp = mlp(width)

    def keys_values(self, memories: Tensor) -> tuple[Tensor, Tensor]:
        """(B, m, d) → keys and values (B, h, m, dh)."""
        keys, values = self.key_value(self.norm_m(memories)).chunk(2, dim=-1)  # (B, m, d) each
        return split_heads(keys, self.heads), split_heads(values, self.heads)

    def forward(
        self, x: Tensor, keys: Tensor, values: Tensor, recency: Tensor
    ) -> tuple[Tensor, Tensor]:
        """x (B, d) reads keys/values (B, h, m, dh), scores biased by `recency` (h, 1, m);
        returns the new x and the attention weights (B, h, m). With no memories (the first
        token) the attention adds nothing."""
        if keys.shape[2] == 0:
            weights = x.new_zeros(x.shape[0], self.heads, 0)
        else:
            query = split_heads(self.query(self.norm_x(x))[:, None], self.heads)  # (B,h,1,dh)
            read, weights = attention(query, keys, values, recency)  # (B, 1, d), (B, h, 1, m)
            x = x + self.out(read[:, 0])
            weights = weights[:, :, 0]
        return x + self.mlp(self.norm_mlp(x)), weights


@dataclass(frozen=True)
class FeedbackState:
    """What the feedback model carries: the memories of the last `window` tokens, (m, d)."""

    memories: Tensor


@dataclass(frozen=True)
class FeedbackRun:
    """A feedback model's run over one program: logits (T, VALUES), and for every position the
    attention weights of layer 0 over its past memories, averaged over heads (T, T): row t,
    column s is how much token t read the memory of token s."""

    logits: Tensor
    reads: np.ndarray


class TrackingFeedback(AnswersAtPrints, nn.Module):
    """A feedback transformer: token t's layers all attend to memories m_<t, where m_s mixes
    every layer of token s (softmax weights). Only the last `window` memories are read, with the
    same recency bias as the transformer's attention. It answers at each print's `x`."""

    kind = "feedback"

    def __init__(self, layers: int, width: int = 64, heads: int = 4, window: int = 32) -> None:
        super().__init__()
        self.layers, self.width, self.heads, self.window = layers, width, heads, window
        self.embed = nn.Embedding(len(VOCAB), width)
        self.blocks = nn.ModuleList(FeedbackLayer(width, heads) for _ in range(layers))
        self.mix = nn.Parameter(torch.zeros(layers + 1))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, VALUES)

    def _recency(self) -> Tensor:
        """The bias over a full window of memories, oldest first: (h, 1, window); a window of
        m memories uses its last m columns."""
        return recency_bias(torch.arange(self.window, 0, -1)[None], self.heads)

    def _token(
        self,
        x: Tensor,
        keys_values: Sequence[tuple[Tensor, Tensor]],
        recency: Tensor,
        mix: Tensor,
    ) -> tuple[Tensor, Tensor, list[Tensor]]:
        """One token's layers: (B, d) → top state, memory (B, d), and each layer's weights."""
        cells, weights = [x], []
        recency = recency[:, :, self.window - keys_values[0][0].shape[2] :]  # (h, 1, m)
        for block, (keys, values) in zip(self.blocks, keys_values, strict=True):
            x, read = block(x, keys, values, recency)
            cells.append(x)
            weights.append(read)
        memory = torch.einsum("l,lbd->bd", mix, torch.stack(cells))  # (B, d)
        return x, memory, weights

    def _scan(self, ids: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Logits (B, T, VALUES), token by token, and layer 0's weights at each token
        (B, h, m_t). Each memory is projected to keys and values once, when it is made; `step`
        re-projects its window every time (a second code path)."""
        embedded = self.embed(ids)  # (B, T, d)
        recency, mix = self._recency(), self.mix.softmax(0)
        window = [self._empty(ids.shape[0])] * self.layers  # per layer: (B, h, m, dh) twice
        tops, reads = [], []
        for t in range(ids.shape[1]):
            top, memory, weights = self._token(embedded[:, t], window, recency, mix)
            tops.append(top)
            reads.append(weights[0])
            window = [
                self._slide(past, block.keys_values(memory[:, None]))
                for block, past in zip(self.blocks, window, strict=True)
            ]
        return self.head(self.norm(torch.stack(tops, dim=1))), reads

    def _slide(
        self, window: tuple[Tensor, Tensor], new: tuple[Tensor, Tensor]
    ) -> tuple[Tensor, Tensor]:
        """Keys and values (B, h, m, dh) of the window, with one new memory's appended and the
        oldest dropped beyond `window`."""
        (keys, values), (new_keys, new_values) = window, new
        return (
            torch.cat([keys, new_keys], dim=2)[:, :, -self.window :],
            torch.cat([values, new_values], dim=2)[:, :, -self.window :],
        )

    def forward(self, ids: Tensor) -> Tensor:
        """Logits (B, T, VALUES)."""
        return self._scan(ids)[0]

    def _empty(self, batch: int) -> tuple[Tensor, Tensor]:
        empty = self.embed.weight.new_zeros(batch, self.heads, 0, self.width // self.heads)
        return empty, empty

    def initial_state(self) -> FeedbackState:
        return FeedbackState(self.embed.weight.new_zeros(0, self.width))

    def step(self, token: int, state: FeedbackState) -> tuple[Tensor, FeedbackState]:
        """The generation path: one token's logits (VALUES,), and the state with this token's
        memory appended (the oldest dropped beyond the window)."""
        past = state.memories[None]  # (1, m, d)
        window = [block.keys_values(past) for block in self.blocks]
        x = self.embed.weight[token][None]  # (1, d)
        top, memory, _ = self._token(x, window, self._recency(), self.mix.softmax(0))
        memories = torch.cat([state.memories, memory])[-self.window :]
        return self.head(self.norm(top))[0], FeedbackState(memories)

    def parents(self, cell: Cell) -> tuple[Cell, ...]:
        """`FeedbackRule` cut to the window: (t, l) reads (t, l−1) and every cell (i, k) of the
        last `window` tokens, t − window ≤ i < t, through their memories. `FeedbackRule` reads
        the memories of every earlier token; here older ones reach token t only through chains
        of memories, never directly."""
        return tuple(
            Cell(*parent)
            for parent in FeedbackRule(self.layers).parents(cell)
            if parent[0] >= cell[0] - self.window
        )

    @single_thread()
    @torch.inference_mode()
    def run(self, program: Program) -> FeedbackRun:
        """One program, keeping what layer 0's attention read at every token."""
        logits, weights = self._scan(encode([program])[0])
        reads = np.zeros((len(program.tokens), len(program.tokens)))
        for t, read in enumerate(weights):
            row = read[0].mean(0).numpy()  # (m,) over the last m tokens
            reads[t, t - row.shape[0] : t] = row
        return FeedbackRun(logits[0], reads)


TrackingModel = TrackingTransformer | TrackingFeedback


def build(kind: str, layers: int, **sizes: int) -> TrackingModel:
    """A fresh model of one kind ("feedback", "transformer", "scratchpad")."""
    kinds: dict[str, type[TrackingModel]] = {
        model.kind: model
        for model in (TrackingFeedback, TrackingTransformer, ScratchpadTransformer)
    }
    if kind not in kinds:
        raise ValueError(f"unknown model kind {kind!r}")
    return kinds[kind](layers, **sizes)
