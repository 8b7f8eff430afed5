"""The logit lens: every layer's residual stream read as if it were the model's last.

The text keeps one token per step and throws the rest away: the full next-token distribution,
and each layer's provisional guess. The lens decodes every (layer, position) cell of a trace
through the model's own final norm and unembedding, in one batched pass, and keeps only what the
page shows: the top-k tokens and their probabilities, the entropy, and the rank of the token
that actually came next. From those, `first_seen` asks at which layer an emitted token enters
the top-k and from which it stays there ("settles"), and whether an earlier position's lens
already ranked it — against how often it ranks matched tokens that were *not* emitted there.
A sighting that beats that baseline is a hint of lookahead, no proof: the lens of position s
guesses token s + 1, and a state that holds a token is not shown to be used for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lib.models import LoadedModel
from lib.trace import TOP_K, Trace, token_labels

LATE_LAYERS = 3  # "settles late": only in the last few layers below the output
CHUNK_CELLS = 128  # cells projected at once: (128, vocab) float32 logits is 25 MB for SmolLM2
TOPK_BLOCK = 128  # vocabulary entries per block in `top_k_blocked`
EXP_FLOOR = -80.0  # exp(-80) ≈ 2e-35 is still a normal float32; its share of p is nil


@dataclass(frozen=True)
class Lens:
    """What the lens reads at each cell; layer 0 is the embeddings, layer L the model's output."""

    top_ids: np.ndarray  # (L+1, T, K): most likely next tokens read at each cell
    top_probs: np.ndarray  # (L+1, T, K)
    entropy: np.ndarray  # (L+1, T): of the full lens distribution, in nats
    next_rank: np.ndarray  # (L+1, T): rank (0 = top) of token t+1 at cell (l, t); -1 at the end
    top1_labels: np.ndarray  # (L+1, T): the likeliest token of each cell, as the heatmap writes it

    @property
    def n_layers(self) -> int:
        """Rows of the lens: the embeddings plus one per decoder layer."""
        return int(self.top_ids.shape[0])

    @property
    def n_tokens(self) -> int:
        return int(self.top_ids.shape[1])


def _frozen(tensor: torch.Tensor) -> np.ndarray:
    array = tensor.numpy()
    array.flags.writeable = False
    return array


def lens_inputs(lm: LoadedModel, hidden: torch.Tensor) -> torch.Tensor:
    """The residual stream of every layer as the unembedding expects it: after the final norm.

    In transformers 5 the last of `output_hidden_states` is `last_hidden_state`, i.e. already
    through the final norm (`capture_outputs(tie_last_hidden_states=True)`), so only the
    earlier rows are normed here; norming the last one twice would change the model's output.
    """
    below_top = lm.model.model.norm(hidden[:-1])  # (L, T, d)
    return torch.cat([below_top, hidden[-1:]])  # (L+1, T, d)


def top_k_blocked(logits: torch.Tensor, k: int, block: int) -> torch.return_types.topk:
    """`torch.topk(logits, k)` (n, V), exactly, at a third of its cost on a large vocabulary.

    Any of a row's k largest values lies in a block whose maximum is at least the k-th largest,
    and at most k blocks have such a maximum; so the top-k of the k blocks with the largest
    maxima (plus the short tail that fills no block) is the top-k of the row.
    """
    n, vocab = logits.shape
    full = vocab - vocab % block
    if full // block <= k:
        return torch.topk(logits, k, dim=-1)
    blocks = logits[:, :full].view(n, -1, block)  # (n, B, block)
    chosen = torch.topk(blocks.amax(-1), k, dim=-1).indices  # (n, k) block numbers
    ids = (chosen[:, :, None] * block + torch.arange(block)).reshape(n, -1)  # (n, k*block)
    ids = torch.cat([ids, torch.arange(full, vocab).expand(n, -1)], dim=1)
    best = torch.topk(logits.gather(1, ids), k, dim=-1)
    return torch.return_types.topk((best.values, ids.gather(1, best.indices)))


