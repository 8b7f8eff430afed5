"""A session of the app without a browser: Streamlit's agent HTTP API, as `make loadtest` uses it.

The server must run with `--server.enableAgentApi true`. One `POST /_stcore/agent/interact` is
one client-state transition: the body names what changes, the server reruns the session's
script as it would for a browser, waits until the run chain has settled, and answers with a
JSON snapshot of the finished page (`tree`, `actions`, `query_params`, `status`). A body without
`session_id` creates a session; `page` + `query_params` on that creating call open a link in one
request; `widget_state` on a later call sets widgets by key, as a reader's click would. A run
that outlasts `server.agentWaitTimeout` is answered `202 wait_timed_out` and keeps going; a body
with only the `session_id` collects it. The protocol is described by the server itself at
`/_stcore/agent/openapi.json`.

The helpers on snapshots below are pure, for tests.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

INTERACT = "/_stcore/agent/interact"
SCHEMA = "/_stcore/agent/openapi.json"
FAILED_TYPES = ("exception", "error")  # an uncaught exception; an `st.error` box


class ProtocolError(Exception):
    """A refused request, or an answer that is not a snapshot."""


class AgentSession:
    """One session driven over HTTP; every call blocks until the app's run has settled."""

    def __init__(self, base: str, timeout: float = 1800.0) -> None:
        address = urlsplit(base)
        self.host, self.port = address.hostname or "127.0.0.1", address.port or 80
        self.prefix = address.path.rstrip("/")
        self.timeout = timeout
        self.session_id: str | None = None

    def _post(self, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            payload = json.dumps(body).encode()
            # No `Origin` header: the API refuses requests from web pages.
            headers = {"Content-Type": "application/json"}
            connection.request("POST", self.prefix + INTERACT, body=payload, headers=headers)
            answer = connection.getresponse()
            text = answer.read()
        finally:
            connection.close()
        try:
            return answer.status, json.loads(text)
        except ValueError as error:
            raise ProtocolError(f"HTTP {answer.status}: not JSON") from error

    def interact(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Send `changes` (plus this session's id), wait for the finished view, return it."""
        body = {**({} if self.session_id is None else {"session_id": self.session_id}), **changes}
        status, document = self._post(body)
        while status == 202 and error_code(document) == "wait_timed_out":
            self.session_id = document.get("session_id") or self.session_id
            status, document = self._post({"session_id": self.session_id})
        if status != 200 or "tree" not in document:
            self.session_id = document.get("session_id") or self.session_id
            raise ProtocolError(f"HTTP {status} {error_code(document)}: {error_text(document)}")
        self.session_id = document["session_id"]
        return document

    def close(self) -> None:
        """Nothing to close: the server drops a done session after `server.agentSessionTTL`."""

    def open(self, page: str, params: Mapping[str, str]) -> dict[str, Any]:
        """Open `/page?params` as a new session would, in one creating call."""
        if self.session_id is not None:
            raise ProtocolError("open() creates the session: use a new AgentSession")
        query = {name: [value] for name, value in params.items()}
        return self.interact({"page": page, "query_params": query})

    def set(self, key: str, value: Any) -> dict[str, Any]:
        """Set one widget, as a reader's click or keystroke would, and wait for the rerun."""
        return self.interact({"widget_state": {key: value}})


def error_code(document: Mapping[str, Any]) -> str:
    error = document.get("error")
    return str(error.get("code", "")) if isinstance(error, dict) else ""


def error_text(document: Mapping[str, Any]) -> str:
    error = document.get("error")
    return str(error.get("message", ""))[:200] if isinstance(error, dict) else ""


def nodes(node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every node of a snapshot's tree, depth first, in page order."""
    yield node
    for child in node.get("children", ()):
        yield from nodes(child)


def widget(snapshot: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    return next((node for node in nodes(snapshot["tree"]) if node.get("key") == key), None)


def count_types(snapshot: Mapping[str, Any], types: tuple[str, ...]) -> int:
    return sum(node.get("type") in types for node in nodes(snapshot["tree"]))


def problems(
    snapshot: Mapping[str, Any], page: str, expect: Mapping[str, str] | None = None
) -> list[str]:
    """What is wrong with a finished view: a run that raised, an error box, another page than
    the one asked for, or a URL parameter that did not arrive as sent."""
    found = []
    if snapshot.get("status") != "ready":
        found.append(f"status {snapshot.get('status')!r}")
    for node in nodes(snapshot["tree"]):
        if node.get("type") in FAILED_TYPES:
            props = node.get("props", {})
            text = props.get("message") or props.get("body") or ""
            found.append(f"{node['type']}: {str(text)[:120]}")
    shown = snapshot.get("page", {}).get("url_path")
    if shown != page.strip("/"):
        found.append(f"page {shown!r} instead of {page!r}")
    params = snapshot.get("query_params", {})
    for name, value in (expect or {}).items():
        if params.get(name) != [value]:
            found.append(f"URL parameter {name}={params.get(name)!r} instead of {value!r}")
    return found


def next_option(node: Mapping[str, Any]) -> str | None:
    """The option after the widget's current value (the first after the last); None when the
    widget offers fewer than two."""
    options = [str(option) for option in node.get("props", {}).get("options", ())]
    if len(options) < 2:
        return None
    current = str(node.get("value"))
    return options[(options.index(current) + 1) % len(options) if current in options else 0]


def selection_move(snapshot: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str, str] | None:
    """The first of `keys` that is an action of this view with another option to pick, and
    that option: what a reader exploring the view would click next."""
    actionable = {action["key"] for action in snapshot.get("actions", ())}
    for key in keys:
        node = widget(snapshot, key)
        if key in actionable and node is not None and (option := next_option(node)) is not None:
            return key, option
    return None
