"""Cache surgery: edit the cached K/V of one token at some layers, and measure what moves.

If later tokens only depended on earlier *words*, editing an earlier token's cached keys and
values — its internal states as later tokens see them — while keeping every word the same could
change nothing. We run the prefix up to and including the source token, edit its K/V in place,
run the rest of the sequence on that cache, and compare with the same split pass left unedited:
the next-token distribution of every later position (KL divergence, top-1), every row's states,
and the greedy continuation. How far splitting the pass alone moves the states (rounding) is
measured against one full pass and reported as the floor of every change.

Layers here are decoder layers 0..L-1. The cache of decoder layer `l` holds projections of grid
row `l` (see `lib.flow`), so editing layers `first..last` replaces what cells
`(src, first..last)` offer to later tokens: rows `0..first` of later tokens cannot change.
Decoder layer 0's K/V are projections of the token's embedding alone — of the word.

Keys are cached after the rotary position embedding (RoPE) rotated them to their token's
position. A key copied from another token (or averaged over tokens) is first rotated from its
own position to the source's (`rotate_keys`), so the edit changes what the source offers, not
where it appears to be.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch
from transformers import DynamicCache
from transformers.models.llama.modeling_llama import rotate_half

from lib.generate import choose
from lib.models import LoadedModel
from lib.trace import by_rows

EditKind = Literal["zero", "mean", "token"]


@dataclass(frozen=True)
class CacheEdit:
    src: int  # the token whose cached K/V are edited
    first: int  # first decoder layer edited (URL parameter `from`)
    last: int  # last decoder layer edited, inclusive (URL parameter `to`)
    kind: EditKind  # zero them; the mean over all tokens; another token's (URL parameter `edit`)
    other: int = 0  # with kind="token": whose K/V replace the source's

    @property
    def query(self) -> dict[str, int | str]:
        """The edit under the names the URL gives it."""
        names = {"src": self.src, "from": self.first, "to": self.last, "edit": self.kind}
        return names | ({"other": self.other} if self.kind == "token" else {})


@dataclass(frozen=True)
class EditedPass:
    """Hidden states of one full pass and of the edited split pass: (L+1, T, d) each.

    Positions ≤ src of `after` come from the prefix pass, run before the edit."""

    before: np.ndarray
    after: np.ndarray


@dataclass(frozen=True)
class Surgery:
    edit: CacheEdit
    positions: np.ndarray  # (P,): the later positions src+1..T-1, recomputed on the edited cache
    kl: np.ndarray  # (P,): KL(unedited ‖ edited) of the next-token distribution, in nats
    top_before: np.ndarray  # (P,): most likely next token without the edit
    top_after: np.ndarray  # (P,): and with it
    row_change: np.ndarray  # (L+1,): max over later positions of ‖Δh‖ / ‖h‖, edited vs unedited
    split_rounding: float  # max over every state of ‖Δh‖ / ‖h‖, unedited split vs one full pass
    start: int  # first position of the regenerated continuation
    wanted: int  # tokens each continuation may regenerate (the sequence's own from `start`)
    continuation_before: tuple[int, ...]  # greedy from the unedited cache
    continuation_after: tuple[int, ...]  # greedy from the edited cache
    ended_before: bool  # the unedited continuation ends with the end-of-sequence token
    ended_after: bool

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
                "next token, before": list(top_texts_before),
                "next token, after": list(top_texts_after),
                "top-1 changed": np.where(self.top_changed, "yes", "no"),
            }
        )


def _forward(
    lm: LoadedModel, token_ids: Sequence[int], cache: DynamicCache, logits_at: int | torch.Tensor
):
    """One pass that extends `cache`; `logits_at` is transformers' `logits_to_keep`: the last
    n positions (0: all) or a tensor of positions. Full-vocabulary rows are 200 KB each."""
    return lm.model(
        input_ids=torch.tensor([list(token_ids)]),
        past_key_values=cache,
        use_cache=True,
        output_hidden_states=True,
        logits_to_keep=logits_at,
    )


def rotate_keys(lm: LoadedModel, keys: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Keys rotated by RoPE as if `shift` positions later: (..., T, hd) → (..., T, hd).

    RoPE turns each pair of a key's coordinates by an angle proportional to the position, so
    a key cached at position p becomes the same key at position p + shift by one more turn of
    `shift` (negative turns back). The angles are the model's own (`rotary_emb`), without the
    scale some RoPE variants fold into cos and sin."""
    rotary = lm.model.model.rotary_emb
    work = keys.float()
    cos, sin = rotary(work, shift.reshape(1, -1))  # (1, T, hd) each, times attention_scaling
    cos, sin = cos[0] / rotary.attention_scaling, sin[0] / rotary.attention_scaling
    return (work * cos + rotate_half(work) * sin).to(keys.dtype)


