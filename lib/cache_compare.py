"""Cache on against cache off: the verdict, what each step computed, what the cache holds.

Both runs of one prompt are decoded in lockstep (`run_both`): a step with the cache, then the
same step without it. So the two see the same state of the machine (a process that warms up, or
a neighbour that loads the CPU, slows both alike), and the full-vocabulary logits of a step are
compared while they exist instead of being kept. Which cells a step computed comes from the
hooks of the real forward pass (`Step.computed`), never from a formula, so the grid shown for a
step is what the model did; the cache-size formula is only used to check the bytes measured on
the cache tensors. What the new token reads is the decode cache itself, as the cached run left
it, with the attention weights that run computed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import torch

from lib import generate
from lib.generate import GenerationTrace, Step
from lib.models import LoadedModel, ModelShape

# The largest |Δlogit| between the cached and the uncached kernel that is still the rounding of
# one precision, per dtype. Measured on SmolLM2 over 128 steps: ~4e-5 in float32, up to ~0.3 in
# bfloat16 (its 8-bit mantissa); each bound is several times that, so a step above it has drifted.
TOLERANCE = {"float32": 1e-3, "bfloat16": 1.0}


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
class CacheRuns:
    """One prompt decoded twice in lockstep, with the cache (recorded) and without it."""

    on: GenerationTrace
    off: GenerationTrace
    step_abs_dlogit: np.ndarray  # (K,): max |Δlogit| of each step decoded from the same context


def warm_up(lm: LoadedModel, prompt_ids: Sequence[int]) -> None:
    """One untimed pass over the prompt: the first forward of a process pays for allocating and
    paging in what later ones reuse, and neither run should carry that alone."""
    with lm.lock, torch.inference_mode():
        lm.model(input_ids=torch.tensor([list(prompt_ids)]), use_cache=False, logits_to_keep=1)


def run_both(
    lm: LoadedModel,
    prompt_ids: Sequence[int],
    new_tokens: int,
    seed: int | None = None,
    on_step: Callable[[int, bool], None] | None = None,
) -> CacheRuns:
    """Decode with and without the cache, one step of each in turn; `on_step(done, use_cache)`
    sees every step. Logits are compared up to the first step where the tokens part (included):
    after it the two runs continue different texts and answer different questions."""
    warm_up(lm, prompt_ids)
    runs = {
        use_cache: generate.steps(lm, prompt_ids, new_tokens, use_cache, seed, record=use_cache)
        for use_cache in (True, False)
    }
    kept: dict[bool, list[Step]] = {True: [], False: []}
    cache, dlogit, parted = None, [], False
    while runs:
        logits = {}
        for use_cache in list(runs):
            try:
                step, logits[use_cache], after = next(runs[use_cache])
            except StopIteration:
                del runs[use_cache]
                continue
            kept[use_cache].append(step)
            cache = after if use_cache else cache
            if on_step is not None:
                on_step(len(kept[use_cache]), use_cache)
        if len(logits) == 2 and not parted:
            dlogit.append(float((logits[True].float() - logits[False].float()).abs().max()))
            parted = kept[True][-1].token_id != kept[False][-1].token_id
        elif len(logits) == 1:
            parted = True  # one run ended (end of sequence) while the other went on
    on, off = (
        GenerationTrace(
            lm.spec.id,
            use_cache,
            seed,
            tuple(prompt_ids),
            tuple(kept[use_cache]),
            generate.decode_cache(cache) if use_cache else None,
        )
        for use_cache in (True, False)
    )
    return CacheRuns(on, off, np.array(dlogit))


@dataclass(frozen=True)
class Comparison:
    """The two runs side by side: how many tokens agree, and how far the logits moved."""

    steps: int  # N: steps of the longer run
    identical: int  # M: steps at which both runs chose the same token
    step_abs_dlogit: np.ndarray  # (K,): max |Δlogit| of each step decoded from the same context
    tolerance: float  # of this dtype: above it a difference is a drift, not rounding
    first_parting: int | None  # first step at which the chosen tokens differ
    first_drift: int | None  # first step whose |Δlogit| exceeds `tolerance`
    parting_labels: tuple[str, str] | None  # (cache on, cache off) tokens at the first parting

    @property
    def max_abs_dlogit(self) -> float:
        return float(self.step_abs_dlogit.max()) if self.step_abs_dlogit.size else 0.0

    @property
    def same_tokens(self) -> bool:
        return self.identical == self.steps

    @property
    def kind(self) -> str:
        """`same`: every token and only rounding; `drift`: every token, logits beyond rounding;
        `parted`: the texts part. The page's verdict follows this word."""
        if not self.same_tokens:
            return "parted"
        return "same" if self.first_drift is None else "drift"

    @property
    def summary(self) -> str:
        """E.g. `24/24 tokens identical · max |Δlogit| = 4.0e-05`."""
        shown = f"{self.max_abs_dlogit:.1e}" if self.max_abs_dlogit else "0"
        return f"{self.identical}/{self.steps} tokens identical · max |Δlogit| = {shown}"


