"""One token sequence → an immutable Trace of everything the model computed on it.

The trace is the one forward pass that every page reads: hidden states of every layer, attention
weights of every query head, the K/V rows the model itself stored in its cache, and what the
model would predict after every position. Arrays are numpy and read-only, so one trace can be
shared by every session of the app.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, partial

import numpy as np
import torch
from transformers import DynamicCache, PreTrainedTokenizerFast
from transformers.convert_slow_tokenizer import bytes_to_unicode

from lib.models import LoadedModel

TOP_K = 20


@dataclass(frozen=True)
class EncodedPrompt:
    ids: tuple[int, ...]
    notices: tuple[str, ...]


@dataclass(frozen=True)
class Trace:
    model_id: str
    token_ids: np.ndarray  # (T,)
    tokens: tuple[str, ...]  # display label of each token
    hidden: np.ndarray  # (L+1, T, d): embeddings, then the output of each layer
    attentions: np.ndarray  # (L, H, T, T): query head h of layer l, row = query, column = key
    keys: np.ndarray  # (L, H_kv, T, d_head): the model's own cache after the pass
    values: np.ndarray  # (L, H_kv, T, d_head)
    top_ids: np.ndarray  # (T, k): most likely next tokens after each position
    top_logits: np.ndarray  # (T, k)
    logsumexp: np.ndarray  # (T,): turns any logit into a log-probability
    entropy: np.ndarray  # (T,): of the full next-token distribution, in nats

    @property
    def n_tokens(self) -> int:
        return int(self.token_ids.shape[0])

    @property
    def n_layers(self) -> int:
        return int(self.attentions.shape[0])

    @property
    def top_probs(self) -> np.ndarray:
        return np.exp(self.top_logits - self.logsumexp[:, None])


@cache
def _byte_symbols() -> dict[str, int]:
    return {symbol: byte for byte, symbol in bytes_to_unicode().items()}


def token_label(tokenizer: PreTrainedTokenizerFast, token_id: int) -> str:
    """A readable label for one token: spaces as '·', newlines as '⏎', partial UTF-8 as hex."""
    text = tokenizer.decode([token_id])
    if "\ufffd" in text:
        raw = tokenizer.convert_ids_to_tokens(token_id)
        symbols = _byte_symbols()
        if all(symbol in symbols for symbol in raw):
            text = "".join(f"\\x{symbols[symbol]:02x}" for symbol in raw)
    text = text.replace(" ", "·").replace("\n", "⏎").replace("\t", "⇥")
    return "".join(
        f"\\u{ord(char):04x}" if unicodedata.category(char) in {"Cc", "Cf"} else char
        for char in text
    )


def token_labels(lm: LoadedModel, token_ids: Sequence[int]) -> tuple[str, ...]:
    with lm.tokenizer_lock:
        return tuple(token_label(lm.tokenizer, int(i)) for i in token_ids)


def decode_text(lm: LoadedModel, token_ids: Sequence[int]) -> str:
    with lm.tokenizer_lock:
        return lm.tokenizer.decode(list(token_ids), skip_special_tokens=True)


def encode_prompt(lm: LoadedModel, text: str, max_tokens: int) -> EncodedPrompt:
    """Tokenize a prompt within the token budget; say so when it had to be cut."""
    with lm.tokenizer_lock:
        ids = lm.tokenizer(text, add_special_tokens=False).input_ids
    notices: tuple[str, ...] = ()
    if len(ids) > max_tokens:
        notices = (
            f"The prompt has {len(ids)} tokens; only the first {max_tokens} are used "
            "(the token budget of this app).",
        )
        ids = ids[:max_tokens]
    return EncodedPrompt(ids=tuple(ids), notices=notices)


def _frozen(tensor: torch.Tensor) -> np.ndarray:
    """A read-only numpy copy; floating point values as float32 (numpy has no bfloat16)."""
    tensor = tensor.detach()
    array = (tensor.float() if tensor.is_floating_point() else tensor).numpy()
    array.flags.writeable = False
    return array


ROWS_AT_ONCE = 32  # positions whose full-vocabulary temporaries are alive together (~6 MB each)


def by_rows(summarise: Callable[..., tuple[torch.Tensor, ...]], *logits: torch.Tensor):
    """`summarise` of ROWS_AT_ONCE rows of each (T, V) tensor at a time, its outputs joined
    along the rows: at 256 positions one (T, V) temporary is 50 MB."""
    chunks = zip(*(torch.split(rows, ROWS_AT_ONCE) for rows in logits), strict=True)
    parts = [summarise(*rows) for rows in chunks]
    return tuple(torch.cat(column) for column in zip(*parts, strict=True))


def _next_token_rows(top_k: int, logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Top-k ids and logits, logsumexp and entropy of rows (n, V): (n, k) ×2, (n,) ×2."""
    logits = logits.float()
    log_probs = torch.log_softmax(logits, dim=-1)
    top = torch.topk(logits, k=min(top_k, logits.shape[-1]), dim=-1)
    entropy = -(log_probs.exp() * log_probs).sum(-1)
    return top.indices, top.values, torch.logsumexp(logits, dim=-1), entropy


def run_trace(lm: LoadedModel, token_ids: Sequence[int], top_k: int = TOP_K) -> Trace:
    """One forward pass with attention weights, hidden states and a fresh cache, all kept."""
    if not token_ids:
        raise ValueError("a trace needs at least one token")
    input_ids = torch.tensor([list(token_ids)])
    with lm.lock, torch.inference_mode():
        cache = DynamicCache(config=lm.model.config)
        out = lm.model(
            input_ids=input_ids,
            past_key_values=cache,
            use_cache=True,
            output_attentions=True,
            output_hidden_states=True,
        )
        labels = token_labels(lm, token_ids)
    top_ids, top_logits, logsumexp, entropy = by_rows(
        partial(_next_token_rows, top_k), out.logits[0]
    )
    return Trace(
        model_id=lm.spec.id,
        token_ids=_frozen(input_ids[0]),
        tokens=labels,
        hidden=_frozen(torch.stack(out.hidden_states)[:, 0]),
        attentions=_frozen(torch.stack(out.attentions)[:, 0]),
        keys=_frozen(torch.stack([layer.keys[0] for layer in cache.layers])),
        values=_frozen(torch.stack([layer.values[0] for layer in cache.layers])),
        top_ids=_frozen(top_ids),
        top_logits=_frozen(top_logits),
        logsumexp=_frozen(logsumexp),
        entropy=_frozen(entropy),
    )
