"""The example pairs of /readable: two prompts one token apart, from content/readable.toml.

Each `[pairs.<name>]` table there holds a label and the two prompts; the first is the default
pair of the page (and of the `clean` and `corrupt` URL parameters)."""

from __future__ import annotations

from dataclasses import dataclass

from lib.content import templates

PREFIX = "pairs."


@dataclass(frozen=True)
class PairPreset:
    label: str
    clean: str  # the prompt whose K/V are patched in
    corrupt: str  # the prompt that is run


def pair_presets() -> tuple[PairPreset, ...]:
    """In the file's order; the texts are data, not templates (nothing is filled in)."""
    found: dict[str, dict[str, str]] = {}
    for key, text in templates("readable").items():
        group, _, name = key.rpartition(".")  # "pairs.capital", "label"
        if group.startswith(PREFIX):
            found.setdefault(group, {})[name] = text
    return tuple(PairPreset(**fields) for fields in found.values())