def replacements(
    lm: LoadedModel, cache: DynamicCache, edit: CacheEdit
) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """The (key, value) each edited layer gets instead of the source's, read from the full,
    unedited cache: (batch, kv_heads, head_dim) each. Copied and averaged keys are rotated to
    the source's position first."""
    chosen = {}
    for layer in range(edit.first, edit.last + 1):
        keys, values = cache.layers[layer].keys, cache.layers[layer].values  # (1, H_kv, T, hd)
        positions = torch.arange(keys.shape[2])
        if edit.kind == "zero":
            chosen[layer] = (torch.zeros_like(keys[:, :, 0]), torch.zeros_like(values[:, :, 0]))
        elif edit.kind == "mean":
            at_source = rotate_keys(lm, keys, edit.src - positions)  # (1, H_kv, T, hd)
            chosen[layer] = (at_source.mean(dim=2), values.mean(dim=2))
        else:
            shift = torch.tensor([edit.src - edit.other])
            key = rotate_keys(lm, keys[:, :, edit.other : edit.other + 1], shift)[:, :, 0]
            chosen[layer] = (key, values[:, :, edit.other].clone())
    return chosen


@dataclass
class _Passes:
    full: object  # one forward pass over the whole sequence (logits at one position)
    full_cache: DynamicCache
    prefix: object  # positions 0..src, before any edit (logits at src)
    rest: object  # positions src+1.., on the edited cache
    cache: DynamicCache  # the edited cache, after the rest
    plain_rest: object  # positions src+1.., on the unedited prefix cache


def _run(
    lm: LoadedModel, token_ids: Sequence[int], edit: CacheEdit, full_logits_at: int
) -> _Passes:
    """The full pass (its logits at `full_logits_at` only), the split pass without the edit and
    with it; call with `lm.lock` held, in inference mode."""
    if not 0 <= edit.src < len(token_ids) - 1:
        raise ValueError(f"src must leave at least one later token: 0 ≤ src < {len(token_ids) - 1}")
    if not 0 <= edit.first <= edit.last < lm.shape.layers:
        raise ValueError(f"need 0 ≤ first ≤ last < {lm.shape.layers}")
    if edit.kind == "token" and not 0 <= edit.other < len(token_ids):
        raise ValueError(f"other must be a position 0..{len(token_ids) - 1}")
    full_cache = DynamicCache(config=lm.model.config)
    full = _forward(lm, token_ids, full_cache, torch.tensor([full_logits_at]))
    chosen = replacements(lm, full_cache, edit)
    cache = DynamicCache(config=lm.model.config)
    prefix = _forward(lm, token_ids[: edit.src + 1], cache, 1)
    plain = copy.deepcopy(cache)
    for layer, (key, value) in chosen.items():
        cache.layers[layer].keys[:, :, edit.src] = key
        cache.layers[layer].values[:, :, edit.src] = value
    rest = _forward(lm, token_ids[edit.src + 1 :], cache, 0)
    plain_rest = _forward(lm, token_ids[edit.src + 1 :], plain, 0)
    return _Passes(full, full_cache, prefix, rest, cache, plain_rest)


