"""Who can read what: three dependency rules on one token × layer grid.

A cell `(t, l)` is the state of token `t` (0..T-1) after layer `l`: `l = 0` is the token's input
embedding, `l = 1..L` are the outputs of layer `l` (`lib.stepping.Cell`). Each architecture is only
a `parents` rule on that grid; every graph number on the page (ancestor and descendant cones, the
longest serial path) is derived from `parents` by the shared functions below, so the three
architectures cannot drift apart in how they are measured. The toy torch models in `lib.toy` are
checked against these same rules with autograd.

The rules, within one pass over a fixed text (a prompt read at once, or training):

* transformer: `(t, l) ← (i, l-1)` for every `i ≤ t` — a layer reads the layer below, of every
  token so far, but never a higher layer of the past;
* stacked RNN: `(t, l) ← (t-1, l), (t, l-1)` — the past arrives only through one hidden vector per
  layer;
* feedback transformer (Fan et al. 2020, arXiv:2002.09402): `(t, l) ← (t, l-1)` and the memories
  `m_i` for `i < t`, where `m_i` mixes every layer `(i, 0..L)` of token `i`; on the cell grid that
  is `(t, l) ← (t, l-1)` and every `(i, l')` with `i < t`. Every layer reads the top of the past, at
  the price of computing one token at a time.

While a model generates, one more edge joins every pair of neighbours: the top of token t−1 picks
the sampled token, the input of token t, so `(t, 0) ← (t-1, L)` (`generation=True`). The edge is
a choice among the vocabulary, not a differentiable function: it carries at most log2(vocabulary)
bits per token.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar, Literal, NamedTuple, Protocol

import numpy as np

from lib.stepping import Cell

Direction = Literal["past", "future"]


class Memory(NamedTuple):
    """The feedback transformer's memory vector of one token; drawn between the cells."""

    token: int


Node = Cell | Memory


class Graph(Protocol):
    """Anything with a dependency rule on the grid: the rules below, and every stepping model."""

    layers: int

    def parents(self, cell: Cell) -> tuple[Cell, ...]: ...


@dataclass(frozen=True)
class Architecture(ABC):
    """One dependency rule on the grid of `layers` + 1 rows; `parents` is the whole definition.
    With `generation`, the sampled token links the top of each token to the next one's input."""

    name: ClassVar[str]
    label: ClassVar[str]  # the name a reader sees
    layers: int
    generation: bool = False

    def __post_init__(self) -> None:
        if self.layers < 1:
            raise ValueError(f"layers must be at least 1, got {self.layers}")

    def parents(self, cell: Sequence[int]) -> tuple[Cell, ...]:
        """The cells whose values the computation of `cell` reads directly."""
        return _parents(self, self.check_cell(cell))

    def _parents(self, cell: Cell) -> tuple[Cell, ...]:
        if cell.layer == 0:
            sampled = self.generation and cell.token >= 1
            return (Cell(cell.token - 1, self.layers),) if sampled else ()
        return self.reads(cell)

    @abstractmethod
    def reads(self, cell: Cell) -> tuple[Cell, ...]:
        """The parents of a cell above the embedding (`cell.layer ≥ 1`), within one pass."""

    @abstractmethod
    def state_values(self, t: int, width: int) -> int:
        """How many numbers must be carried from steps 0..t-1 into step t at generation time,
        if nothing is recomputed. `width` is the size of one carried vector (for a transformer,
        of one key or value at one layer: the hidden width, or less with grouped-query
        attention)."""

    @abstractmethod
    def training_sequential_steps(self, tokens: int) -> int:
        """Layer computations that must run one after another to process `tokens` tokens of a
        fixed text when every independent computation runs in parallel (the critical path of
        the training pass, with the true tokens as inputs)."""

    def state_bytes(self, t: int, width: int, bytes_per_value: int = 4) -> int:
        """`state_values` in bytes (float32 by default)."""
        return self.state_values(t, width) * bytes_per_value

    def check_cell(self, cell: Sequence[int]) -> Cell:
        """`cell` as a Cell; raise if it is not on the grid: tokens are 0.., layers 0..L."""
        t, layer = cell
        if t < 0 or not 0 <= layer <= self.layers:
            raise ValueError(f"cell {tuple(cell)} is off the grid of layers 0..{self.layers}")
        return Cell(t, layer)

    def generating(self) -> Architecture:
        """The same rule with the sampled-token edge."""
        return dataclasses.replace(self, generation=True)

    def reading(self) -> Architecture:
        """The same rule over a fixed text (no sampled-token edge)."""
        return dataclasses.replace(self, generation=False)


