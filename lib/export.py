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

from lib.config import PARAMS, ViewConfig, to_query
from lib.site import PageInfo


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
    """JSON-ready values: numpy and pandas objects become lists, numbers and records; a
    dataclass becomes its fields, but those marked `field(metadata={"export": False})`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: _plain(getattr(value, field.name))
            for field in dataclasses.fields(value)
            if field.metadata.get("export", True)
        }
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, pd.DataFrame):
        return json.loads(value.to_json(orient="records"))
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if hasattr(value, "_asdict"):  # a NamedTuple (a Cell): its fields by name
        return _plain(value._asdict())
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def view_json(page: PageInfo, cfg: ViewConfig, data: Any) -> str:
    """The page model as data, with the configuration that produced it and its link."""
    document = {
        "page": page.name,
        "model": cfg.model,
        "config": {param: value for param, value in _config_fields(cfg) if param in page.params},
        "query": to_query(cfg, page),
        "data": _plain(data),
    }
    return json.dumps(document, ensure_ascii=False, indent=1)


def _config_fields(cfg: ViewConfig) -> list[tuple[str, Any]]:
    """(URL name, value) of every setting: `from`, as in the link, not `from_`."""
    return [(param.name, getattr(cfg, param.attr)) for param in PARAMS]


def table_csv(table: pd.DataFrame) -> str:
    return table.to_csv(index=False)
