"""Share and export: the link that reopens this view, and every figure and table as a file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import altair as alt
import pandas as pd
import streamlit as st

from lib import export
from lib.config import ViewConfig, to_query
from lib.ui import state


def share_link(cfg: ViewConfig) -> str:
    """This page's address with every non-default setting: the shortest link to this view."""
    query = urlencode(to_query(cfg))
    base = st.context.url or ""
    return f"{base}?{query}" if query else base


def share_box() -> None:
    """The sidebar's "Share this view": the full URL, ready to copy."""
    with st.sidebar:
        st.markdown("**Share this view**")
        st.code(share_link(state.current().config), language=None, wrap_lines=True)


FIGURE_FORMATS = (
    ("PNG", export.chart_png, "image/png"),
    ("SVG", export.chart_svg, "image/svg+xml"),
)


def chart_downloads(chart: alt.TopLevelMixin, name: str) -> None:
    """A small "Export figure" menu under a chart: files rendered on the server when clicked."""
    with st.popover("Export figure", icon=":material/download:"):
        for label, render, mime in FIGURE_FORMATS:
            st.download_button(
                label,
                data=lambda render=render: render(chart),
                file_name=f"{name}.{label.lower()}",
                mime=mime,
                key=f"{name}-{label.lower()}",
                on_click="ignore",
            )


def data_downloads(
    page: str,
    cfg: ViewConfig,
    name: str,
    data: Mapping[str, Any],
    table: pd.DataFrame | None = None,
) -> None:
    """The page's data as JSON (with its configuration and model), and its main table as CSV."""
    with st.popover("Export data", icon=":material/dataset:"):
        st.download_button(
            "JSON (data + configuration)",
            data=lambda: export.view_json(page, cfg, data),
            file_name=f"{name}.json",
            mime="application/json",
            key=f"{name}-json",
            on_click="ignore",
        )
        if table is not None:
            st.download_button(
                "CSV (table)",
                data=lambda: export.table_csv(table),
                file_name=f"{name}.csv",
                mime="text/csv",
                key=f"{name}-csv",
                on_click="ignore",
            )
