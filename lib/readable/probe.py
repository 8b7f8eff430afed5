"""How much of a token's wide MLP state survives into what later tokens can read of it.

Of token i at layer ℓ, a later token reads nothing directly: the MLP of layer ℓ writes its output
into token i's residual stream, and at layer ℓ+1 a later token reads, through attention, only
that layer's keys and values of token i — two projections (2 × kv_heads × head_dim wide) of its
input-normed residual. The MLP's hidden activation (act(gate) · up, the input of `down_proj`, far
wider) is never cached. So we ask, per layer ℓ, how much of that hidden activation a linear map
can recover from:

- **readable**: token i's K (before RoPE) and V at layer ℓ+1, what a later token reads of it;
- **ceiling**: token i's residual after layer ℓ through layer ℓ+1's input norm, what K and V are
  linear in, so no map from K and V can beat a map from it (up to fitting noise);
- **floor**: the readable probe on (predictor, target) pairs shuffled within each block.

Keys are probed before RoPE: the cache holds them rotated by an angle that depends on the
position, and no single linear map undoes a rotation that differs from token to token; the
rotation is invertible, so the pre-RoPE key holds exactly what the cached one does.

The corpus is a batch of independent chunks (`lib.readable.corpus`, CHUNK_TOKENS each), prefilled
in one pass with hooks that hand each layer's states over as soon as the next layer has read
them: the fits of layer ℓ run while the forward waits, so only one layer's states are held at a
time, and attention holds a chunk length squared per chunk and head, however long the corpus.

Position 0 of every chunk is left out (of the fits and of the reader's prompt): the first token
is where attention rests when it has nowhere better to go, and its MLP activations are unlike any
other position's — much larger at some layers, much smaller at others — so a few such points
would weigh on every fit.

Chunks, not tokens, are split into fit, validation and held-out blocks, so held-out tokens come
from texts the probe never saw; the corpus holds out the chunks that begin with the app's preset
prompts, so a reader who keeps a preset sees it scored as unseen text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from transformers import DynamicCache

from lib.models import LoadedModel, Progress
from lib.readable.corpus import Corpus
from lib.readable.ridge import Readout, RidgeProbe, fit_ridges, moments

FIRST_POSITION = 1  # position 0, the attention sink, is not probed
VALIDATION = 0.2  # of the chunks that are not held out: they choose the ridge penalty
SPLIT_SEED = 0
PROBES = ("readable", "ceiling", "floor")


@dataclass(frozen=True)
class Widths:
    """Per token and layer, from the model's config."""

    residual: int  # the residual stream, hidden_size
    mlp_hidden: int  # the MLP's hidden activation, intermediate_size
    key: int  # the cached key: kv_heads × head_dim
    value: int  # the cached value: kv_heads × head_dim

    @property
    def readable(self) -> int:
        """What a later token can read of an earlier one at one layer: its K and V."""
        return self.key + self.value


def widths(lm: LoadedModel) -> Widths:
    config = lm.model.config
    kv = config.num_key_value_heads * config.head_dim
    return Widths(config.hidden_size, config.intermediate_size, kv, kv)


@dataclass(frozen=True)
class TokenStates:
    """What the probes of layer ℓ read, for every token of a batch: (B, T, width) each."""

    layer: int  # ℓ, from 0 to L − 2
    mlp_hidden: torch.Tensor  # (B, T, F): input of layer ℓ's down_proj
    normed: torch.Tensor  # (B, T, d): layer ℓ+1's input-normed residual
    keys: torch.Tensor  # (B, T, H_kv · hd): layer ℓ+1's keys before RoPE
    values: torch.Tensor  # (B, T, H_kv · hd): layer ℓ+1's values

    @property
    def readable(self) -> torch.Tensor:  # (B, T, 2 · H_kv · hd)
        return torch.cat([self.keys, self.values], dim=-1)


@contextmanager
def handing_over(model: torch.nn.Module, on_layer: Callable[[TokenStates], None]) -> Iterator[None]:
    """Inside the block, each forward pass calls `on_layer` once per layer ℓ < L − 1, as soon as
    layer ℓ+1 has computed its values; the forward waits while `on_layer` runs.

    The hooks live only inside the block (removed in `finally`): the model is shared by every
    session, and a hook left attached would run on someone else's forward pass.
    """
    layers = model.model.layers
    pending: dict[int, dict[str, torch.Tensor]] = {}

    def keep_mlp_hidden(layer: int):
        def hook(module, args):
            pending[layer] = {"mlp_hidden": args[0]}

        return hook

    def keep_keys(layer: int):
        def hook(module, args, output):
            pending[layer] |= {"normed": args[0], "keys": output}

        return hook

    def hand_over(layer: int):
        def hook(module, args, output):
            on_layer(TokenStates(layer, values=output, **pending.pop(layer)))

        return hook

    handles = []
    try:
        for layer, (block, above) in enumerate(zip(layers[:-1], layers[1:], strict=True)):
            handles += [
                block.mlp.down_proj.register_forward_pre_hook(keep_mlp_hidden(layer)),
                above.self_attn.k_proj.register_forward_hook(keep_keys(layer)),
                above.self_attn.v_proj.register_forward_hook(hand_over(layer)),
            ]
        yield
    finally:
        for handle in handles:
            handle.remove()
        pending.clear()


