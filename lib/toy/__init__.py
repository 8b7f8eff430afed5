"""Tiny runnable torch models of the three architectures, and the live check the page runs.

`verify` builds one seeded model and checks three things: generating token by token with the
model's own state gives the same cells as the full pass over the same text
(`lib.stepping.step_full_difference`); autograd finds each cell of that full pass computed from
exactly the cells the model's `parents` rule names; and, generating with soft tokens (each next
input the embedding mixed by the softmax of a readout of the previous top cell), autograd finds
exactly the same rule with the sampled-token edge (t-1, L) → (t, 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from lib.architectures import ancestor_masks
from lib.stepping import Cell, step_full_difference
from lib.store import ResultStore
from lib.toy.common import ToyModel, generation_masks, gradient_masks, single_thread
from lib.toy.feedback import ToyFeedbackTransformer
from lib.toy.rnn import ToyRNN
from lib.toy.transformer import ToyTransformer

MODELS: dict[str, type[ToyModel]] = {
    model.name: model for model in (ToyTransformer, ToyRNN, ToyFeedbackTransformer)
}
STEP_TOLERANCE = 1e-10  # float64; observed differences are ~1e-15
MASKS = {"export": False}  # (T, L+1, T, L+1) booleans: up to 10⁵ of them


@dataclass(frozen=True, eq=False)
class DependencyCheck:
    """Autograd's dependency pattern against a rule's. Masks are (T, L+1, T, L+1) booleans,
    `[t, l, i, k]` True when cell (t, l) depends on cell (i, k); `mismatched_cells` lists the
    ((t, l), (i, k)) pairs where the two disagree."""

    grad_mask: np.ndarray = field(metadata=MASKS)
    rule_mask: np.ndarray = field(metadata=MASKS)
    mismatched_cells: tuple[tuple[Cell, Cell], ...]
    pairs: int  # cell pairs compared

    @property
    def matches(self) -> bool:
        return not self.mismatched_cells


@dataclass(frozen=True, eq=False)
class VerificationResult:
    """What `verify` found on one toy model: step ≡ full over a fixed text (`max_abs_diff`), and
    the dependency patterns over that text (`reading`) and while generating (`generating`)."""

    arch_name: str
    tokens: int
    layers: int
    seed: int
    max_abs_diff: float
    step_equals_full: bool
    reading: DependencyCheck
    generating: DependencyCheck

    @property
    def passed(self) -> bool:
        return self.step_equals_full and self.reading.matches and self.generating.matches


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
        (Cell(int(t), int(layer)), Cell(int(i), int(k)))
        for t, layer, i, k in np.argwhere(grad_mask != rule_mask)
    )


def dependency_check(grad_mask: np.ndarray, rule_mask: np.ndarray) -> DependencyCheck:
    grad_mask.flags.writeable = rule_mask.flags.writeable = False  # the result is frozen
    return DependencyCheck(
        grad_mask, rule_mask, mismatches(grad_mask, rule_mask), int(grad_mask.size)
    )


@single_thread()
def verify(arch_name: str, tokens: int, layers: int, seed: int = 0) -> VerificationResult:
    """Build the seeded `arch_name` model, feed it `tokens` random tokens, and check step ≡ full
    and the autograd dependency patterns against the model's own rule, over the text and while
    generating."""
    model = build_model(arch_name, layers, seed)
    ids = random_tokens(model, tokens, seed)
    difference = step_full_difference(model, ids)
    reading = dependency_check(gradient_masks(model, ids), ancestor_masks(model, tokens))
    generating = dependency_check(
        generation_masks(model, int(ids[0]), tokens),
        ancestor_masks(model.rule.generating(), tokens),
    )
    return VerificationResult(
        arch_name=arch_name,
        tokens=tokens,
        layers=layers,
        seed=seed,
        max_abs_diff=difference,
        step_equals_full=difference <= STEP_TOLERANCE,
        reading=reading,
        generating=generating,
    )


def checked(store: ResultStore, arch_name: str, tokens: int, layers: int) -> VerificationResult:
    """`verify`, once per grid for every session and server process that shares `store`."""
    return store.compute(
        ("verification", arch_name, tokens, layers), lambda: verify(arch_name, tokens, layers)
    )
