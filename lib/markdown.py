"""Markdown built from text that users and the model wrote: escaped, never rendered as HTML.

Pure string functions: page models (lib/pages) build their sentences with them, views draw them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")


def escape_markdown(text: str) -> str:
    """Backslash-escape every character Markdown (or Streamlit's LaTeX `$`) would interpret."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("\n", "  \n")


def token_chips(labels: Sequence[str]) -> str:
    """Tokens as a row of code spans; a label's own backticks cannot close the span."""
    return " ".join(f"`{label.replace('`', 'ˋ')}`" for label in labels)


NEWLINE = "⏎"  # a line break the model wrote, shown as a mark so it reads as generated


def _bold(text: str) -> str:
    """Bold that Markdown accepts: it may neither open on a space nor span a line break. Each
    line break the model wrote is shown as a bold ⏎ before the break, so a generated line that
    repeats the prompt cannot be mistaken for the prompt."""
    pieces = []
    lines = text.split("\n")
    for index, line in enumerate(lines):
        mark = NEWLINE if index < len(lines) - 1 else ""
        lead = line[: len(line) - len(line.lstrip())]
        body = escape_markdown(line.strip()) + mark
        pieces.append(f"{lead}**{body}**" if body else "")
    return "  \n".join(pieces)


def continuation(prompt: str, generated: str, done: bool) -> str:
    """The prompt, then the generated text in bold (with a cursor while it is still coming)."""
    cursor = "" if done else " ▌"
    return f"{escape_markdown(prompt)}{_bold(generated)}{cursor}"


def human_bytes(count: float) -> str:
    if abs(count) < 1024:
        return f"{count:.0f} B"
    for unit in ("KB", "MB", "GB"):
        count /= 1024
        if abs(count) < 1024 or unit == "GB":
            break
    return f"{count:.1f} {unit}"