@dataclass(frozen=True)
class TransformerRule(Architecture):
    """Causal transformer: the KV cache holds layer l-1 of every past token for layer l."""

    name: ClassVar[str] = "transformer"
    label: ClassVar[str] = "Transformer"

    def reads(self, cell: Cell) -> tuple[Cell, ...]:
        return tuple(Cell(i, cell.layer - 1) for i in range(cell.token + 1))

    def state_values(self, t: int, width: int) -> int:
        """KV cache: one key and one value of `width` numbers, per layer, per past token."""
        _check_step(t, width)
        return 2 * self.layers * t * width

    def training_sequential_steps(self, tokens: int) -> int:
        """`L`: each layer handles all positions at once, so the sequence length costs no depth."""
        _check_tokens(tokens)
        return self.layers


@dataclass(frozen=True)
class RNNRule(Architecture):
    """Stacked RNN: layer l of token t reads its own previous hidden vector and the layer below."""

    name: ClassVar[str] = "rnn"
    label: ClassVar[str] = "RNN (stacked)"

    def reads(self, cell: Cell) -> tuple[Cell, ...]:
        t, layer = cell
        below = Cell(t, layer - 1)
        return (Cell(t - 1, layer), below) if t >= 1 else (below,)

    def state_values(self, t: int, width: int) -> int:
        """One hidden vector per layer, whatever `t` is: the state never grows."""
        _check_step(t, width)
        return self.layers * width

    def training_sequential_steps(self, tokens: int) -> int:
        """`T + L - 1`: cell (t, l) can run at wave t + l once (t-1, l) and (t, l-1) are done, so
        layers pipeline along the diagonal. A layer-by-layer implementation needs `T · L`; either
        way the time axis cannot be parallelised."""
        _check_tokens(tokens)
        return tokens + self.layers - 1


@dataclass(frozen=True)
class FeedbackRule(Architecture):
    """Feedback transformer: every layer reads the memories, each a mix of all layers of one past
    token, so the top of the past is visible to the bottom of the present."""

    name: ClassVar[str] = "feedback"
    label: ClassVar[str] = "Feedback transformer"

    def reads(self, cell: Cell) -> tuple[Cell, ...]:
        t, layer = cell
        past = tuple(Cell(i, k) for i in range(t) for k in range(self.layers + 1))
        return (*past, Cell(t, layer - 1))

    def memory_edges(self, tokens: int) -> tuple[tuple[Node, Node], ...]:
        """Edges through the memory nodes, for drawing: every cell of token i writes `m_i`, and
        `m_i` is read by every layer ≥ 1 of every later token. Together with the in-token edges
        `(t, l-1) → (t, l)` this draws the same dependencies as `reads` with far fewer arrows."""
        _check_tokens(tokens)
        writes = [(Cell(i, k), Memory(i)) for i in range(tokens) for k in range(self.layers + 1)]
        reads = [
            (Memory(i), Cell(t, layer))
            for t in range(tokens)
            for layer in range(1, self.layers + 1)
            for i in range(t)
        ]
        return tuple(writes + reads)

    def state_values(self, t: int, width: int) -> int:
        """One memory vector per past token (`t · width`); each layer recomputes its own keys and
        values from the memories. Caching those per layer as well would cost `2 · L · t · width`,
        like a transformer's KV cache."""
        _check_step(t, width)
        return t * width

    def training_sequential_steps(self, tokens: int) -> int:
        """`T · L`: layer 1 of token t needs the memory of token t-1, which needs its top layer,
        so every layer of every token lies on one chain; nothing runs in parallel over time."""
        _check_tokens(tokens)
        return tokens * self.layers


@lru_cache(maxsize=1 << 14)
def _parents(rule: Architecture, cell: Cell) -> tuple[Cell, ...]:
    """Every graph walk asks for the same parents again and again: a rule is immutable, so its
    answers are kept (a 16 × 8 feedback grid has 144 cells of up to 136 parents each)."""
    return rule._parents(cell)


ARCHITECTURES: dict[str, type[Architecture]] = {
    rule.name: rule for rule in (TransformerRule, RNNRule, FeedbackRule)
}


