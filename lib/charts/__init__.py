"""Altair charts of every page, and the one reading of their click selections."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def clicked(
    event: Mapping[str, Any] | None,
    name: str,
    fields: Sequence[str],
    bounds: Sequence[int] | None = None,
) -> tuple[int, ...] | None:
    """The integer `fields` of the point last clicked in selection `name`, from what
    st.altair_chart reports (`{"selection": {name: [{field: value, …}]}}`). None when the
    selection was cleared, the event is not one of ours, or a value lies outside 0…bound−1
    (`bounds`, one per field)."""
    try:
        points = (event or {}).get("selection", {}).get(name) or []
        values = tuple(int(points[-1][field]) for field in fields)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return None
    if bounds is not None and not all(0 <= v < b for v, b in zip(values, bounds, strict=True)):
        return None
    return values
