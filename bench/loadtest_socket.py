"""A session of the app as a browser tab drives it: Streamlit's WebSocket protocol, for `make
loadtest`.

Why not only the agent API (bench/loadtest_agent.py): for a session that the agent API created,
Streamlit describes every element it sends and answers every finished run with a JSON snapshot
of the page; for a browser's session it does neither (`agent_spec.is_recording()`). Once a
stored view cost ~0.1 CPU-s, that work was about a third of what an agent session cost the
server. This client costs the server what a tab does.

What it sends is what the browser's frontend sends: one `BackMsg.rerun_script` per run, with the
page, the address's query string (as the server last set it) and the value of every widget of
the last finished view; a selection is the same message with one widget's value changed. It
reads `ForwardMsg`s until the run's `script_finished`, keeps the last element sent to each place
of the page, and describes the finished view in the agent's snapshot form (`status`, `tree`,
`actions`, `page`, `query_params`), so the checks of bench/loadtest_agent.py apply to both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlencode, urlsplit

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.NumberInput_pb2 import NumberInput
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.sync.client import ClientConnection, connect

from bench.loadtest_agent import ProtocolError

STREAM = "/_stcore/stream"
FINISHED = ForwardMsg.ScriptFinishedStatus.Name  # the status's name, e.g. FINISHED_SUCCESSFULLY
WIDGET_TYPES = (
    "button_group",
    "checkbox",
    "number_input",
    "radio",
    "selectbox",
    "slider",
    "text_area",
    "text_input",
)


class Widget(NamedTuple):
    """A widget as the tab holds it: its type, its last element, and the value it shows."""

    what: str
    proto: Any
    value: Any


class SocketSession:
    """One session over one WebSocket, as one browser tab; every call blocks until the run has
    finished."""

    def __init__(self, base: str, timeout: float = 1800.0) -> None:
        address = urlsplit(base)
        scheme = "wss" if address.scheme == "https" else "ws"
        self.url = f"{scheme}://{address.netloc}{address.path.rstrip('/')}{STREAM}"
        self.timeout = timeout
        self.page = ""
        self.query = ""
        self.widgets: dict[str, Widget] = {}  # widget id → what the tab shows
        self._socket: ClientConnection | None = None

    def close(self) -> None:
        """Close the tab."""
        if self._socket is not None:
            self._socket.close()

    def open(self, page: str, params: Mapping[str, str]) -> dict[str, Any]:
        """Open `/page?params` in a new tab and wait for the finished view."""
        if self._socket is not None:
            raise ProtocolError("open() starts the tab: use a new SocketSession")
        # The subprotocol names the protocol; the frontend passes its tokens in the same header.
        self._socket = connect(
            self.url, subprotocols=["streamlit"], max_size=None, open_timeout=60, close_timeout=2
        )
        self.page, self.query = page.strip("/"), urlencode(params)
        return self._run({})

    def set(self, key: str, value: str) -> dict[str, Any]:
        """Pick option `value` of the widget keyed `key`, as a click would, and wait for the
        finished view."""
        return self._run({key: value})

    def _run(self, changed: Mapping[str, str]) -> dict[str, Any]:
        if self._socket is None:
            raise ProtocolError("open() the tab first")
        message = BackMsg()
        message.rerun_script.query_string = self.query
        message.rerun_script.page_name = self.page
        self.widgets = {
            widget_id: widget._replace(value=changed.get(user_key(widget_id), widget.value))
            for widget_id, widget in self.widgets.items()
        }
        states = widget_states(self.widgets)
        message.rerun_script.widget_states.widgets.extend(states)
        self._socket.send(message.SerializeToString())
        elements: dict[tuple[int, ...], tuple[str, Any]] = {}  # place → (type, proto)
        ran = ""
        while True:
            received = ForwardMsg()
            received.ParseFromString(self._socket.recv(timeout=self.timeout))
            kind = received.WhichOneof("type")
            if kind == "navigation":  # the pages, and which one this run shows
                shown = received.navigation
                paths = {page.page_script_hash: page.url_pathname for page in shown.app_pages}
                ran = paths.get(shown.page_script_hash, "")
            elif kind == "page_info_changed":
                self.query = received.page_info_changed.query_string
            elif kind == "delta" and received.delta.WhichOneof("type") == "new_element":
                element = received.delta.new_element
                what = element.WhichOneof("type")
                elements[tuple(received.metadata.delta_path)] = (what, getattr(element, what))
            elif kind == "script_finished":
                self.widgets = shown_values(elements.values(), self.widgets, self.query)
                return snapshot(
                    elements.values(),
                    self.widgets,
                    FINISHED(received.script_finished),
                    ran,
                    self.query,
                )


def user_key(widget_id: str) -> str:
    """A keyed widget's key: Streamlit names it `$$ID-<hash>-<key>`."""
    return widget_id.split("-", 2)[2] if widget_id.startswith("$$ID-") else ""