def make_rule(name: str, layers: int, generation: bool = False) -> Architecture:
    """The rule called `name` ("transformer", "rnn" or "feedback") on a grid of `layers` layers."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name](layers, generation)


def grid(rule: Graph, tokens: int) -> tuple[Cell, ...]:
    """All cells of `tokens` tokens, in (t, l) order — a topological order for every rule here,
    the sampled-token edge (t-1, L) → (t, 0) included."""
    _check_tokens(tokens)
    return tuple(Cell(t, layer) for t in range(tokens) for layer in range(rule.layers + 1))


def edges(rule: Graph, tokens: int) -> tuple[tuple[Cell, Cell], ...]:
    """Every (parent, child) pair among the first `tokens` tokens, for drawing arrows."""
    return tuple((parent, cell) for cell in grid(rule, tokens) for parent in rule.parents(cell))


def ancestors(rule: Graph, cell: Cell) -> frozenset[Cell]:
    """Every cell `cell` depends on, directly or not (its past light cone, `cell` excluded)."""
    seen: set[Cell] = set()
    todo = list(rule.parents(Cell(*cell)))
    while todo:
        parent = todo.pop()
        if parent not in seen:
            seen.add(parent)
            todo.extend(rule.parents(parent))
    return frozenset(seen)


def descendants(rule: Architecture, cell: Cell, tokens: int) -> frozenset[Cell]:
    """Every cell among the first `tokens` tokens that depends on `cell` (`cell` excluded).

    One pass in topological order: a cell is a descendant when one of its parents is `cell` or a
    descendant already found."""
    cell = rule.check_cell(cell)
    reached = {cell}
    for child in grid(rule, tokens):
        if any(parent in reached for parent in rule.parents(child)):
            reached.add(child)
    return frozenset(reached - {cell})


def cone_mask(
    rule: Architecture, cell: Cell, tokens: int, direction: Direction = "past"
) -> np.ndarray:
    """Boolean (tokens, L+1) mask of the ancestors ("past") or descendants ("future") of `cell`;
    `cell` itself is False."""
    cone = ancestors(rule, cell) if direction == "past" else descendants(rule, cell, tokens)
    mask = np.zeros((tokens, rule.layers + 1), dtype=bool)
    for t, layer in cone:
        if t < tokens:
            mask[t, layer] = True
    return mask


def ancestor_masks(rule: Graph, tokens: int) -> np.ndarray:
    """Boolean (T, L+1, T, L+1) array: `[t, l, i, k]` is True when (t, l) depends on (i, k).
    This is what the toy models' autograd dependency pattern is compared with.

    In topological order, a cell's ancestors are its parents and their ancestors."""
    masks = np.zeros((tokens, rule.layers + 1, tokens, rule.layers + 1), dtype=bool)
    for cell in grid(rule, tokens):
        row = masks[cell.token, cell.layer]
        for parent in rule.parents(cell):
            if parent.token < tokens:
                row |= masks[parent.token, parent.layer]
                row[parent.token, parent.layer] = True
    return masks


class Path(NamedTuple):
    """A chain of dependent computations: the layer computations on it (a step into a cell of
    layer ≥ 1) and the sampled tokens it passes through (a step into an embedding)."""

    computations: int
    samples: int


@lru_cache(maxsize=256)
def longest_paths(rule: Graph, src_token: int, tokens: int) -> tuple[Path | None, ...]:
    """The longest chain of dependent computations from any cell of token `src_token` to any
    cell of each token 0..tokens-1 — the serial depth no amount of parallel hardware removes —
    counted in layer computations (ties: the one through more sampled tokens). None for a
    token no cell of which depends on `src_token` (those before it).

    One dynamic programme in (t, l) order; cells before `src_token` cannot start a chain.
    `rule` must be hashable (the rules are): a page asks for the same paths several times."""
    best: dict[Cell, tuple[int, int]] = {}  # cell → (computations, samples)
    for cell in grid(rule, tokens):
        step = (1, 0) if cell.layer >= 1 else (0, 1)
        reached = [best[parent] for parent in rule.parents(cell) if parent in best]
        if reached:
            longest = max(reached)
            best[cell] = (longest[0] + step[0], longest[1] + step[1])
        if cell.token == src_token:
            best[cell] = max(best.get(cell, (0, 0)), (0, 0))
    paths: list[Path | None] = []
    for t in range(tokens):
        ends = [best[(t, k)] for k in range(rule.layers + 1) if (t, k) in best]
        paths.append(Path(*max(ends)) if ends else None)
    return tuple(paths)


