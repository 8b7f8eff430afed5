"""Tiny runnable torch models of the three architectures, and the live check the page runs.

`verify` builds one seeded model and checks two things: generating token by token with the
model's own state gives the same cells as the full pass, and autograd finds each cell computed
from exactly the cells `lib.architectures` says it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lib.architectures import Cell, ancestor_masks, make_rule
from lib.toy.common import ToyModel, gradient_masks, single_thread
from lib.toy.feedback import ToyFeedbackTransformer
from lib.toy.rnn import ToyRNN
from lib.toy.transformer import ToyTransformer

MODELS: dict[str, type[ToyModel]] = {
    model.name: model for model in (ToyTransformer, ToyRNN, ToyFeedbackTransformer)
}
STEP_TOLERANCE = 1e-10  # float64; observed differences are ~1e-15


@dataclass(frozen=True, eq=False)
class VerificationResult:
    """What `verify` found. The masks are (T, L+1, T, L+1) booleans, `[t, l, i, k]` True when cell
    (t, l) depends on cell (i, k): `grad_mask` as measured by autograd, `rule_mask` as the rule
    says. `mismatched_cells` lists the ((t, l), (i, k)) pairs where they disagree."""

    arch_name: str
    tokens: int
    layers: int
    seed: int
    step_equals_full: bool
    max_abs_diff: float
    autograd_matches_rule: bool
    mismatched_cells: tuple[tuple[Cell, Cell], ...]
    grad_mask: np.ndarray
    rule_mask: np.ndarray

    @property
    def passed(self) -> bool:
        return self.step_equals_full and self.autograd_matches_rule


def build_model(arch_name: str, layers: int, seed: int = 0) -> ToyModel:
    """The seeded toy model of `arch_name` ("transformer", "rnn" or "feedback")."""
    if arch_name not in MODELS:
        raise ValueError(f"unknown architecture {arch_name!r}; known: {sorted(MODELS)}")
    return MODELS[arch_name](layers, seed=seed)


def random_tokens(model: ToyModel, tokens: int, seed: int) -> torch.Tensor:
    """`tokens` token ids (T,) drawn from the model's vocabulary with their own seed."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(model.vocab, (tokens,), generator=generator)


def mismatches(grad_mask: np.ndarray, rule_mask: np.ndarray) -> tuple[tuple[Cell, Cell], ...]:
    """The ((t, l), (i, k)) pairs where two (T, L+1, T, L+1) dependency masks disagree."""
    return tuple(
        ((int(t), int(layer)), (int(i), int(k)))
        for t, layer, i, k in np.argwhere(grad_mask != rule_mask)
    )


@single_thread()
def verify(arch_name: str, tokens: int, layers: int, seed: int = 0) -> VerificationResult:
    """Build the seeded `arch_name` model, feed it `tokens` random tokens, and check step ≡ full
    and the autograd dependency pattern against the rule of the same name."""
    model = build_model(arch_name, layers, seed)
    ids = random_tokens(model, tokens, seed)
    with torch.no_grad():
        stepped, _ = model.run_steps(ids)  # (T, L+1, d)
        full = model.full(ids)  # (T, L+1, d)
    grad_mask = gradient_masks(model, ids)
    max_abs_diff = (stepped - full).abs().max().item()
    rule_mask = ancestor_masks(make_rule(arch_name, layers), tokens)
    wrong = mismatches(grad_mask, rule_mask)
    grad_mask.flags.writeable = rule_mask.flags.writeable = False  # the result is frozen
    return VerificationResult(
        arch_name=arch_name,
        tokens=tokens,
        layers=layers,
        seed=seed,
        step_equals_full=max_abs_diff <= STEP_TOLERANCE,
        max_abs_diff=max_abs_diff,
        autograd_matches_rule=not wrong,
        mismatched_cells=wrong,
        grad_mask=grad_mask,
        rule_mask=rule_mask,
    )
