"""Prose and preset prompts, read from content/texts.toml (data, so workshops can edit it)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CONTENT = Path(__file__).resolve().parent.parent / "content"
CONTENT_FILE = CONTENT / "texts.toml"
TOUR_FILE = CONTENT / "tour.toml"


@dataclass(frozen=True)
class Preset:
    label: str
    prompt: str


@dataclass(frozen=True)
class TourStep:
    claim: str
    side: str
    look: str
    page: str  # URL path of the page ("" for home)
    params: dict[str, str]


@cache
def tour() -> tuple[TourStep, ...]:
    with TOUR_FILE.open("rb") as handle:
        steps = tomllib.load(handle)["steps"]
    return tuple(
        TourStep(**{**step, "params": {k: str(v) for k, v in step["params"].items()}})
        for step in steps
    )


@cache
def texts() -> dict:
    with CONTENT_FILE.open("rb") as handle:
        return tomllib.load(handle)


def presets() -> tuple[Preset, ...]:
    return tuple(Preset(**entry) for entry in texts()["presets"])


def page_file(url_path: str) -> str:
    """The script of the page served at `/url_path` (the home page lives at `/`)."""
    return f"views/{url_path or 'home'}.py"


def page_text(page: str, key: str) -> str:
    return texts()[page][key].strip()
