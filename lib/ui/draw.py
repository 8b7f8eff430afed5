"""Drawing that every page shares: notices, the share box, and the export menus.

Nothing here computes: the share link is the run's validated configuration, the exported data is
the page model itself (`lib.export`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import altair as alt
import pandas as pd
import streamlit as st

from lib import export
from lib.config import to_query
from lib.ui.state import Resolved


def notices(texts: Iterable[str]) -> None:
    """Corrections of the link, of the input, or of what a run allows: each said once."""
    for notice in dict.fromkeys(texts):
        st.warning(notice, icon="⚠️")


def share_link(resolved: Resolved) -> str:
    """This page's address with its non-default settings: the shortest link to this view."""
    query = urlencode(to_query(resolved.config, resolved.page))
    base = st.context.url or ""
    return f"{base}?{query}" if query else base


def share_box(resolved: Resolved) -> None:
    """The sidebar's "Share this view": the full URL, ready to copy."""
    with st.sidebar:
        st.markdown("**Share this view**")
        st.code(share_link(resolved), language=None, wrap_lines=True)


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
                help="Rendered on the server when clicked (a second or two; the button spins "
                "meanwhile).",
            )


def chart(
    figure: alt.TopLevelMixin,
    name: str,
    file_figure: alt.TopLevelMixin | None = None,
    **kwargs: Any,
) -> Any:
    """A chart and its export menu (of `file_figure` when a file needs another size); `kwargs`
    go to `st.altair_chart` (key, selection, width)."""
    kwargs.setdefault("width", "stretch")
    event = st.altair_chart(figure, **kwargs)
    chart_downloads(figure if file_figure is None else file_figure, name)
    return event


def data_downloads(resolved: Resolved, name: str, model: Any, table: pd.DataFrame | None) -> None:
    """The page model as JSON (with its configuration and model id), its main table as CSV."""
    with st.popover("Export data", icon=":material/dataset:"):
        st.download_button(
            "JSON (data + configuration)",
            data=lambda: export.view_json(resolved.page, resolved.config, model),
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