def longest_path(rule: Graph, src_token: int, dst_token: int) -> Path | None:
    """`longest_paths` from token `src_token` to token `dst_token` alone."""
    if src_token < 0 or dst_token < src_token:
        return None
    return longest_paths(rule, src_token, dst_token + 1)[dst_token]


def parallel_over_time(rule: Architecture, tokens: int) -> bool:
    """True when one more token adds no sequential step to training: time costs no depth."""
    return rule.training_sequential_steps(tokens + 1) == rule.training_sequential_steps(tokens)


def auto_cell(tokens: int, layers: int) -> Cell:
    """The cell a page shows when the link names none: mid-sequence and mid-stack, so that for
    `layers ≥ 2` every rule draws both a backward cone and a forward reach around it."""
    _check_tokens(tokens)
    return Cell(tokens // 2, max(1, layers // 2))


@dataclass(frozen=True)
class StepNumbers:
    """What carrying the past into step `step` costs and buys, for one rule on a `tokens`-token
    run with carried vectors of `width` numbers. Every field is derived from the rule, so the
    page can put the three architectures side by side without any number typed by hand. The
    cone counts follow the rule as given (with or without the sampled-token edge); the serial
    paths are given both ways."""

    name: str
    generation: bool
    step: int
    tokens: int
    width: int
    state_values: int  # numbers carried from steps 0..step-1 into `step`
    state_bytes: int  # the same in float32
    state_growth: int  # numbers the state gains per token (0: a fixed-size state)
    reading_path: int  # longest chain token 0 → `step` over a fixed text, in layer computations
    generating_path: int  # the same while generating (through the sampled tokens)
    generating_samples: int  # sampled tokens on that longest chain
    training_steps: int  # sequential layer computations to train on `tokens` tokens
    generating_steps: int  # sequential layer computations to generate `tokens` tokens
    parallel_over_time: bool
    past_cells: int  # cells of the earlier tokens: step · (L+1)
    past_cells_read: int  # of those, read directly by some cell of `step`
    past_cells_in_cone: int  # of those, that the top cell (step, L) depends on at all
    past_tops_in_cone: int  # of the `step` earlier top-layer cells, those in that cone


def step_numbers(rule: Architecture, step: int, tokens: int, width: int) -> StepNumbers:
    """The numbers shown under one diagram, for step `step` of a `tokens`-token run."""
    if not 0 <= step < tokens:
        raise ValueError(f"step {step} is not one of the {tokens} tokens")
    top = Cell(step, rule.layers)
    read = {parent for layer in range(rule.layers + 1) for parent in rule.parents((step, layer))}
    cone = ancestors(rule, top)
    reading = longest_paths(rule.reading(), 0, tokens)[step]
    generating_paths = longest_paths(rule.generating(), 0, tokens)
    generating, whole = generating_paths[step], generating_paths[-1]
    assert reading and generating and whole  # every token depends on token 0
    return StepNumbers(
        name=rule.name,
        generation=rule.generation,
        step=step,
        tokens=tokens,
        width=width,
        state_values=rule.state_values(step, width),
        state_bytes=rule.state_bytes(step, width),
        state_growth=rule.state_values(step + 1, width) - rule.state_values(step, width),
        reading_path=reading.computations,
        generating_path=generating.computations,
        generating_samples=generating.samples,
        training_steps=rule.training_sequential_steps(tokens),
        generating_steps=whole.computations,
        parallel_over_time=parallel_over_time(rule, tokens),
        past_cells=step * (rule.layers + 1),
        past_cells_read=sum(1 for t, _ in read if t < step),
        past_cells_in_cone=sum(1 for t, _ in cone if t < step),
        past_tops_in_cone=sum(1 for t, layer in cone if t < step and layer == rule.layers),
    )


def _check_tokens(tokens: int) -> None:
    if tokens < 1:
        raise ValueError(f"need at least one token, got {tokens}")


def _check_step(t: int, width: int) -> None:
    if t < 0:
        raise ValueError(f"need a step t ≥ 0, got {t}")
    if width < 1:
        raise ValueError(f"need width ≥ 1, got {width}")
