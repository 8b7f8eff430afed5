"""Cache surgery: edit the cached K/V of one token at some layers, and measure what moves.

If later tokens only depended on earlier *words*, editing an earlier token's cached keys and
values — its internal states as later tokens see them — while keeping every word the same could
change nothing. We run the prefix up to and including the source token, edit its K/V in place,
run the rest of the sequence on that cache, and compare with the unedited pass: the next-token
distribution of every later position (KL divergence, top-1) and the greedy continuation.

Layers here are decoder layers 0..L-1. The cache of decoder layer `l` holds projections of grid
row `l` (see `lib.flow`), so editing layers `first..last` replaces what cells
`(src, first..last)` offer to later tokens: rows `0..first` of later tokens cannot change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch
from transformers import DynamicCache

from lib.generate import choose
from lib.models import LoadedModel

EditKind = Literal["zero", "mean", "token"]


@dataclass(frozen=True)
class CacheEdit:
    src: int  # the token whose cached K/V are edited
    first: int  # first decoder layer edited
    last: int  # last decoder layer edited (inclusive)
    kind: EditKind  # zero them; the mean over all tokens; another token's
    other: int = 0  # with kind="token": whose K/V replace the source's


@dataclass(frozen=True)
class EditedPass:
    """Hidden states without and with the edit, on the grid of `lib.flow`: (L+1, T, d) each.

    Positions ≤ src of `after` come from the prefix pass, run before the edit."""

    before: np.ndarray
    after: np.ndarray


@dataclass(frozen=True)
class Surgery:
    edit: CacheEdit
    positions: np.ndarray  # (P,): the later positions src+1..T-1, recomputed on the edited cache
    kl: np.ndarray  # (P,): KL(before ‖ after) of the next-token distribution, in nats
    top_before: np.ndarray  # (P,): most likely next token without the edit
    top_after: np.ndarray  # (P,): and with it
    row_change: np.ndarray  # (L+1,): max over later positions of ‖Δh‖ / ‖h‖, per grid row
    prefix_change: float  # max over positions ≤ src and all rows of ‖Δh‖ / ‖h‖
    start: int  # first position of the regenerated continuation
    continuation_before: tuple[int, ...]  # greedy from the unedited cache
    continuation_after: tuple[int, ...]  # greedy from the edited cache

    @property
    def top_changed(self) -> np.ndarray:  # (P,) bool
        return self.top_before != self.top_after

    @property
    def below_edit_change(self) -> float:
        """Largest relative change of a later token's rows 0..first: out of reach of the edit."""
        return float(self.row_change[: self.edit.first + 1].max())

    @property
    def above_edit_change(self) -> float:
        """Largest relative change at row first+1, the first row that reads the edited cache."""
        return float(self.row_change[self.edit.first + 1])

    @property
    def first_divergence(self) -> int | None:
        """Index of the first regenerated token that differs; None if the two agree."""
        pairs = zip(self.continuation_before, self.continuation_after, strict=False)
        for index, (before, after) in enumerate(pairs):
            if before != after:
                return index
        if len(self.continuation_before) != len(self.continuation_after):
            return min(len(self.continuation_before), len(self.continuation_after))
        return None

    def table(
        self, texts: Sequence[str], top_texts_before: Sequence[str], top_texts_after: Sequence[str]
    ) -> pd.DataFrame:
        """One row per later position: its token, the KL, and the top next token both ways."""
        return pd.DataFrame(
            {
                "position": self.positions,
                "token": [texts[p] for p in self.positions],
                "KL (nats)": self.kl,
                "next token, before": top_texts_before,
                "next token, after": top_texts_after,
                "top-1 changed": self.top_changed,
            }
        )


def _forward(lm: LoadedModel, token_ids: Sequence[int], cache: DynamicCache):
    return lm.model(
        input_ids=torch.tensor([list(token_ids)]),
        past_key_values=cache,
        use_cache=True,
        output_hidden_states=True,
    )


def _replacements(cache: DynamicCache, edit: CacheEdit) -> dict[int, tuple[torch.Tensor, ...]]:
    """The (key, value) each edited layer gets instead of the source's, read from the full,
    unedited cache: (batch, kv_heads, head_dim) each."""
    chosen = {}
    for layer in range(edit.first, edit.last + 1):
        keys, values = cache.layers[layer].keys, cache.layers[layer].values  # (1, H_kv, T, hd)
        if edit.kind == "zero":
            chosen[layer] = (torch.zeros_like(keys[:, :, 0]), torch.zeros_like(values[:, :, 0]))
        elif edit.kind == "mean":
            chosen[layer] = (keys.mean(dim=2), values.mean(dim=2))
        else:
            chosen[layer] = (keys[:, :, edit.other].clone(), values[:, :, edit.other].clone())
    return chosen


