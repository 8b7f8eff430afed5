"""Timing helpers shared by every benchmark module."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(work: Callable[[], object], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def paired_ratio(
    ours: Callable[[], object], theirs: Callable[[], object], repeats: int = 8
) -> float:
    """Median of ours ÷ median of theirs, the two run alternately so drift hits both alike."""
    ours_times, their_times = [], []
    for _ in range(repeats):
        ours_times.append(median_seconds(ours, repeats=1))
        their_times.append(median_seconds(theirs, repeats=1))
    return statistics.median(ours_times) / statistics.median(their_times)


def report(name: str, value: float) -> None:
    print(f"{name}: {value:.3f}", flush=True)