def read_logits(
    logits: torch.Tensor, scratch: torch.Tensor, following: torch.Tensor, top_k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reduce full-vocabulary logits (n, V) to what is kept of them: the top-k ids and
    probabilities (n, k), the entropy (n,), and the rank of the `following` token (n,; -1 where
    it is -1). Overwrites `logits` and `scratch` (n, V), so no other (n, V) array is made: a
    fresh 25 MB tensor costs more in page faults than the arithmetic done on it."""
    top = top_k_blocked(logits, top_k, TOPK_BLOCK)  # sorted: values[:, 0] is the max
    # Counted as floats in the scratch buffer (exact below 2**24): a bool mask's sum would
    # first be copied to int64, eight times its size.
    torch.gt(logits, logits.gather(1, following.clamp(min=0)[:, None]), out=scratch)
    rank = torch.where(following >= 0, scratch.sum(-1).long(), -1)  # (n,)
    top_value = top.values[:, :1]
    # Shifted so the max is 0, and floored where exp would give a denormal float: those cost
    # ~50x the time of a normal one on x86, and a third of the early layers' logits land there.
    shifted = logits.sub_(top_value).clamp_(min=EXP_FLOOR)  # (n, V)
    exps = torch.exp(shifted, out=scratch)  # (n, V)
    total = exps.sum(-1)  # (n,)
    # H = -Σ p log p, with p = exps / total and log p = shifted - log total
    entropy = total.log() - exps.mul_(shifted).sum(-1) / total
    probs = (top.values - top_value).exp() / total[:, None]  # (n, k)
    return top.indices, probs, entropy, rank


def logit_lens(lm: LoadedModel, trace: Trace, top_k: int = TOP_K) -> Lens:
    """Decode every cell of `trace` through the final norm and the unembedding, batched.

    Full-vocabulary logits exist only for `CHUNK_CELLS` cells at a time, in two buffers that
    every chunk reuses (fresh 25 MB tensors would each be paged in anew).
    """
    hidden = torch.tensor(trace.hidden)  # (L+1, T, d)
    rows, n_tokens, width = hidden.shape
    following = np.append(trace.token_ids[1:], -1)  # token t+1, none after the last
    targets = torch.from_numpy(np.tile(following, rows))  # (cells,) in layer-major order
    chunks = []
    with lm.lock, torch.inference_mode():
        states = lens_inputs(lm, hidden.to(lm.model.dtype)).reshape(-1, width).float()
        unembed = lm.model.lm_head.weight.float()  # (V, d)
        cells = states.shape[0]
        logits = torch.empty(min(CHUNK_CELLS, cells), unembed.shape[0])  # (chunk, V)
        scratch = torch.empty_like(logits)
        for start in range(0, cells, CHUNK_CELLS):
            part = slice(start, min(start + CHUNK_CELLS, cells))
            n = part.stop - part.start
            torch.matmul(states[part], unembed.T, out=logits[:n])  # (n, V)
            chunks.append(read_logits(logits[:n], scratch[:n], targets[part], top_k))
    ids, probs, entropy, rank = (torch.cat(column) for column in zip(*chunks, strict=True))
    shape = (rows, n_tokens)
    top_ids = _frozen(ids.reshape(*shape, top_k))
    top1_labels = label_grid(lm, top_ids[:, :, 0])
    top1_labels.flags.writeable = False
    return Lens(
        top_ids=top_ids,
        top_probs=_frozen(probs.reshape(*shape, top_k)),
        entropy=_frozen(entropy.reshape(shape)),
        next_rank=_frozen(rank.reshape(shape)),
        top1_labels=top1_labels,
    )


@dataclass(frozen=True)
class TopK:
    """One cell's (or one position's) top-k, and what lies outside it."""

    ids: np.ndarray  # (k,)
    probs: np.ndarray  # (k,)
    entropy: float

    @property
    def mass_outside(self) -> float:
        return float(max(0.0, 1.0 - self.probs.sum()))

    def index_of(self, token_id: int) -> int | None:
        """Where `token_id` stands in this top-k (0 = likeliest); None when it is outside."""
        found = np.flatnonzero(self.ids == token_id)
        return int(found[0]) if found.size else None


def cell_top_k(lens: Lens, layer: int, position: int, k: int) -> TopK:
    return TopK(
        lens.top_ids[layer, position, :k],
        lens.top_probs[layer, position, :k],
        float(lens.entropy[layer, position]),
    )


def output_top_k(trace: Trace, position: int, k: int) -> TopK:
    """The model's own next-token distribution after `position`, as the trace kept it."""
    return TopK(
        trace.top_ids[position, :k],
        trace.top_probs[position, :k],
        float(trace.entropy[position]),
    )


MATCH_FACTOR = 2.0  # a matched token's base count lies within this factor of the emitted one's
ALPHA = 0.05  # a sighting is called a hint when its matched p-value is at most this