def _run(lm: LoadedModel, token_ids: Sequence[int], edit: CacheEdit):
    """The unedited pass and the edited one; call with `lm.lock` held, in inference mode.

    Returns (full output, full cache, prefix output, rest output, edited cache)."""
    if not 0 <= edit.src < len(token_ids) - 1:
        raise ValueError(f"src must leave at least one later token: 0 ≤ src < {len(token_ids) - 1}")
    if not 0 <= edit.first <= edit.last < lm.shape.layers:
        raise ValueError(f"need 0 ≤ first ≤ last < {lm.shape.layers}")
    if edit.kind == "token" and not 0 <= edit.other < len(token_ids):
        raise ValueError(f"other must be a position 0..{len(token_ids) - 1}")
    full_cache = DynamicCache(config=lm.model.config)
    full = _forward(lm, token_ids, full_cache)
    replacements = _replacements(full_cache, edit)
    cache = DynamicCache(config=lm.model.config)
    prefix = _forward(lm, token_ids[: edit.src + 1], cache)
    for layer, (key, value) in replacements.items():
        cache.layers[layer].keys[:, :, edit.src] = key
        cache.layers[layer].values[:, :, edit.src] = value
    rest = _forward(lm, token_ids[edit.src + 1 :], cache)
    return full, full_cache, prefix, rest, cache


def _hidden(out) -> torch.Tensor:
    return torch.stack(out.hidden_states)[:, 0].float()  # (L+1, T, d)


def edited_pass(lm: LoadedModel, token_ids: Sequence[int], edit: CacheEdit) -> EditedPass:
    with lm.lock, torch.inference_mode():
        full, _, prefix, rest, _ = _run(lm, token_ids, edit)
    after = torch.cat([_hidden(prefix), _hidden(rest)], dim=1)  # (L+1, T, d)
    return EditedPass(_hidden(full).numpy(), after.numpy())


def _greedy(lm: LoadedModel, cache: DynamicCache, logits: torch.Tensor, count: int) -> list[int]:
    """`count` greedy tokens from a cache whose last position produced `logits`."""
    if count == 0:
        return []
    chosen = [choose(logits, None)]
    while len(chosen) < count and chosen[-1] != lm.tokenizer.eos_token_id:
        out = lm.model(input_ids=torch.tensor([chosen[-1:]]), past_key_values=cache, use_cache=True)
        chosen.append(choose(out.logits[0, -1], None))
    return chosen


def _relative_change(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """‖after - before‖ / ‖before‖ along the last axis."""
    return (after - before).norm(dim=-1) / before.norm(dim=-1).clamp_min(1e-12)


def run_surgery(
    lm: LoadedModel,
    token_ids: Sequence[int],
    n_prompt: int,
    edit: CacheEdit,
    continuation_is_greedy: bool = False,
) -> Surgery:
    """Edit, recompute every later position, and regenerate the continuation both ways.

    The continuation is regenerated from the first position that is both after the source and
    after the prompt, for as many tokens as the sequence has from there. When the sequence's
    own continuation was decoded greedily with the cache (`continuation_is_greedy`), it already
    is the greedy continuation from the unedited cache and is not decoded a second time.
    """
    with lm.lock, torch.inference_mode():
        full, full_cache, prefix, rest, cache = _run(lm, token_ids, edit)
        later = slice(edit.src + 1, len(token_ids))
        log_before = torch.log_softmax(full.logits[0, later].float(), dim=-1)  # (P, V)
        log_after = torch.log_softmax(rest.logits[0].float(), dim=-1)  # (P, V)
        kl = (log_before.exp() * (log_before - log_after)).sum(dim=-1)  # (P,)
        hidden_before = _hidden(full)  # (L+1, T, d)
        row_change = _relative_change(hidden_before[:, later], _hidden(rest)).amax(dim=1)
        prefix_change = _relative_change(hidden_before[:, : edit.src + 1], _hidden(prefix)).max()

        start = max(edit.src + 1, n_prompt)
        count = len(token_ids) - start
        cache.crop(start - cache.get_seq_length())  # negative: how many tokens to drop
        if continuation_is_greedy:
            before_ids = list(token_ids[start:])
        else:
            full_cache.crop(start - full_cache.get_seq_length())
            before_ids = _greedy(lm, full_cache, full.logits[0, start - 1], count)
        # the position before `start` is the source itself (prefix pass) or a later one
        last = (
            prefix.logits[0, -1]
            if start == later.start
            else rest.logits[0, start - 1 - later.start]
        )
        after_ids = _greedy(lm, cache, last, count)
    return Surgery(
        edit=edit,
        positions=np.arange(later.start, len(token_ids)),
        kl=kl.clamp_min(0).numpy(),
        top_before=log_before.argmax(dim=-1).numpy(),
        top_after=log_after.argmax(dim=-1).numpy(),
        row_change=row_change.numpy(),
        prefix_change=float(prefix_change),
        start=start,
        continuation_before=tuple(before_ids),
        continuation_after=tuple(after_ids),
    )