def run_states(
    lm: LoadedModel, token_ids: np.ndarray, on_layer: Callable[[TokenStates], None]
) -> None:
    """Prefill a batch of equal-length sequences (B, T), handing each layer's states over.

    The decoder alone runs (no vocabulary projection: B × T rows of 49k logits are not needed)."""
    with lm.lock, torch.inference_mode(), handing_over(lm.model, on_layer):
        lm.model.model(input_ids=torch.tensor(token_ids), use_cache=False)


def measured_widths(lm: LoadedModel) -> Widths:
    """The widths read off real tensors of a two-token pass: the residual, the hooked MLP
    activation, and the K and V the model stored in its cache."""
    seen: dict[str, int] = {}

    def record(states: TokenStates) -> None:
        seen.setdefault("mlp_hidden", states.mlp_hidden.shape[-1])

    cache = DynamicCache(config=lm.model.config)
    with lm.lock, torch.inference_mode(), handing_over(lm.model, record):
        out = lm.model.model(input_ids=torch.tensor([[0, 1]]), past_key_values=cache)
    keys, values = cache.layers[0].keys, cache.layers[0].values  # (1, H_kv, 2, hd)
    return Widths(
        residual=out.last_hidden_state.shape[-1],
        mlp_hidden=seen["mlp_hidden"],
        key=keys.shape[1] * keys.shape[3],
        value=values.shape[1] * values.shape[3],
    )


@dataclass(frozen=True)
class Blocks:
    """Which chunks fit the probes, choose their penalty, and score them."""

    fit: np.ndarray  # (B_fit,) chunk indices
    val: np.ndarray  # (B_val,)
    test: np.ndarray  # (B_test,)


def split_chunks(n_chunks: int, held_out: Sequence[int], seed: int = SPLIT_SEED) -> Blocks:
    """Held-out chunks score; a seeded VALIDATION share of the rest chooses α; the others fit."""
    test = np.unique(np.asarray(held_out, dtype=np.int64))
    rest = np.setdiff1d(np.arange(n_chunks), test)
    if len(test) == 0 or len(rest) < 2 or test.min() < 0 or test.max() >= n_chunks:
        raise ValueError(f"need held-out chunks among {n_chunks} and at least 2 others")
    order = np.random.default_rng(seed).permutation(rest)
    n_val = max(1, round(VALIDATION * len(rest)))
    return Blocks(fit=np.sort(order[n_val:]), val=np.sort(order[:n_val]), test=test)


@dataclass(frozen=True)
class ProbeFit:
    """The three probes of every layer, fitted on a corpus; arrays are (L,) over layers ℓ."""

    model_id: str
    widths: Widths
    chunk_tokens: int  # each chunk is its own sequence; probed positions are 1..chunk_tokens−1
    tokens: tuple[int, int, int]  # probed tokens that fit, chose the penalty, scored
    r2: np.ndarray  # (3, L): held-out R² of PROBES per layer; NaN at the top layer
    alpha: np.ndarray  # (3, L): the ridge penalty α each probe chose
    missing: tuple[tuple[int, str], ...]  # (layer, why it has no probe)
    readouts: tuple[Readout, ...]  # the readable probe of layers 0..L−2, for other prompts
    seconds: float  # prefill and fits, wall time

    def scores(self, probe: str) -> np.ndarray:  # (L,)
        return self.r2[PROBES.index(probe)]

    def table(self) -> pd.DataFrame:
        """One row per layer: the three held-out R² and the chosen penalties."""
        columns = {"layer": np.arange(self.r2.shape[1])}
        columns |= {f"R² {probe}": self.r2[index] for index, probe in enumerate(PROBES)}
        columns |= {f"α {probe}": self.alpha[index] for index, probe in enumerate(PROBES)}
        return pd.DataFrame(columns)


def _rows(states: torch.Tensor, chunks: np.ndarray) -> torch.Tensor:
    """The probed tokens of some chunks, one row each: (B, T, w) → (n, w)."""
    return states[torch.as_tensor(chunks), FIRST_POSITION:].reshape(-1, states.shape[-1])


