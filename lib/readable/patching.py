"""Counterfactual patching: an earlier token's internal states, not its word, carry the answer.

Two prompts differ in one earlier token: the clean one ("… The capital of Italy is") and the
corrupted one ("… The capital of Germany is"). We run the corrupted prompt, but let its later
tokens read, at decoder layers a..b, the clean prompt's cached K/V of the differing token, and
measure how much of the clean answer comes back: the fraction of the logit difference restored,
(Δ_patched − Δ_corrupt) / (Δ_clean − Δ_corrupt), where Δ = logit(clean answer) − logit(corrupt
answer) at the last position and each answer is the top next token of its own prompt.

Decoder layer 0's K/V are projections of the normed word embedding itself: a patch that includes
layer 0 hands over the word. From layer 1 up they are projections of states the model computed,
so restoration from a ≥ 1 is carried by internal state. The cache holds keys after RoPE; the
differing token sits at the same position in both prompts, so its rotation is the same and the
clean keys are copied as they are.

Every run is a prefix pass up to and including the differing position, then the rest of the
prompt on that cache (the split of `lib.surgery`). Positions before the differing one see the
same tokens in both prompts, so their cached K/V are equal; the clean, corrupted and patched runs
differ only in what the cache holds at that one position. With an empty patch range the patched
run is the corrupted run, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import DynamicCache

from lib.models import LoadedModel
from lib.readable.ridge import frozen
from lib.trace import encode_prompt, token_labels

TOP_K = 10
KeyValue = tuple[torch.Tensor, torch.Tensor]  # (1, H_kv, hd) each: one position of one layer


@dataclass(frozen=True)
class PromptPair:
    clean_ids: tuple[int, ...]
    corrupt_ids: tuple[int, ...]
    position: int  # the one position where the two differ; later tokens read it


@dataclass(frozen=True)
class Refusal:
    reason: str  # why this pair cannot be patched, in words the page shows as a notice


def prompt_pair(lm: LoadedModel, clean: str, corrupt: str, max_tokens: int) -> PromptPair | Refusal:
    """Tokenize both prompts and find the one position where they differ, or say why not."""
    clean_prompt = encode_prompt(lm, clean, max_tokens)
    corrupt_prompt = encode_prompt(lm, corrupt, max_tokens)
    clean_ids, corrupt_ids = clean_prompt.ids, corrupt_prompt.ids
    if clean_prompt.notices or corrupt_prompt.notices:
        return Refusal(f"Patching needs both prompts within the budget of {max_tokens} tokens.")
    if len(clean_ids) != len(corrupt_ids):
        return Refusal(
            f"The two prompts have {len(clean_ids)} and {len(corrupt_ids)} tokens. Patching needs "
            "equal counts, so that every token sits at the same position in both: choose words "
            "that are one token each, or that split into as many tokens."
        )
    differ = [i for i, (a, b) in enumerate(zip(clean_ids, corrupt_ids, strict=True)) if a != b]
    if not differ:
        return Refusal("The two prompts are the same, token for token: there is nothing to patch.")
    if len(differ) > 1:
        labels = token_labels(lm, [clean_ids[i] for i in differ])
        where = ", ".join(f"{i} ({label})" for i, label in zip(differ, labels, strict=True))
        return Refusal(
            f"The two prompts differ at {len(differ)} positions: {where}. Patching moves the "
            "states of one token, so they must differ in exactly one."
        )
    if differ[0] == len(clean_ids) - 1:
        return Refusal(
            "The prompts differ only in their last token, which no later token reads: the "
            "difference must come earlier."
        )
    return PromptPair(tuple(clean_ids), tuple(corrupt_ids), differ[0])


@dataclass(frozen=True)
class NextTokens:
    """The next-token distribution at the last position, cut to its top k."""

    top_ids: np.ndarray  # (k,)
    top_probs: np.ndarray  # (k,)
    difference: float  # Δ = logit(clean answer) − logit(corrupt answer)


@dataclass(frozen=True)
class Patching:
    pair: PromptPair
    layers: range  # decoder layers whose K/V of the differing position come from the clean run
    clean_answer: int  # the clean prompt's top next token
    corrupt_answer: int  # the corrupted prompt's
    clean: NextTokens
    corrupt: NextTokens
    patched: NextTokens
    restored: float  # (Δ_patched − Δ_corrupt) / (Δ_clean − Δ_corrupt); NaN if answers agree
    notice: str  # why `restored` is undefined, or ""


@dataclass(frozen=True)
class RestorationCurve:
    pair: PromptPair
    restored: np.ndarray  # (L,): fraction restored by patching layers a..L−1, a = 0..L−1
    notice: str

    @property
    def word(self) -> float:
        """From layer 0 up: includes layer 0's K/V, projections of the word embedding itself."""
        return float(self.restored[0])

    @property
    def internal(self) -> np.ndarray:  # (L − 1,): from layer a = 1..L−1, internal states only
        return self.restored[1:]


