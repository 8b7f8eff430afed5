"""One small interface for every model that can run a whole sequence at once or one token at a
time: the tiny torch models of /architectures and the trained models of /tracking.

The point of the app is that the two paths agree (the state a model carries is an optimisation
of the full pass, or, for a feedback model, the only way to compute it) and that the graph of
who feeds whom is what the model really computes. Both checks are written once, here, against
this protocol, instead of once per family of models.

A cell `(token, layer)` is the state of token `token` after layer `layer`; layer 0 is the token's
embedding, the same convention as `lib.trace.Trace.hidden` and every grid the app draws.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, TypeVar

import torch
from torch import Tensor

State = TypeVar("State")


class Cell(NamedTuple):
    """One (token, layer) state on the grid; a tuple, so `(3, 1)` is a cell too."""

    token: int
    layer: int


class SteppingModel(Protocol[State]):
    """A model with a full pass over a sequence and a step that carries a state.

    `full(tokens)` returns one output per token, stacked on the first axis; `step` returns the
    same output for one token, given the state the earlier steps left, and the new state.
    `parents(cell)` is the model's dependency rule: the cells whose values `cell` reads.
    """

    layers: int

    def initial_state(self) -> State: ...

    def step(self, token: int, state: State) -> tuple[Tensor, State]: ...

    def full(self, tokens: Tensor) -> Tensor: ...

    def parents(self, cell: Cell) -> tuple[Cell, ...]: ...


def run_steps(model: SteppingModel[State], tokens: Tensor) -> tuple[Tensor, State]:
    """The generation path over `tokens` (T,): outputs stacked like `full`, and the last state."""
    state = model.initial_state()
    outputs = []
    for token in tokens.tolist():
        output, state = model.step(int(token), state)
        outputs.append(output)
    return torch.stack(outputs), state


def step_full_difference(model: SteppingModel, tokens: Tensor) -> float:
    """Largest |step − full| over every output: ~0 when carrying a state changes nothing."""
    with torch.no_grad():
        stepped, _ = run_steps(model, tokens)
        full = model.full(tokens)
    return float((stepped.double() - full.double()).abs().max())
