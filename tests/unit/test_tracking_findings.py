"""The /tracking page's findings are read off the table it shows: where each model first falls
below the threshold, whether the models that carry a value hold up deeper than the plain
transformers, and whether any transformer beats the short look-back shortcut by more than two
standard errors on the deepest prints."""

from __future__ import annotations

import numpy as np

from lib import tracking
from lib.pages.tracking import depth_findings
from lib.tracking import HeldOutTable

COLUMNS = tuple(tracking.DEPTH_BUCKETS)  # 0, 1–3, 4–7, 8–15, 16–31, 32+
ROWS = ("fb", "t1", "t4", "pad", tracking.RECENT_SHORTCUT)
KINDS = ("feedback", "transformer", "transformer", "scratchpad", "baseline")


def table(t4_deep: float, fb: tuple[float, ...]) -> HeldOutTable:
    accuracy = np.array(
        [
            (1.0, *fb),
            (1.0, 0.80, 0.60, 0.55, 0.50, 0.50),
            (1.0, 0.95, 0.70, 0.62, 0.60, t4_deep),
            (1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
            (1.0, 0.87, 0.61, 0.60, 0.56, 0.55),
        ]
    )
    return HeldOutTable(ROWS, KINDS, COLUMNS, accuracy, (400,) * len(COLUMNS))


def test_breaks_and_the_carriers_verdict_follow_the_numbers():
    text = depth_findings(table(0.60, (0.99, 0.97, 0.95, 0.91, 0.84)))
    assert "**fb** (feedback transformer): 99.0% → 84.0%; first below 90% at depth 32+" in text
    assert "**t4** (transformer): 95.0% → 60.0%; first below 90% at depth 4–7" in text
    assert "**pad** (transformer with a scratchpad): 100.0% → 100.0%; at or above 90%" in text
    assert "the best of those, t4, only to depth 1–3" in text
    assert "None of them beats it" in text  # 60% against 55% at n = 400: within two SE
    assert "t1 scored below that reader (87.0%)" in text and "t4 scored" not in text

    mixed = depth_findings(table(0.60, (0.85, 0.80, 0.80, 0.80, 0.80)))
    assert "do not all hold up longer" in mixed


def test_a_transformer_clearly_ahead_of_the_look_back_is_named():
    text = depth_findings(table(0.75, (0.99, 0.97, 0.95, 0.91, 0.84)))
    assert "t4 beat it by more than two standard errors" in text
