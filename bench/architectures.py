"""/architectures: the live toy-model checks and the page itself, at the largest grid the page
allows (16 tokens × 8 layers). No transformers baseline exists for either, so these are seconds,
not ratios: the first visit of a grid pays the checks, a click after it pays one page model."""

from __future__ import annotations

from functools import partial

from bench.common import median_seconds, report
from lib.architectures import ARCHITECTURES
from lib.charts.architectures import diagram_chart
from lib.config import PARAMS_BY_NAME, ViewConfig
from lib.pages.architectures import architectures_page
from lib.toy import verify

TOKENS, LAYERS = PARAMS_BY_NAME["tokens"].high, PARAMS_BY_NAME["layers"].high


def run() -> None:
    for name in ARCHITECTURES:
        report(
            f"architectures_verify_{name}_16x8_s",
            median_seconds(partial(verify, name, TOKENS, LAYERS)),
        )
    checks = {name: verify(name, TOKENS, LAYERS) for name in ARCHITECTURES}

    def one_selection(generation: str) -> None:
        """What a click recomputes: the page model and its three diagrams (checks cached)."""
        cfg = ViewConfig(
            tokens=TOKENS,
            layers=LAYERS,
            token=TOKENS // 2,
            layer=LAYERS // 2,
            generation=generation,
        )
        page = architectures_page(cfg, lambda name, tokens, layers: checks[name])
        for panel in page.panels:
            diagram_chart(panel.diagram).to_dict()

    for generation in ("off", "on"):
        report(
            f"architectures_selection_16x8_generation_{generation}_s",
            median_seconds(partial(one_selection, generation)),
        )