def _hidden(out) -> torch.Tensor:
    return torch.stack(out.hidden_states)[:, 0].float()  # (L+1, T, d)


def edited_pass(lm: LoadedModel, token_ids: Sequence[int], edit: CacheEdit) -> EditedPass:
    with lm.lock, torch.inference_mode():
        passes = _run(lm, token_ids, edit, len(token_ids) - 1)
    after = torch.cat([_hidden(passes.prefix), _hidden(passes.rest)], dim=1)  # (L+1, T, d)
    return EditedPass(_hidden(passes.full).numpy(), after.numpy())


def _greedy(lm: LoadedModel, cache: DynamicCache, logits: torch.Tensor, count: int) -> list[int]:
    """`count` greedy tokens from a cache whose last position produced `logits`."""
    if count == 0:
        return []
    chosen = [choose(logits, None)]
    while len(chosen) < count and chosen[-1] != lm.tokenizer.eos_token_id:
        out = lm.model(input_ids=torch.tensor([chosen[-1:]]), past_key_values=cache, use_cache=True)
        chosen.append(choose(out.logits[0, -1], None))
    return chosen


def kl_divergence(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) in nats along the last axis, from log-probabilities: (..., V) → (...)."""
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)


def _compare_rows(before: torch.Tensor, after: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """KL(before ‖ after) and both top tokens of rows of logits (n, V) each: (n,) ×3."""
    log_before = torch.log_softmax(before.float(), dim=-1)
    log_after = torch.log_softmax(after.float(), dim=-1)
    kl = kl_divergence(log_before, log_after)
    return kl, log_before.argmax(dim=-1), log_after.argmax(dim=-1)


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
    start = max(edit.src + 1, n_prompt)
    count = len(token_ids) - start
    with lm.lock, torch.inference_mode():
        passes = _run(lm, token_ids, edit, start - 1)
        later = slice(edit.src + 1, len(token_ids))
        kl, top_before, top_after = by_rows(
            _compare_rows, passes.plain_rest.logits[0], passes.rest.logits[0]
        )
        plain_later = _hidden(passes.plain_rest)  # (L+1, P, d)
        row_change = _relative_change(plain_later, _hidden(passes.rest)).amax(dim=1)  # (L+1,)
        split = torch.cat([_hidden(passes.prefix), plain_later], dim=1)  # (L+1, T, d)
        split_rounding = _relative_change(_hidden(passes.full), split).max()

        cache = passes.cache
        cache.crop(start - cache.get_seq_length())  # negative: how many tokens to drop
        if continuation_is_greedy:
            before_ids = list(token_ids[start:])
        else:
            full_cache = passes.full_cache
            full_cache.crop(start - full_cache.get_seq_length())
            before_ids = _greedy(lm, full_cache, passes.full.logits[0, 0], count)  # at start - 1
        # the position before `start` is the source itself (prefix pass) or a later one
        last = (
            passes.prefix.logits[0, -1]
            if start == later.start
            else passes.rest.logits[0, start - 1 - later.start]
        )
        after_ids = _greedy(lm, cache, last, count)
    eos = lm.tokenizer.eos_token_id
    return Surgery(
        edit=edit,
        positions=np.arange(later.start, len(token_ids)),
        kl=kl.clamp_min(0).numpy(),
        top_before=top_before.numpy(),
        top_after=top_after.numpy(),
        row_change=row_change.numpy(),
        split_rounding=float(split_rounding),
        start=start,
        wanted=count,
        continuation_before=tuple(before_ids),
        continuation_after=tuple(after_ids),
        ended_before=bool(before_ids) and before_ids[-1] == eos,
        ended_after=bool(after_ids) and after_ids[-1] == eos,
    )
