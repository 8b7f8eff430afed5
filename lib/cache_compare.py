"""Cache on against cache off: the verdict, what each step computed, what the cache holds.

Everything here reads two GenerationTraces of the same prompt (one decoded with the KV cache,
one without) and the Trace of the cached run's whole sequence. Which cells a step computed comes
from the hooks of the real forward pass (`Step.computed`), never from a formula, so the grid
shown for a step is what the model did; the cache-size formula is only used to check the bytes
measured on the cache tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from lib.generate import GenerationTrace
from lib.models import ModelShape
from lib.trace import Trace

# float32 runs of the same model differ by ~4e-5 between the two kernels (SmolLM2, 128 steps);
# above this the difference is no longer rounding of one precision but a drift.
FLOAT32_TOLERANCE = 1e-3


class CellState(IntEnum):
    """What a (token, layer) cell is at one decoding step."""

    NOT_YET = 0  # the token has not been fed yet
    COMPUTED = 1  # computed in this step, for the first time
    CACHED = 2  # computed in an earlier step; its K and V are read from the cache
    RECOMPUTED = 3  # computed in an earlier step and again in this one (cache off)


STATE_LABELS: dict[CellState, str] = {
    CellState.NOT_YET: "not fed yet",
    CellState.COMPUTED: "computed now",
    CellState.CACHED: "read from the cache",
    CellState.RECOMPUTED: "recomputed (cache off)",
}


@dataclass(frozen=True)
class Comparison:
    """The two runs side by side: how many tokens agree, and how far the logits moved."""

    steps: int  # N: steps of the longer run
    identical: int  # M: steps at which both runs chose the same token
    step_abs_dlogit: np.ndarray  # (K,): max |Δlogit| of each step decoded from the same context
    first_parting: int | None  # first step at which the chosen tokens differ
    first_drift: int | None  # first step whose |Δlogit| exceeds FLOAT32_TOLERANCE
    parting_labels: tuple[str, str] | None  # (cache on, cache off) tokens at the first parting

    @property
    def max_abs_dlogit(self) -> float:
        return float(self.step_abs_dlogit.max())

    @property
    def same_tokens(self) -> bool:
        return self.identical == self.steps

    @property
    def verdict(self) -> str:
        return f"{self.identical}/{self.steps} tokens identical"

    @property
    def summary(self) -> str:
        """E.g. `24/24 tokens identical · max |Δlogit| = 4.0e-05`."""
        shown = f"{self.max_abs_dlogit:.1e}" if self.max_abs_dlogit else "0"
        return f"{self.verdict} · max |Δlogit| = {shown}"


def compare(on: GenerationTrace, off: GenerationTrace) -> Comparison:
    """Compare the tokens and logits of the cached and the uncached run of one prompt.

    Logits are compared only up to the first step where the tokens part (included): after it
    the two runs continue different texts, and their logits answer different questions.
    """
    common = min(len(on.steps), len(off.steps))
    same = np.array(on.new_ids[:common]) == np.array(off.new_ids[:common])  # (common,)
    differing = np.flatnonzero(~same)
    if differing.size:
        first_parting = int(differing[0])
    elif len(on.steps) != len(off.steps):
        first_parting = common  # one run stopped (end of sequence) where the other went on
    else:
        first_parting = None
    compared = common if first_parting is None else min(first_parting + 1, common)
    dlogit = np.abs(on.logits[:compared] - off.logits[:compared]).max(axis=1)  # (compared,)
    drifting = np.flatnonzero(dlogit > FLOAT32_TOLERANCE)
    parting_labels = None
    if first_parting is not None:
        parting_labels = tuple(
            run.steps[first_parting].label if first_parting < len(run.steps) else "(end)"
            for run in (on, off)
        )
    return Comparison(
        steps=max(len(on.steps), len(off.steps)),
        identical=int(same.sum()),
        step_abs_dlogit=dlogit,
        first_parting=first_parting,
        first_drift=int(drifting[0]) if drifting.size else None,
        parting_labels=parting_labels,
    )


@dataclass(frozen=True)
class Savings:
    """What the whole generation cost with the cache and without it."""

    seconds_on: float
    seconds_off: float
    median_step_on: float  # seconds; robust to the pauses a shared CPU inserts into a run
    median_step_off: float
    cells_on: int
    cells_off: int

    @property
    def speedup(self) -> float:
        return self.seconds_off / self.seconds_on

    @property
    def cells_ratio(self) -> float:
        return self.cells_off / self.cells_on


def savings(on: GenerationTrace, off: GenerationTrace) -> Savings:
    return Savings(
        seconds_on=float(on.seconds.sum()),
        seconds_off=float(off.seconds.sum()),
        median_step_on=float(np.median(on.seconds)),
        median_step_off=float(np.median(off.seconds)),
        cells_on=int(on.cells.sum()),
        cells_off=int(off.cells.sum()),
    )


def fed_positions(run: GenerationTrace) -> int:
    """How many positions the run ever fed to the model (the last chosen token is never fed)."""
    return int(max(step.computed[:, 1].max() for step in run.steps))


def step_within(run: GenerationTrace, step: int) -> int:
    """The same step in a run that may have stopped earlier (at its end-of-sequence token)."""
    return min(step, len(run.steps) - 1)


def query_position(run: GenerationTrace, step: int) -> int:
    """The position whose output chose this step's token: the last one the step computed."""
    return int(run.steps[step].computed[:, 1].max()) - 1