def _probe_layer(
    states: TokenStates, blocks: Blocks, generator: torch.Generator
) -> tuple[RidgeProbe, RidgeProbe, RidgeProbe]:
    """The readable, ceiling and floor probes of one layer.

    The floor's shuffled targets ride along as extra columns of the readable probe's targets:
    one predictor, so one Gram matrix and one eigendecomposition for both."""
    readable, ceiling = [], []
    for block in (blocks.fit, blocks.val, blocks.test):
        kv, normed, y = (
            _rows(s, block) for s in (states.readable, states.normed, states.mlp_hidden)
        )
        shuffled = y[torch.randperm(len(y), generator=generator)]  # (n, F)
        readable.append(moments(kv, torch.cat([y, shuffled], dim=1)))  # targets (n, 2F)
        ceiling.append(moments(normed, y))
    width = states.mlp_hidden.shape[-1]
    kv_probe, floor = fit_ridges(*readable, groups=(slice(0, width), slice(width, 2 * width)))
    (ceiling_probe,) = fit_ridges(*ceiling)
    return kv_probe, ceiling_probe, floor


def fit_probes(lm: LoadedModel, corpus: Corpus, progress: Progress | None = None) -> ProbeFit:
    """Prefill the corpus chunks (B, C) once and fit the three probes of every layer ℓ < L − 1.

    Holds the model's lock for the whole run, prefill and fits (the page's budget for both:
    a minute on two cores); `progress` hears of every layer done.
    """
    start = time.perf_counter()
    n_layers = lm.shape.layers
    chunks = corpus.chunks  # (B, C)
    blocks = split_chunks(chunks.shape[0], corpus.held_out)
    generator = torch.Generator().manual_seed(SPLIT_SEED)
    report = progress or (lambda fraction, message: None)
    r2, alpha = np.full((3, n_layers), np.nan), np.full((3, n_layers), np.nan)
    readouts = []

    def fit_layer(states: TokenStates) -> None:
        """Keep the scores and the readable probe's readout; drop the float64 weights."""
        probes = _probe_layer(states, blocks, generator)
        r2[:, states.layer] = [probe.r2 for probe in probes]
        alpha[:, states.layer] = [probe.alpha for probe in probes]
        readouts.append(probes[0].readout())
        report(len(readouts) / (n_layers - 1), f"Probes of layer {states.layer} fitted")

    run_states(lm, chunks, fit_layer)
    r2.flags.writeable = alpha.flags.writeable = False
    probed = chunks.shape[1] - FIRST_POSITION
    return ProbeFit(
        model_id=lm.spec.id,
        widths=widths(lm),
        chunk_tokens=chunks.shape[1],
        tokens=tuple(probed * len(block) for block in (blocks.fit, blocks.val, blocks.test)),
        r2=r2,
        alpha=alpha,
        missing=(
            (
                n_layers - 1,
                "the top layer's output goes to the final norm and the next-token logits; no "
                "later layer reads it, so nothing of it is cached for later tokens",
            ),
        ),
        readouts=tuple(readouts),
        seconds=time.perf_counter() - start,
    )


@dataclass(frozen=True)
class PromptReadability:
    """The readable probe, fitted on the corpus, applied to the tokens of one prompt."""

    token_ids: np.ndarray  # (T,)
    errors: np.ndarray  # (L, T): ‖y − ŷ‖² ÷ held-out variance; NaN at position 0 and the top layer

    @property
    def scores(self) -> np.ndarray:
        """(L,): 1 − mean relative error over positions 1.., on the scale of the held-out R²."""
        return 1 - self.errors[:, FIRST_POSITION:].mean(axis=1)


def prompt_readability(
    lm: LoadedModel, fit: ProbeFit, token_ids: Sequence[int]
) -> PromptReadability:
    """One pass over the prompt; every layer's readable probe predicts its MLP activations."""
    if fit.model_id != lm.spec.id:
        raise ValueError(f"the probes were fitted on {fit.model_id}, not {lm.spec.id}")
    if len(token_ids) <= FIRST_POSITION:
        raise ValueError("the prompt needs at least two tokens: position 0 is not probed")
    errors = np.full((lm.shape.layers, len(token_ids)), np.nan)

    def score(states: TokenStates) -> None:
        readout = fit.readouts[states.layer]
        x = states.readable[0, FIRST_POSITION:].float().numpy()  # (T − 1, 2 · H_kv · hd)
        y = states.mlp_hidden[0, FIRST_POSITION:].float().numpy()  # (T − 1, F)
        errors[states.layer, FIRST_POSITION:] = readout.relative_errors(x, y)

    ids = np.array([list(token_ids)])  # (1, T)
    run_states(lm, ids, score)
    ids.flags.writeable = errors.flags.writeable = False
    return PromptReadability(ids[0], errors)
