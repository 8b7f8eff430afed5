"""/architectures figures: the live toy-model check and the diagram data of one selection, both at
the largest grid the page allows (16 tokens × 8 layers). No transformers baseline exists for
either, so these are seconds, not ratios."""

from __future__ import annotations

from functools import partial

from bench.common import median_seconds, report
from lib.architectures import ARCHITECTURES, make_rule, step_numbers
from lib.charts.architectures import diagram_chart, diagram_data
from lib.config import PARAMS_BY_NAME
from lib.toy import verify

TOKENS, LAYERS = PARAMS_BY_NAME["tokens"].high, PARAMS_BY_NAME["layers"].high


def run() -> None:
    for name in ARCHITECTURES:
        report(
            f"architectures_verify_{name}_16x8_s",
            median_seconds(partial(verify, name, TOKENS, LAYERS)),
        )

    def one_selection() -> None:
        """What a click recomputes: three diagrams and their numbers (the checks are cached)."""
        for name in ARCHITECTURES:
            rule = make_rule(name, LAYERS)
            diagram_chart(diagram_data(rule, (TOKENS // 2, LAYERS // 2), TOKENS)).to_dict()
            step_numbers(rule, TOKENS // 2, TOKENS, 64)

    report("architectures_selection_16x8_s", median_seconds(one_selection))