@dataclass(frozen=True)
class Sighting:
    """One emitted token, followed down its own column and back through earlier positions.

    The look back reads the earlier cells: every position before `position`, layers 1 to L
    (layer 0 holds the input token itself). Its null baseline is a set of *matched* tokens:
    tokens other than this one, not in the text up to `position`, whose base count — the
    cells of the whole run (layers ≥ 1) outside column `position` whose top-k holds them —
    lies within a factor `MATCH_FACTOR` of this token's. They were not emitted here; how often
    the same earlier cells hold them is how often the look back "sees" a token by chance.
    """

    position: int  # the position whose output chose it; the token itself sits at position + 1
    token_id: int
    ranks: np.ndarray  # (L+1,): its rank in the lens at each layer of `position` (0 = top)
    entered: int | None  # first layer ≥ 1 whose lens top-k holds it (None: no layer does)
    settled: int | None  # first layer ≥ 1 from which it stays in the top-k up to the output
    earlier: tuple[int, int] | None  # (position, layer): earliest earlier cell holding it
    earlier_below_top: tuple[int, int] | None  # the same among rows below the top
    earlier_cells: int  # earlier cells whose top-k holds it
    window_cells: int  # earlier cells in all: position × L
    in_text_before: bool  # the token already occurs in the text up to `position`
    base_count: int  # the matching key: run cells outside column `position` holding it
    matched: int  # matched tokens (0 when the token has no base count: it cannot be seen)
    matched_seen: int  # of them, held by at least one earlier cell
    matched_as_often: int  # of them, held by at least as many earlier cells as this token

    @property
    def steps_ahead(self) -> int | None:
        return None if self.earlier is None else self.position - self.earlier[0]

    @property
    def earlier_share(self) -> float:
        """Share of the earlier cells whose top-k holds it."""
        return self.earlier_cells / self.window_cells if self.window_cells else 0.0

    @property
    def matched_rate(self) -> float | None:
        """Share of the matched tokens that some earlier cell holds: the chance of a sighting.
        None without matched tokens (among them, a token no cell outside its own column holds:
        no earlier cell can hold it either, so there is nothing to compare)."""
        return self.matched_seen / self.matched if self.matched else None

    @property
    def p_value(self) -> float | None:
        """(1 + matched tokens held at least as often) / (1 + matched tokens): the chance that a
        matched token not emitted here looks at least as foreseen. None when it was not seen."""
        if self.earlier is None or not self.matched:
            return None
        return (1 + self.matched_as_often) / (1 + self.matched)

    @property
    def is_hint(self) -> bool:
        """New to the text, seen earlier, and seen more than matched tokens (p ≤ ALPHA)."""
        p = self.p_value
        return not self.in_text_before and p is not None and p <= ALPHA


def settled_layer(inside: np.ndarray) -> int | None:
    """The first layer from which `inside` holds up to the last layer; None if the last fails."""
    if not inside[-1]:
        return None
    outside = np.flatnonzero(~inside)
    return int(outside[-1]) + 1 if outside.size else 0


def _earliest(held: np.ndarray) -> tuple[int, int] | None:
    """(position, row) of the earliest position with a True, at its lowest row; `held` is
    (rows, positions) and its row 0 is layer 1."""
    positions = np.flatnonzero(held.any(0))
    if not positions.size:
        return None
    first = int(positions[0])
    return first, 1 + int(np.flatnonzero(held[:, first])[0])


def first_seen(
    lens: Lens, token_ids: np.ndarray, first_position: int, k: int
) -> tuple[Sighting, ...]:
    """For each token emitted from `first_position` on: where the lens first shows it, and how
    often matched tokens that were not emitted there show up in the same earlier cells.

    Layer 0 is left out everywhere: the embeddings hold the input token (with tied embeddings
    the lens reads back that very token), which is no prediction of anything. A cell's top-k
    holds distinct tokens, so "cells holding a token" counts each cell at most once.
    """
    held = lens.top_ids[1:, :, :k]  # (L, T, k)
    rows, n_tokens = held.shape[:2]
    distinct, where = np.unique(held, return_inverse=True)  # where: (L, T, k) into distinct
    where = where.reshape(held.shape)
    columns = np.zeros((n_tokens, distinct.size), np.int16)  # (T, D): ≤ 64 cells per entry
    for t in range(n_tokens):
        columns[t] = np.bincount(where[:, t].ravel(), minlength=distinct.size)
    total = columns.sum(0, dtype=np.int64)  # (D,): cells of the run holding each token
    window = columns[:first_position].sum(0, dtype=np.int64)  # (D,): cells before `position`
    slots = np.searchsorted(distinct, token_ids).clip(max=distinct.size - 1)  # (T,)
    slots = np.where(distinct[slots] == token_ids, slots, -1)  # each token's entry, -1: none
    in_text = np.zeros(distinct.size, bool)  # (D,): tokens of the text up to `position`
    in_text[slots[:first_position][slots[:first_position] >= 0]] = True
    sightings = []
    for position in range(first_position, n_tokens - 1):
        token = int(token_ids[position + 1])
        ranks = lens.next_rank[:, position]
        inside = ranks[1:] < k  # (L,): layers 1..L
        if slots[position] >= 0:
            in_text[slots[position]] = True
        index = int(slots[position + 1]) if slots[position + 1] >= 0 else None
        seen_cells = int(window[index]) if index is not None else 0
        base = int(total[index] - columns[position, index]) if index is not None else 0
        matched = matched_seen = matched_as_often = 0
        if base:
            base_counts = total - columns[position]  # (D,)
            pool = (base_counts >= base / MATCH_FACTOR) & (base_counts <= base * MATCH_FACTOR)
            pool &= ~in_text
            pool[index] = False
            matched = int(pool.sum())
            matched_seen = int((window[pool] > 0).sum())
            matched_as_often = int((window[pool] >= max(seen_cells, 1)).sum())
        earlier_held = (held[:, :position] == token).any(-1)  # (L, position)
        entered = int(np.flatnonzero(inside)[0]) + 1 if inside.any() else None
        settled = settled_layer(inside)
        sightings.append(
            Sighting(
                position=position,
                token_id=token,
                ranks=ranks,
                entered=entered,
                settled=None if settled is None else settled + 1,
                earlier=_earliest(earlier_held),
                earlier_below_top=_earliest(earlier_held[:-1]),
                earlier_cells=seen_cells,
                window_cells=rows * position,
                in_text_before=bool((token_ids[: position + 1] == token).any()),
                base_count=base,
                matched=matched,
                matched_seen=matched_seen,
                matched_as_often=matched_as_often,
            )
        )
        window += columns[position]
    return tuple(sightings)