def _prefix(lm: LoadedModel, token_ids: Sequence[int], position: int) -> DynamicCache:
    """A cache filled by a pass over the tokens up to and including `position`."""
    cache = DynamicCache(config=lm.model.config)
    lm.model(
        input_ids=torch.tensor([list(token_ids[: position + 1])]),
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    return cache


def _at(cache: DynamicCache, position: int) -> list[KeyValue]:
    """Each layer's cached K/V at one position, copied."""
    return [
        (layer.keys[:, :, position].clone(), layer.values[:, :, position].clone())
        for layer in cache.layers
    ]


def _last_logits(
    lm: LoadedModel, cache: DynamicCache, token_ids: Sequence[int], position: int
) -> torch.Tensor:
    """Run the tokens after `position` on the prefix cache; the last position's logits (V,).

    The cache is cropped back to the prefix afterwards, ready for the next run."""
    out = lm.model(
        input_ids=torch.tensor([list(token_ids[position + 1 :])]),
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    cache.crop(position + 1 - cache.get_seq_length())  # negative: how many tokens to drop
    return out.logits[0, -1].float()


def _write(cache: DynamicCache, position: int, states: Sequence[KeyValue]) -> None:
    for layer, (key, value) in zip(cache.layers, states, strict=True):
        layer.keys[:, :, position] = key
        layer.values[:, :, position] = value


def _agreement(lm: LoadedModel, answers: tuple[int, int]) -> str:
    """Why the fraction restored is undefined when both prompts predict the same token, or ""."""
    if answers[0] != answers[1]:
        return ""
    label = token_labels(lm, answers[:1])[0]
    return (
        f"Both prompts make the model predict {label} next: there is no difference between "
        "them for a patch to restore."
    )


class _Runs:
    """The clean and corrupted runs of a pair, and the corrupted prefix cache to patch.

    Use with `lm.lock` held, in inference mode."""

    def __init__(self, lm: LoadedModel, pair: PromptPair):
        self.lm, self.pair = lm, pair
        clean_cache = _prefix(lm, pair.clean_ids, pair.position)
        self.donor = _at(clean_cache, pair.position)  # (L,) clean K/V of the differing token
        self.clean = _last_logits(lm, clean_cache, pair.clean_ids, pair.position)  # (V,)
        self.cache = _prefix(lm, pair.corrupt_ids, pair.position)
        self.own = _at(self.cache, pair.position)  # (L,) its corrupted K/V
        self.corrupt = _last_logits(lm, self.cache, pair.corrupt_ids, pair.position)  # (V,)
        self.answers = (int(self.clean.argmax()), int(self.corrupt.argmax()))
        self.notice = _agreement(lm, self.answers)

    def patched(self, layers: range) -> torch.Tensor:
        """The corrupted run whose cache holds the clean K/V at `layers`; last logits (V,)."""
        states = [self.donor[i] if i in layers else own for i, own in enumerate(self.own)]
        _write(self.cache, self.pair.position, states)
        logits = _last_logits(self.lm, self.cache, self.pair.corrupt_ids, self.pair.position)
        _write(self.cache, self.pair.position, self.own)
        return logits

    def difference(self, logits: torch.Tensor) -> float:
        clean_answer, corrupt_answer = self.answers
        return float(logits[clean_answer] - logits[corrupt_answer])

    def restored(self, logits: torch.Tensor) -> float:
        if self.notice:
            return float("nan")
        corrupt = self.difference(self.corrupt)
        return (self.difference(logits) - corrupt) / (self.difference(self.clean) - corrupt)

    def next_tokens(self, logits: torch.Tensor) -> NextTokens:
        top = torch.topk(torch.softmax(logits, dim=-1), k=min(TOP_K, logits.shape[-1]))
        return NextTokens(frozen(top.indices), frozen(top.values), self.difference(logits))


def _check_layers(lm: LoadedModel, layers: range) -> None:
    if layers.step != 1 or (len(layers) and not 0 <= layers.start < layers.stop <= lm.shape.layers):
        raise ValueError(
            f"layers must be a range of consecutive layers within 0..{lm.shape.layers - 1}"
        )


def patch(lm: LoadedModel, pair: PromptPair, layers: range) -> Patching:
    """Clean, corrupted and patched runs of a pair; with `layers` empty, patched is corrupted."""
    _check_layers(lm, layers)
    with lm.lock, torch.inference_mode():
        runs = _Runs(lm, pair)
        patched = runs.patched(layers)
        return Patching(
            pair=pair,
            layers=layers,
            clean_answer=runs.answers[0],
            corrupt_answer=runs.answers[1],
            clean=runs.next_tokens(runs.clean),
            corrupt=runs.next_tokens(runs.corrupt),
            patched=runs.next_tokens(patched),
            restored=runs.restored(patched),
            notice=runs.notice,
        )


def restoration_curve(lm: LoadedModel, pair: PromptPair) -> RestorationCurve:
    """The fraction restored by patching layers a..L−1, for every starting layer a."""
    n_layers = lm.shape.layers
    with lm.lock, torch.inference_mode():
        runs = _Runs(lm, pair)
        restored = np.array(
            [runs.restored(runs.patched(range(a, n_layers))) for a in range(n_layers)]
        )
        notice = runs.notice
    restored.flags.writeable = False
    return RestorationCurve(pair, restored, notice)
