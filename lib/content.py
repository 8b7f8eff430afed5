"""Prose, preset prompts and the tour, read from content/ (data, so a workshop can edit them).

Each page's text lives in `content/<page>.toml` as templates whose `{placeholders}` the page
model fills with the numbers of the run (`fill`); a template may use a format spec
(`{seconds:.2f}`). A placeholder the page cannot fill is an error that names the template, and
`FILLED` remembers which templates were used, so a test can find one that no page uses.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CONTENT = Path(__file__).resolve().parent.parent / "content"
TOUR_FILE = CONTENT / "tour.toml"
PRESETS_FILE = CONTENT / "presets.toml"
FILLED: set[tuple[str, str]] = set()  # (page, template key) filled in this process


@dataclass(frozen=True)
class Preset:
    label: str
    prompt: str


@dataclass(frozen=True)
class TourStep:
    claim: str
    side: str  # one of the sides in content/tour.toml's [sides] table
    look: str
    page: str  # URL path of the page ("" for home)
    params: dict[str, str]


@cache
def _toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def tour() -> tuple[TourStep, ...]:
    return tuple(
        TourStep(**{**step, "params": {k: str(v) for k, v in step["params"].items()}})
        for step in _toml(TOUR_FILE)["steps"]
    )


def tour_sides() -> dict[str, str]:
    """The sides a tour step can take, each with what it means."""
    return dict(_toml(TOUR_FILE)["sides"])


def presets() -> tuple[Preset, ...]:
    return tuple(Preset(**entry) for entry in _toml(PRESETS_FILE)["presets"])


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat = {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = str(value).strip()
    return flat


def templates(page: str) -> dict[str, str]:
    """Every template of a page, by dotted key (`verdict.same`)."""
    return _flatten(_toml(CONTENT / f"{page}.toml"))


def placeholders(template: str) -> set[str]:
    """The names a template asks for (`{seconds:.2f}` asks for `seconds`)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def fill(page: str, key: str, **values: Any) -> str:
    """The template `key` of `page` with its placeholders filled from `values`."""
    template = templates(page)[key]
    missing = placeholders(template) - values.keys()
    if missing:
        raise KeyError(f"content/{page}.toml [{key}] asks for {sorted(missing)}, not given")
    FILLED.add((page, key))
    return template.format_map(values)


def decoding(seed: int | None) -> str:
    """`greedy decoding` or `sampling with seed 7`."""
    return (
        fill("common", "decoding.greedy")
        if seed is None
        else (fill("common", "decoding.seeded", seed=seed))
    )
