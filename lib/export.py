"""Figures and data of a view as files: PNG and SVG rendered on the server, JSON and CSV.

Every file is named after the view and the JSON carries the configuration and the model id,
so a figure on a slide can be traced back to the link that reproduces it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import vl_convert

from lib.config import ViewConfig, to_query


def view_name(page: str, *parts: tuple[str, Any]) -> str:
    """`flow-token5-layer12`: the page, then the settings that pick out this view."""
    words = [page] + [f"{key}{value}" for key, value in parts]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(words)).strip("-")


STATIC_WIDTH = 640


def _static_spec(chart: alt.TopLevelMixin) -> dict:
    """The chart's spec with a fixed width: off the page there is no column to stretch to."""

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: STATIC_WIDTH if key == "width" and value == "container" else fix(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [fix(item) for item in node]
        return node

    spec = fix(chart.to_dict())
    composed = {"hconcat", "vconcat", "concat", "facet", "repeat"} & spec.keys()
    if not composed and "width" not in spec:  # drawn at the column's width on the page
        spec["width"] = STATIC_WIDTH
    return spec


def chart_png(chart: alt.TopLevelMixin, scale: float = 2.0) -> bytes:
    return vl_convert.vegalite_to_png(_static_spec(chart), scale=scale)


def chart_svg(chart: alt.TopLevelMixin) -> str:
    return vl_convert.vegalite_to_svg(_static_spec(chart))


def _plain(value: Any) -> Any:
    """JSON-ready values: numpy and pandas objects become lists, numbers and records."""
    if isinstance(value, pd.DataFrame):
        return json.loads(value.to_json(orient="records"))
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def view_json(page: str, cfg: ViewConfig, data: Mapping[str, Any]) -> str:
    """The page's data with the configuration that produced it and the link parameters."""
    document = {
        "page": page,
        "model": cfg.model,
        "config": dataclasses.asdict(cfg),
        "query": to_query(cfg),
        "data": _plain(data),
    }
    return json.dumps(document, ensure_ascii=False, indent=1)


def table_csv(table: pd.DataFrame) -> str:
    return table.to_csv(index=False)