def label_grid(lm: LoadedModel, ids: np.ndarray) -> np.ndarray:
    """Display labels for an array of token ids, same shape; each distinct id decoded once."""
    distinct, where = np.unique(ids, return_inverse=True)
    return np.asarray(token_labels(lm, distinct.tolist()), dtype=object)[where].reshape(ids.shape)


def entropy_extremes(trace: Trace, first: int, last: int) -> tuple[int, int]:
    """The positions in first..last-1 where the model was surest and most hesitant."""
    window = trace.entropy[first:last]
    return first + int(np.argmin(window)), first + int(np.argmax(window))


@dataclass(frozen=True)
class LookbackSummary:
    """The look back over all emitted tokens, in the numbers the page states."""

    emitted: int
    settled: int  # tokens that end in the top-k at the output (all of them, when greedy)
    median_entered: float | None  # over those, the layer ≥ 1 where they first enter it
    median_settled: float | None  # over those, the layer from which they stay in it
    settled_late: int  # tokens that settle only within the last LATE_LAYERS layers
    late_in_before: int  # of those, tokens that had been in the top-k lower down and left it
    new: int  # emitted tokens not already in the text
    new_seen: int  # of those, tokens some earlier cell holds
    compared: int  # new tokens with matched tokens: the two rates below are over these
    compared_seen: int  # of those, tokens some earlier cell holds
    matched_rate: float | None  # mean chance of a sighting for their matched tokens
    tested: int  # new tokens with matched tokens, i.e. with a p-value once seen
    hints: int  # new tokens seen more than their matched tokens (p ≤ ALPHA)
    below_top: int  # hints with a sighting in a row below the top, which later positions read
    best: Sighting | None  # the hint (or, without one, the seen new token) with the lowest p

    @property
    def seen_rate(self) -> float | None:
        """Share of the compared new tokens that some earlier cell holds."""
        return self.compared_seen / self.compared if self.compared else None

    @property
    def chance_hints(self) -> float:
        """Hints expected by chance alone at ALPHA over the tokens tested."""
        return ALPHA * self.tested


def summarize(sightings: tuple[Sighting, ...], n_layers: int) -> LookbackSummary:
    """`n_layers`: rows of the lens (embedding + decoder layers)."""
    settled = [s for s in sightings if s.settled is not None]
    late = [s for s in settled if s.settled > n_layers - 1 - LATE_LAYERS]
    new = [s for s in sightings if not s.in_text_before]
    seen = [s for s in new if s.earlier is not None]
    compared = [s for s in new if s.matched_rate is not None]
    hints = [s for s in new if s.is_hint]
    candidates = [s for s in seen if s.p_value is not None]
    return LookbackSummary(
        emitted=len(sightings),
        settled=len(settled),
        median_entered=float(np.median([s.entered for s in settled])) if settled else None,
        median_settled=float(np.median([s.settled for s in settled])) if settled else None,
        settled_late=len(late),
        late_in_before=sum(s.entered < s.settled for s in late),
        new=len(new),
        new_seen=len(seen),
        compared=len(compared),
        compared_seen=sum(s.earlier is not None for s in compared),
        matched_rate=float(np.mean([s.matched_rate for s in compared])) if compared else None,
        tested=sum(s.matched > 0 for s in new),
        hints=len(hints),
        below_top=sum(s.earlier_below_top is not None for s in hints),
        best=min(candidates, key=lambda s: (s.p_value, s.position)) if candidates else None,
    )
