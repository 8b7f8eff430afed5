"""The load test's two kinds of session against a real server: a browser tab speaking the
WebSocket protocol and an agent API session must see the same views, before and after the same
selection, or the load test would time one thing and check another."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from bench import loadtest as lt
from bench.loadtest_agent import count_types, nodes, problems, selection_move


def described(found: dict[str, Any], page: str, expect: dict[str, str]) -> dict[str, Any]:
    """What the load test reads from a finished view."""
    return {
        "problems": problems(found, page, expect),
        "query": found["query_params"],
        "charts": count_types(found, lt.CHART_TYPES),
        "move": selection_move(found, lt.SELECTIONS[page]),
    }


@pytest.mark.parametrize("page", ["cache", "flow", "architectures"])
def test_a_tab_and_an_agent_session_see_the_same_views(tmp_path, page):
    params = {"model": "tiny-random"} | (
        {} if page == "architectures" else {"prompt": "Hello there", "new": "3"}
    )
    expect = {name: params[name] for name in ("prompt", "new") if name in params}
    server = lt.Server({"KV_LENS_RESULTS_DIR": str(tmp_path / "results")}, tmp_path)
    seen = {}
    with server.running() as (base,):
        for driver, session_type in lt.DRIVERS.items():
            with contextlib.closing(session_type(base)) as session:
                opened = described(session.open(page, params), page, expect)
                moved = described(session.set(*opened["move"]), page, expect)
            seen[driver] = (opened, moved)
    for opened, moved in seen.values():
        assert opened["problems"] == moved["problems"] == []
        assert opened["charts"] > 0 and opened["move"] is not None
        key, option = opened["move"]
        assert moved["query"] == {**opened["query"], key: [option]}
    assert seen["socket"] == seen["agent"]


def test_every_widget_a_tab_shows_has_the_value_the_agent_reports(tmp_path):
    """The tab's values are what it sends back with every rerun: wrong ones would change the
    view a selection asks for (a text box sent empty would drop the prompt)."""
    params = {"model": "tiny-random", "prompt": "Hello there", "new": "3", "kvhead": "1"}
    server = lt.Server({"KV_LENS_RESULTS_DIR": str(tmp_path / "results")}, tmp_path)
    with server.running() as (base,):
        values = {}
        for driver, session_type in lt.DRIVERS.items():
            with contextlib.closing(session_type(base)) as session:
                found = session.open("cache", params)
            values[driver] = {
                node["key"]: node.get("value") for node in nodes(found["tree"]) if node.get("key")
            }
    tab, agent = values["socket"], values["agent"]
    assert tab["prompt"] == "Hello there" and tab["kvhead"] == "1" and len(tab) >= 10
    for key, value in tab.items():  # the tab's widgets: the agent also lists buttons
        assert value == agent[key] or value == [agent[key]], key