def cached_tokens(run: GenerationTrace) -> np.ndarray:  # (N,)
    """Tokens whose K and V the cache holds after each step (everything fed so far)."""
    return np.array([int(step.computed[:, 1].max()) for step in run.steps])


def formula_bytes(shape: ModelShape, tokens: np.ndarray) -> np.ndarray:
    """2 × layers × kv_heads × head_dim × tokens × bytes_per_value, for each count of tokens."""
    return shape.cache_bytes_per_token * np.asarray(tokens, dtype=np.int64)


@dataclass(frozen=True)
class CacheSize:
    """Bytes of the cache after each step: measured on its tensors, and by the formula."""

    tokens: np.ndarray  # (N,): tokens held after each step
    measured: np.ndarray  # (N,)
    formula: np.ndarray  # (N,)

    @property
    def agree(self) -> bool:
        return bool((self.measured == self.formula).all())

    @property
    def largest_growth(self) -> int:
        """The most bytes one decoding step added (after the prompt's own step)."""
        return int(np.diff(self.measured).max()) if self.measured.size > 1 else 0


def cache_size(run: GenerationTrace, shape: ModelShape) -> CacheSize:
    tokens = cached_tokens(run)
    return CacheSize(tokens, run.cache_bytes, formula_bytes(shape, tokens))


def _computed_mask(computed: np.ndarray, n_positions: int) -> np.ndarray:
    """(L, 2) ranges [start, stop) per layer → (L, T) mask of the cells they cover."""
    positions = np.arange(n_positions)[None, :]  # (1, T)
    return (positions >= computed[:, :1]) & (positions < computed[:, 1:])  # (L, T)


def cell_states(run: GenerationTrace, step: int, n_positions: int) -> np.ndarray:
    """The (L, T) grid of CellState at one step, from what the hooks saw each step compute.

    A cell computed in this step is *computed now* the first time and *recomputed* when an
    earlier step already computed it; a cell computed earlier but not now is read from the cache
    (without the cache that never happens: every earlier cell is recomputed).
    """
    layers = run.steps[0].computed.shape[0]
    before = np.zeros((layers, n_positions), dtype=bool)  # (L, T)
    for earlier in run.steps[:step]:
        before |= _computed_mask(earlier.computed, n_positions)
    now = _computed_mask(run.steps[step].computed, n_positions)  # (L, T)
    states = np.full((layers, n_positions), CellState.NOT_YET, dtype=np.int8)  # (L, T)
    states[now & ~before] = CellState.COMPUTED
    states[now & before] = CellState.RECOMPUTED
    states[~now & before] = CellState.CACHED
    return states


def state_counts(states: np.ndarray) -> dict[CellState, int]:
    return {state: int((states == state).sum()) for state in CellState}


def sequence_labels(prompt_labels: Sequence[str], run: GenerationTrace) -> tuple[str, ...]:
    """Display labels of the prompt followed by the tokens this run chose."""
    return tuple(prompt_labels) + tuple(step.label for step in run.steps)


def kv_group_heads(heads: int, kv_heads: int, kv_head: int) -> tuple[int, ...]:
    """The query heads that read one KV head under grouped-query attention."""
    group = heads // kv_heads
    return tuple(head for head in range(heads) if head // group == kv_head)


@dataclass(frozen=True)
class CacheView:
    """What one step's new token reads at one layer through one KV head."""

    query: int  # position of the token whose output chose this step's token
    heads: tuple[int, ...]  # query heads sharing the KV head
    keys: np.ndarray  # (query + 1, d_head): the cached K rows, its own row last
    values: np.ndarray  # (query + 1, d_head)
    attention: np.ndarray  # (len(heads), query + 1): how each of those heads weighs each row

    @property
    def most_read(self) -> tuple[int, float]:
        """The row the query heads weigh most on average, and that mean weight."""
        mean = self.attention.mean(axis=0)  # (query + 1,)
        row = int(mean.argmax())
        return row, float(mean[row])


def cache_view(trace: Trace, query: int, layer: int, kv_head: int) -> CacheView:
    heads = kv_group_heads(trace.attentions.shape[1], trace.keys.shape[1], kv_head)
    return CacheView(
        query=query,
        heads=heads,
        keys=trace.keys[layer, kv_head, : query + 1],  # (q + 1, d_head)
        values=trace.values[layer, kv_head, : query + 1],  # (q + 1, d_head)
        attention=trace.attentions[layer, list(heads), query, : query + 1],  # (g, q + 1)
    )