def compare(runs: CacheRuns, dtype: str) -> Comparison:
    """Compare the tokens of the two runs, and their logits against `dtype`'s tolerance."""
    on, off = runs.on, runs.off
    common = min(len(on.steps), len(off.steps))
    same = np.array(on.new_ids[:common]) == np.array(off.new_ids[:common])  # (common,)
    differing = np.flatnonzero(~same)
    if differing.size:
        first_parting = int(differing[0])
    elif len(on.steps) != len(off.steps):
        first_parting = common  # one run stopped (end of sequence) where the other went on
    else:
        first_parting = None
    tolerance = TOLERANCE[dtype]
    drifting = np.flatnonzero(runs.step_abs_dlogit > tolerance)
    parting_labels = None
    if first_parting is not None:
        parting_labels = tuple(
            run.steps[first_parting].label if first_parting < len(run.steps) else "(end)"
            for run in (on, off)
        )
    return Comparison(
        steps=max(len(on.steps), len(off.steps)),
        identical=int(same.sum()),
        step_abs_dlogit=runs.step_abs_dlogit,
        tolerance=tolerance,
        first_parting=first_parting,
        first_drift=int(drifting[0]) if drifting.size else None,
        parting_labels=parting_labels,
    )


PAYS = 1.25  # "the cache pays" once a step without it takes this many times a step with it


@dataclass(frozen=True)
class Savings:
    """What the generation cost with the cache and without it, step by step.

    Step 0 is left out of the timings: both runs feed the whole prompt there and do the same
    work. From step 1 on, a cached step feeds one token and an uncached one feeds the whole
    context again; the runs alternate, so step s of each ran under the same conditions.
    """

    context: np.ndarray  # (S,): tokens each timed step attends over (prompt + earlier steps)
    ms_on: np.ndarray  # (S,): wall time of each timed step with the cache
    ms_off: np.ndarray  # (S,): and without it
    cells_on: int  # (token, layer) cells computed over the whole run, counted by hooks
    cells_off: int
    pays_from: int | None  # first context from which the uncached step stays ≥ PAYS × slower

    @property
    def median_on(self) -> float:
        return float(np.median(self.ms_on)) if self.ms_on.size else float("nan")

    @property
    def median_off(self) -> float:
        return float(np.median(self.ms_off)) if self.ms_off.size else float("nan")

    @property
    def speedup(self) -> float:
        """Median uncached step ÷ median cached step: robust to a pause in one step."""
        return self.median_off / self.median_on

    @property
    def cells_ratio(self) -> float:
        return self.cells_off / self.cells_on


def pays_from(context: np.ndarray, ms_on: np.ndarray, ms_off: np.ndarray) -> int | None:
    """The shortest context from which the uncached step, as a running median of up to 5
    steps, stays at least PAYS × the median cached step up to the end of the run; None if it
    never does (or nothing was timed)."""
    if not ms_off.size:
        return None
    width = min(5, ms_off.size)
    window = np.lib.stride_tricks.sliding_window_view(ms_off, width)  # (S-width+1, width)
    slower = np.median(window, axis=1) >= PAYS * np.median(ms_on)  # (S-width+1,)
    if not slower[-1]:
        return None
    if slower.all():
        return int(context[0])  # from the first timed step
    start = int(np.flatnonzero(~slower)[-1]) + 1
    return int(context[start + width // 2])  # the middle of the first window that pays


def savings(on: GenerationTrace, off: GenerationTrace) -> Savings:
    timed = min(len(on.steps), len(off.steps))
    context = len(on.prompt_ids) + np.arange(1, timed)  # (S,)
    ms_on, ms_off = on.seconds[1:timed] * 1000, off.seconds[1:timed] * 1000
    return Savings(
        context=context,
        ms_on=ms_on,
        ms_off=ms_off,
        cells_on=int(on.cells.sum()),
        cells_off=int(off.cells.sum()),
        pays_from=pays_from(context, ms_on, ms_off),
    )


def weight_bytes(lm: LoadedModel) -> int:
    """Bytes of every weight the model holds: what a forward pass reads at least once, whatever
    the number of tokens it feeds (tied embeddings counted once)."""
    return sum(p.nelement() * p.element_size() for p in lm.model.parameters())


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


@dataclass(frozen=True)
class CacheView:
    """What one step's new token read at one layer through one KV head: the decode cache's own
    rows and the attention weights the cached run computed over them."""

    query: int  # position of the token whose output chose this step's token
    heads: tuple[int, ...]  # query heads sharing the KV head
    keys: np.ndarray  # (query + 1, d_head): the cached K rows (after RoPE), its own row last
    values: np.ndarray  # (query + 1, d_head)
    attention: np.ndarray  # (len(heads), query + 1): how each of those heads weighs each row

    @property
    def most_read(self) -> tuple[int, float]:
        """The row the query heads weigh most on average, and that mean weight."""
        mean = self.attention.mean(axis=0)  # (query + 1,)
        row = int(mean.argmax())
        return row, float(mean[row])


def cache_view(run: GenerationTrace, shape: ModelShape, step: int, layer: int, kv_head: int):
    """The rows of `run`'s decode cache that step `step` read at `layer`, `kv_head`."""
    query = query_position(run, step)
    heads = shape.query_heads_of(kv_head)
    reads = run.steps[step].reads  # (L, H, query + 1)
    return CacheView(
        query=query,
        heads=heads,
        keys=run.cache.keys[layer, kv_head, : query + 1],  # (q + 1, d_head)
        values=run.cache.values[layer, kv_head, : query + 1],  # (q + 1, d_head)
        attention=reads[layer, list(heads)],  # (g, q + 1)
    )
