"""The one module that writes Streamlit's session state and the URL.

A run starts here (`begin_run`, called by the router before any widget exists): the page's URL
parameters are read once, validated once (`lib.config`), and the URL is rewritten to hold only
accepted values, so no widget ever parses a raw value from a stranger. Which value wins:

* on a session's first run, after a page switch, or when a parameter's URL value changed since
  the end of the last run (a link followed, a history step), the URL wins: a link opens exactly
  its view, and a parameter it leaves out takes its default;
* otherwise, and whenever the reader moved the parameter's widget for this run (a widget moved,
  a chart clicked), what the session holds wins. A rerun can carry the address as it was before
  the last run's URL reached the browser (a slider pressed twice while the page ran): that is
  not a link followed.

Widgets are then created through `bound`, which seeds each with the page's value (clamped to
what the run allows) before Streamlit's `bind="query-params"` sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from lib import config
from lib.charts import clicked
from lib.config import PARAMS_BY_NAME, ViewConfig
from lib.site import PageInfo

STREAMLIT_PARAMS = ("embed", "embed_options")
_RUN = "_kv_lens_run"  # this run's Resolved view
_LAST_URL = "_kv_lens_last_url"  # (page path, URL parameters) as the last run left them
_PICKED = "_kv_lens_picked"  # {parameter: the value the page picked for an empty parameter}
_MOVED = "_kv_lens_moved"  # parameters the reader set for this run (widget callbacks, clicks)
DEFAULTS = ViewConfig()


@dataclass(frozen=True)
class Resolved:
    """The view of this run: its page, its validated configuration, and what was corrected."""

    page: PageInfo
    config: ViewConfig
    notices: tuple[str, ...]


@contextmanager
def _url_store() -> Iterator[Any]:
    """Streamlit's own query-parameter object. Its public face refuses to rewrite a parameter
    bound to a widget, and widgets seed themselves from a copy taken when the page loaded; to
    keep a rejected value from ever reaching a widget, both are rewritten here."""
    with get_script_run_ctx().session_state.query_params() as store:
        yield store


def _url() -> dict[str, list[str]]:
    return {name: st.query_params.get_all(name) for name in st.query_params}


def _write_url(wanted: dict[str, str]) -> None:
    """Make the URL hold exactly `wanted` (Streamlit's own parameters stay): a rejected value,
    a repeated one, an unknown parameter or another page's leave the address bar."""
    changed = False
    with _url_store() as store:
        for name in list(store._query_params):
            if name not in wanted and name not in STREAMLIT_PARAMS:
                del store._query_params[name]
                store._initial_query_params.pop(name, None)
                changed = True
        for name, value in wanted.items():
            if store._query_params.get(name) != value:
                store._query_params[name] = value
                changed = True
            store._initial_query_params[name] = [value]
        if changed:
            store._send_query_param_msg()


def _rewrite_one(name: str, value: str | None) -> None:
    """Set (or, with None, remove) one parameter in the URL and in the widgets' seed copy."""
    with _url_store() as store:
        if value is None:
            if store._query_params.pop(name, None) is not None:
                store._send_query_param_msg()
            store._initial_query_params.pop(name, None)
        else:
            if store._query_params.get(name) != value:
                store._query_params[name] = value
                store._send_query_param_msg()
            store._initial_query_params[name] = [value]


def begin_run(page: PageInfo) -> Resolved:
    """Decide this run's view of `page` and put the URL in order; before any widget exists."""
    url = _url()
    moved = st.session_state.pop(_MOVED, set())
    last_page, last_url = st.session_state.get(_LAST_URL, (None, None))
    link_wins = last_url is None or last_page != page.path
    chosen = {name: url[name] for name in url if name not in page.url_params}  # for notices
    picked = st.session_state.get(_PICKED, {})
    for name in page.url_params:
        followed = link_wins or (name not in moved and url.get(name) != last_url.get(name))
        unchosen = name in picked and st.session_state.get(name) == picked[name]
        if followed or unchosen or name not in st.session_state:
            if name in url:
                chosen[name] = url[name]
        else:
            shown = _from_widget(name, st.session_state[name])
            chosen[name] = [PARAMS_BY_NAME[name].render(shown)]
    validated = config.from_query(chosen, page, known=STREAMLIT_PARAMS)
    notices = validated.notices
    if last_url is not None:  # a parameter repeated by our own links and bound widgets
        notices = tuple(n for n in notices if "times; using the last one" not in n)
    resolved = Resolved(page, validated.config, notices)
    _write_url(validated.query(page))
    st.session_state[_RUN] = resolved
    return resolved


def end_run() -> None:
    """Remember the URL as this run leaves it, to tell a followed link from a moved widget."""
    resolved = st.session_state.get(_RUN)
    if resolved is not None:
        st.session_state[_LAST_URL] = (resolved.page.path, _url())


def current() -> Resolved:
    return st.session_state[_RUN]


def view() -> ViewConfig:
    """The validated configuration of this run, for the page being drawn."""
    return current().config


def _from_widget(name: str, value: Any) -> Any:
    """A widget's value as the configuration holds it (the head menu holds text)."""
    if name == "head" and isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def bound(
    widget: Callable[..., Any],
    name: str,
    label: str,
    value: Any = None,
    auto: Any = None,
    **kwargs: Any,
):
    """Create `widget` keyed and URL-bound as parameter `name`, showing `value` (default: the
    run's configured value; pass the page's value when the run narrows the range). For a
    parameter whose empty value means "the page picks", `auto` is the page's pick: the widget's
    default, which a link leaves out.

    The widget's own default is the configuration's default, so the URL carries only what
    differs from it. Options are matched by their text, which is also what the URL holds.
    """
    param = PARAMS_BY_NAME[name]
    configured = getattr(view(), param.attr)
    wanted = configured if value is None else value
    default = getattr(DEFAULTS, param.attr)
    if default is None and auto is not None:
        default = auto
    picked = st.session_state.setdefault(_PICKED, {})
    if configured is None and auto is not None:
        picked[name] = auto  # the page's pick, not the reader's: picked again on the next run
    else:
        picked.pop(name, None)
    options = kwargs.get("options")
    if options is not None:
        by_text = {str(option): option for option in options}
        first = next(iter(by_text.values()))
        shown = by_text.get(param.render(wanted), first)
        initial = by_text.get(param.render(default), first)
        start = (
            {"default": initial}
            if widget in (st.segmented_control, st.pills)
            else {"index": list(by_text.values()).index(initial)}
        )
    else:
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        shown, initial = _within(wanted, low, high), _within(default, low, high)
        start = {"value": initial}
    if name in st.session_state or shown != initial:
        if name not in st.session_state or st.session_state[name] != shown:
            st.session_state[name] = shown
    else:
        kwargs.update(start)
    _rewrite_one(name, None if _from_widget(name, shown) == default else param.render(shown))
    return widget(
        label, key=name, bind="query-params", on_change=_mark_moved, args=(name,), **kwargs
    )


def _mark_moved(*names: str) -> None:
    """Callbacks run before the rerun they cause: what they mark, the reader set."""
    st.session_state[_MOVED] = st.session_state.get(_MOVED, set()) | set(names)


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
            _mark_moved(*widgets)

    return copy


def setter(**values: Any) -> Callable[[], None]:
    """An `on_click` callback that sets widgets: an example button, "another program"."""

    def set_values() -> None:
        for name, value in values.items():
            st.session_state[name] = value
        _mark_moved(*values)

    return set_values


def use_preset(key: str) -> None:
    """`on_change` of the preset menu: its prompt goes into the prompt box."""
    chosen = st.session_state.get(key)
    if chosen is not None:
        st.session_state["prompt"] = chosen.prompt
        _mark_moved("prompt")
