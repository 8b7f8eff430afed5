"""The one adapter between the validated configuration and Streamlit's widgets and URL.

Widgets are bound to URL parameters with Streamlit's `bind="query-params"`: the URL seeds the
widget and follows it. Streamlit silently drops a URL value it cannot use; we first validate
every value ourselves, seed the widget with the corrected value (a clamped number, a cleaned
prompt) and show the notice, so a bad link still opens a working, explained view.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from lib import config
from lib.config import PARAMS_BY_NAME, Validated

STREAMLIT_PARAMS = ("embed", "embed_options")
_URL_NOTICES = "_kv_lens_url_notices"


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


def bound(
    widget: Callable[..., Any], name: str, label: str, start: dict[str, Any], **kwargs: Any
) -> Any:
    """Create `widget` keyed and URL-bound as parameter `name`.

    `start` (e.g. `{"value": 3}` or `{"index": 0}`) is passed only while the session holds no
    value for the widget, so Streamlit never sees two competing sources for one widget.
    """
    if name not in st.session_state:
        kwargs.update(start)
    return widget(label, key=name, bind="query-params", **kwargs)
