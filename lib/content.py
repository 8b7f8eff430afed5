"""Prose and preset prompts, read from content/texts.toml (data, so workshops can edit it)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CONTENT_FILE = Path(__file__).resolve().parent.parent / "content" / "texts.toml"


@dataclass(frozen=True)
class Preset:
    label: str
    prompt: str


@cache
def texts() -> dict:
    with CONTENT_FILE.open("rb") as handle:
        return tomllib.load(handle)


def presets() -> tuple[Preset, ...]:
    return tuple(Preset(**entry) for entry in texts()["presets"])


def page_text(page: str, key: str) -> str:
    return texts()[page][key].strip()
