"""Charts drawn through the figures store: the browser gets what `st.altair_chart` would have
sent, and a later session draws a chart of equal arguments without building it again."""

from __future__ import annotations

import importlib

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
from streamlit.testing.v1 import AppTest

BUILT: list[tuple[str, ...]] = []  # the labels of every chart `bars` built, in this process


def bars(labels: tuple[str, ...], values: np.ndarray) -> alt.Chart:
    """A small chart with a null legend title, which Streamlit edits in the spec it is given."""
    BUILT.append(labels)
    data = pd.DataFrame({"label": labels, "value": values})
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(x="label:N", y="value:Q", color=alt.Color("label:N", title=None))
    )


def script() -> None:
    from functools import partial

    import numpy as np
    import streamlit as st

    from lib.ui import draw
    from tests.app.test_draw import bars

    labels = tuple(st.query_params.get("labels", "a,b,c").split(","))
    values = np.arange(len(labels), dtype=float) + 1  # new objects in every run
    draw.chart(partial(bars, labels, values), "bars")
    st.altair_chart(bars(labels, values), width="stretch")


def built() -> list[tuple[str, ...]]:
    """BUILT as the app script sees it: pytest imports this file under another module name."""
    return importlib.import_module("tests.app.test_draw").BUILT


def charts(labels: str) -> list:
    at = AppTest.from_function(script, default_timeout=60)
    at.query_params["labels"] = labels
    at.run()
    assert not at.exception
    return [node.proto for node in at.get("vega_lite_chart")]


def test_a_stored_figure_is_sent_as_altair_would_send_it_and_built_once():
    st.cache_resource.clear()
    seen = built()
    seen.clear()
    drawn, direct = charts("a,b,c")
    assert drawn.spec == direct.spec and drawn.datasets == direct.datasets
    assert seen == [("a", "b", "c")] * 2  # the figure, and the chart st.altair_chart got

    again, _ = charts("a,b,c")  # a second session, with new but equal arguments
    assert again.spec == drawn.spec and again.datasets == drawn.datasets
    assert seen == [("a", "b", "c")] * 3  # only the direct chart was built again

    other, _ = charts("x,y")
    assert seen[-2:] == [("x", "y")] * 2 and other.datasets != drawn.datasets
