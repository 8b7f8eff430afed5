"""Drawing that every page shares: notices, the share box, charts and their export menus.

Nothing here computes: the share link is the run's validated configuration, the exported data is
the page model itself (`lib.export`), and a chart is built once from the page model's numbers,
then kept for every session that draws it again.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any
from urllib.parse import urlencode

import altair as alt
import pandas as pd
import streamlit as st
from streamlit.elements.vega_charts import _convert_altair_to_vega_lite_spec

from lib import export
from lib.config import to_query
from lib.store import call_digest
from lib.ui import resources
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

# A figure is a chart function of lib.charts with its arguments, `partial(charts.x, ...)`: it is
# called only when no session has drawn that chart from equal arguments before.
Figure = partial


@dataclasses.dataclass(frozen=True)
class Drawn:
    """One chart as Streamlit sends it: the Vega-Lite spec as JSON, and its datasets in Arrow
    (named by the hash of their bytes), the form `st.altair_chart` makes on every call."""

    spec: str
    datasets: Mapping[str, bytes]

    def fresh(self) -> dict[str, Any]:
        """The spec as a new dict: Streamlit edits the spec it is given."""
        return {**json.loads(self.spec), "datasets": dict(self.datasets)}


def _drawn(chart: alt.TopLevelMixin) -> Drawn:
    spec = _convert_altair_to_vega_lite_spec(chart)  # what st.altair_chart does with a chart
    datasets = spec.pop("datasets")
    return Drawn(json.dumps(spec), datasets)


def specs(figure: Figure) -> list[dict[str, Any]]:
    """The Vega-Lite specs of a figure's charts (one, or a tuple of parts).

    Building and validating charts through Altair was most of the script's time in a profile
    of a /cache view whose results were stored, and every session that opens one link draws
    the same charts: they are built once, kept by the content of their arguments, and sent as
    they were built."""

    def build() -> tuple[Drawn, ...]:
        made = figure()
        return tuple(_drawn(part) for part in (made if isinstance(made, tuple) else (made,)))

    drawn = resources.figures().compute(("figure", call_digest(figure)), build)
    return [part.fresh() for part in drawn]


@contextmanager
def export_menu(label: str, icon: str, name: str) -> Iterator[bool]:
    """A menu whose download buttons are drawn only while it is open (yields whether it is).

    Opening it reruns the view, which is stored and quick. Every view's download buttons, drawn
    for every session, were about a quarter of a stored view's server time: 32 sessions opening
    one stored /cache view cost the server 1.6-1.8 CPU-s with them drawn, 1.1-1.35 with no
    export menus at all, and 1.3-1.4 with these."""
    with st.popover(label, icon=icon, key=f"export-{name}", on_change="rerun") as menu:
        yield menu.open


def chart_downloads(make: Callable[[], alt.TopLevelMixin], name: str) -> None:
    """A small "Export figure" menu under a chart: files rendered on the server when clicked,
    from the chart `make` builds then."""
    with export_menu("Export figure", ":material/download:", name) as shown:
        if not shown:
            return
        for label, render, mime in FIGURE_FORMATS:
            st.download_button(
                label,
                data=lambda render=render: render(make()),
                file_name=f"{name}.{label.lower()}",
                mime=mime,
                key=f"{name}-{label.lower()}",
                on_click="ignore",
                help="Rendered on the server when clicked (a second or two; the button spins "
                "meanwhile).",
            )


def chart(
    figure: Figure,
    name: str,
    for_file: Callable[[alt.TopLevelMixin], alt.TopLevelMixin] | None = None,
    **kwargs: Any,
) -> Any:
    """A chart and its export menu (of `for_file(chart)` when a file needs another size);
    `kwargs` go to `st.vega_lite_chart` (key, selection, width)."""
    kwargs.setdefault("width", "stretch")
    (spec,) = specs(figure)
    event = st.vega_lite_chart(spec=spec, **kwargs)
    chart_downloads(figure if for_file is None else lambda: for_file(figure()), name)
    return event


def data_downloads(resolved: Resolved, name: str, model: Any, table: pd.DataFrame | None) -> None:
    """The page model as JSON (with its configuration and model id), its main table as CSV."""
    with export_menu("Export data", ":material/dataset:", name) as shown:
        if not shown:
            return
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
