"""The one adapter between the validated configuration and Streamlit's widgets and URL.

Widgets are bound to URL parameters with Streamlit's `bind="query-params"`: the URL seeds the
widget and follows it. Streamlit silently drops a URL value it cannot use; we first validate
every value ourselves, seed the widget with the corrected value (a clamped number, a cleaned
prompt) and show the notice, so a bad link still opens a working, explained view.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from lib import config
from lib.charts import clicked
from lib.config import PARAMS_BY_NAME, Validated, ViewConfig

STREAMLIT_PARAMS = ("embed", "embed_options")
_URL_NOTICES = "_kv_lens_url_notices"
DEFAULTS = ViewConfig()


def _url() -> dict[str, list[str]]:
    return {name: st.query_params.get_all(name) for name in st.query_params}


def begin_run() -> None:
    """Validate this run's URL; seed corrected values into the widgets bound to bad ones."""
    raw = _url()
    validated = config.from_query(raw, known=STREAMLIT_PARAMS)
    for name, values in raw.items():
        param = PARAMS_BY_NAME.get(name)
        if param is not None and values and param.parse(values[-1])[1] is not None:
            st.session_state[name] = getattr(validated.config, param.attr)
    st.session_state[_URL_NOTICES] = validated.notices


def current() -> Validated:
    """The view as it stands, validated: widget values (untrusted too) over the URL's."""
    raw = _url()
    for name, param in PARAMS_BY_NAME.items():
        if st.session_state.get(name) is not None:
            raw[name] = [param.render(st.session_state[name])]
    return config.from_query(raw, known=STREAMLIT_PARAMS)


def show_notices() -> None:
    """Corrections of the link as opened, then of the view as it stands, each said once."""
    notices = st.session_state.get(_URL_NOTICES, ()) + current().notices
    for notice in dict.fromkeys(notices):
        st.warning(notice, icon="⚠️")


def clamped(name: str, value: int, size: int) -> int:
    """`value` within 0…size−1 for this run (known only after it), with a notice when cut."""
    index, notice = config.clamp_index(name, value, size)
    if notice:
        st.warning(notice, icon="⚠️")
    return index


def bound(widget: Callable[..., Any], name: str, label: str, **kwargs: Any) -> Any:
    """Create `widget` keyed and URL-bound as parameter `name`.

    The widget's default is the configuration's default, so the URL carries only what differs
    from it (a widget whose default equals the URL's value drops it from the address bar). The
    URL seeds the value; when this run's range or options cannot hold that value, the clamped
    value is seeded through the session state instead. Options are matched by their text, which
    is also what the URL holds, so option widgets take no `format_func`.
    """
    param = PARAMS_BY_NAME[name]
    default = getattr(DEFAULTS, param.attr)
    wanted = getattr(current().config, param.attr)
    options = kwargs.get("options")
    if options is not None:
        by_text = {str(option): option for option in options}
        start_option = by_text.get(param.render(default), next(iter(by_text.values())))
        seeded = by_text.get(param.render(wanted), start_option)
        fits = param.render(wanted) in by_text
        if widget in (st.segmented_control, st.pills):
            start = {"default": start_option}
        else:
            start = {"index": list(by_text.values()).index(start_option)}
    else:
        seeded = _within(wanted, kwargs.get("min_value"), kwargs.get("max_value"))
        fits = seeded == wanted
        start = {"value": _within(default, kwargs.get("min_value"), kwargs.get("max_value"))}
    if not fits:
        st.session_state[name] = seeded
    elif name not in st.session_state:
        kwargs.update(start)
    return widget(label, key=name, bind="query-params", **kwargs)


def bound_in_range(widget: Callable[..., Any], name: str, label: str, **kwargs: Any) -> Any:
    """`bound`, with the parameter's own range as the widget's bounds."""
    param = PARAMS_BY_NAME[name]
    return bound(widget, name, label, min_value=param.low, max_value=param.high, **kwargs)


def _within(value: Any, low: Any, high: Any) -> Any:
    if value is None:
        return None
    if low is not None:
        value = max(value, low)
    return value if high is None else min(value, high)


def copy_click(
    chart_key: str,
    selection: str,
    fields: Sequence[str],
    widgets: Sequence[str],
    bounds: Sequence[int] | None = None,
) -> Callable[[], None]:
    """An `on_select` callback: the clicked point's `fields` go into the bound `widgets`. It
    runs before the rerun, so the widgets (and the URL) follow the click."""

    def copy() -> None:
        values = clicked(st.session_state.get(chart_key), selection, fields, bounds)
        if values is not None:
            for widget, value in zip(widgets, values, strict=True):
                st.session_state[widget] = value

    return copy