def options_of(what: str, proto: Any) -> list[str]:
    if what == "button_group":
        return [option.content for option in proto.options]
    return [str(option) for option in getattr(proto, "options", ())]


def server_value(what: str, proto: Any) -> Any:
    """The value the server gave the widget in this run (`set_value`), else its default: in the
    form its state is sent; None when it has none (an empty menu or number)."""
    if what == "button_group":
        options = options_of(what, proto)
        return list(proto.raw_values) if proto.set_value else [options[i] for i in proto.default]
    if what == "slider":
        return list(proto.value if proto.set_value else proto.default)
    if what in ("radio", "selectbox"):
        if proto.set_value:
            return proto.raw_value
        return options_of(what, proto)[proto.default] if proto.HasField("default") else None
    if what == "number_input":
        if proto.set_value:
            return proto.value if proto.HasField("value") else None
        return proto.default if proto.HasField("default") else None
    return proto.value if proto.set_value else proto.default  # checkbox, text_area, text_input


def url_value(what: str, texts: list[str]) -> Any:
    """A URL parameter's values as the state of the widget bound to it."""
    if what in ("button_group", "slider"):
        return texts if what == "button_group" else [float(text) for text in texts]
    if what == "checkbox":
        return texts[0] == "true"
    return float(texts[0]) if what == "number_input" else texts[0]


def shown_values(elements: Any, before: Mapping[str, Widget], query: str) -> dict[str, Widget]:
    """What each widget of a finished run shows, as the frontend keeps it: the value the server
    set in this run; else, for a widget already on the page, the value it had; else, for one
    bound to a URL parameter that the address holds, that parameter; else its default."""
    params = parse_qs(query)
    shown = {}
    for what, proto in elements:
        if what not in WIDGET_TYPES or not proto.id:
            continue
        bound = params.get(getattr(proto, "query_param_key", ""))
        if proto.set_value:
            value = server_value(what, proto)
        elif proto.id in before:
            value = before[proto.id].value
        elif bound:
            value = url_value(what, bound)
        else:
            value = server_value(what, proto)
        shown[proto.id] = Widget(what, proto, value)
    return shown


def widget_states(shown: Mapping[str, Widget]) -> list[WidgetState]:
    """Every widget's state as the frontend sends it with a rerun."""
    states = []
    for widget_id, (what, proto, value) in shown.items():
        if value is None:
            continue
        state = WidgetState(id=widget_id)
        if what == "button_group":
            state.string_array_value.data.extend([value] if isinstance(value, str) else value)
        elif what == "slider":
            state.double_array_value.data.extend(value)
        elif what == "checkbox":
            state.bool_value = bool(value)
        elif what == "number_input" and proto.data_type == NumberInput.INT:
            state.int_value = int(value)
        elif what == "number_input":
            state.double_value = float(value)
        else:
            state.string_value = str(value)
        states.append(state)
    return states


def snapshot(
    elements: Any, shown: Mapping[str, Widget], status: str, url_path: str, query: str
) -> dict[str, Any]:
    """The finished view in the agent API's snapshot form, as far as the load test reads it."""
    nodes, actions = [], []
    for what, proto in elements:
        node: dict[str, Any] = {"type": what, "props": {}}
        if what == "alert" and proto.format == Alert.ERROR:
            node = {"type": "error", "props": {"body": proto.body}}
        elif what == "exception":
            node["props"] = {"message": f"{proto.type}: {proto.message}"}
        elif what in WIDGET_TYPES:
            key = user_key(proto.id)
            value = shown[proto.id].value
            if isinstance(value, list) and len(value) == 1:
                value = value[0]
            node |= {"key": key, "value": value, "props": {"options": options_of(what, proto)}}
            if key and not proto.disabled:
                actions.append({"key": key})
        nodes.append(node)
    return {
        "status": "ready" if status == "FINISHED_SUCCESSFULLY" else status,
        "tree": {"type": "root", "children": nodes},
        "actions": actions,
        "page": {"url_path": url_path},
        "query_params": parse_qs(query),
    }
