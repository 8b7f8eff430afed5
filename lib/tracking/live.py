"""One program through every shipped model and every shortcut, for the page: what each says at
every print, what the scratchpad model wrote, and what the feedback model read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lib.tracking.models import ScratchpadTransformer, TrackingFeedback, Writing, said_at_prints
from lib.tracking.records import Shipped
from lib.tracking.scoring import BASELINES
from lib.tracking.task import Program


@dataclass(frozen=True, eq=False)
class LiveRun:
    """`said`: per model, then per shortcut, the value at each print of `program`. `writings`:
    per scratchpad model, the values it wrote after every statement. `reads`: per feedback
    model, its layer-0 attention over past memories (T, T), see `FeedbackRun`."""

    program: Program
    said: dict[str, tuple[int, ...]]
    writings: dict[str, Writing]
    reads: dict[str, np.ndarray]

    def right(self, name: str) -> int:
        """Prints `name` answered right."""
        return sum(s == p for s, p in zip(self.said[name], self.program.printed, strict=True))


def live_run(models: Mapping[str, Shipped], program: Program) -> LiveRun:
    """Every model once over `program`: the feedback models by their stepping scan (their
    answers and reads from one pass), the scratchpad models writing their own values, the
    transformers in one full pass."""
    said, writings, reads = {}, {}, {}
    for name, shipped in models.items():
        model = shipped.model
        if isinstance(model, ScratchpadTransformer):
            (writings[name],) = model.write([program])
            said[name] = writings[name].said
        elif isinstance(model, TrackingFeedback):
            run = model.run(program)
            reads[name] = run.reads
            (said[name],) = said_at_prints(run.logits[None], [program])
        else:
            (said[name],) = model.answers([program])
    said |= {name: shortcut(program) for name, shortcut in BASELINES.items()}
    return LiveRun(program, said, writings, reads)
