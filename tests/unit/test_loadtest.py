"""The load test's pure parts: its views and prompts, its statistics, its reading of the agent
API's snapshots, and its client's handling of the protocol (with the HTTP calls replaced)."""

from __future__ import annotations

import math
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from bench import loadtest as lt
from bench.loadtest_agent import (
    AgentSession,
    ProtocolError,
    count_types,
    next_option,
    problems,
    selection_move,
    widget,
)
from lib import models


def snapshot(*main, page="cache", status="ready", params=None, actions=()):
    return {
        "session_id": "s_1",
        "status": status,
        "page": {"url_path": page, "title": "T"},
        "query_params": params or {},
        "actions": [{"key": key, "kind": "value", "type": "x"} for key in actions],
        "tree": {"type": "root", "children": [{"type": "main", "children": list(main)}]},
    }


def control(key, value, options):
    return {"type": "segmented_control", "key": key, "value": value, "props": {"options": options}}


def test_default_model_is_the_apps():
    assert lt.DEFAULT_MODEL == models.DEFAULT_MODEL


def test_cli_defaults_and_the_makefiles_single_number():
    args = lt.parse_args([])
    assert args.sessions == [8, 32] and args.model == lt.DEFAULT_MODEL
    assert (args.page, args.new, args.rounds, args.torch_threads) == ("cache", 8, 2, 1)
    assert (args.driver, args.replicas) == ("socket", 1)
    assert lt.parse_args(["--replicas", "2", "--driver", "agent"]).replicas == 2
    assert lt.parse_args(["--sessions", "8"]).sessions == [8]  # `make loadtest` today
    quick = lt.parse_args(["--sessions", "2", "4", "--model", "tiny-random", "--no-browser"])
    assert quick.sessions == [2, 4] and quick.model == "tiny-random" and quick.no_browser
    for wrong in (
        ["--sessions", "0"],
        ["--rounds", "0"],
        ["--pause", "-1"],
        ["--sessions", "1", "2", "3", "4"],
        ["--new", "1"],
        ["--replicas", "0"],
        ["--driver", "carrier-pigeon"],
    ):
        with pytest.raises(SystemExit):
            lt.parse_args(wrong)


def test_every_prompt_of_a_run_is_new_and_view_i_costs_alike_in_every_phase():
    phases = [lt.distinct_views(phase, 40, "cache", 8, "tiny-random") for phase in range(9)]
    prompts = [view.params["prompt"] for views in phases for view in views]
    prompts += [
        lt.shared_view(phase, "cache", 8, "tiny-random").params["prompt"] for phase in (1, 3)
    ]
    assert len(set(prompts)) == len(prompts)
    for index in range(40):
        assert len({len(views[index].params["prompt"]) for views in phases}) == 1
    with pytest.raises(ValueError):
        lt.fresh_prompt("x", 9, 0)


def test_views_carry_the_model_only_when_it_is_not_the_default():
    (view,) = lt.distinct_views(0, 1, "cache", 8, lt.DEFAULT_MODEL)
    assert set(view.params) == {"prompt", "new"} and view.params["new"] == "8"
    tiny = lt.shared_view(1, "cache", 8, "tiny-random")
    assert tiny.params["model"] == "tiny-random"
    assert tiny.url("http://h:1") == (
        "http://h:1/cache?prompt=Note+2000.+The+capital+of+France+is+Paris.+The+capital+of"
        "+Italy+is&new=8&model=tiny-random"
    )
    assert (lt.View("", {"a": "1"}) | {"b": "2"}).params == {"a": "1", "b": "2"}


def test_threads_env():
    assert lt.threads_env(0) == {}
    assert lt.threads_env(1) == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.mark.parametrize("values", [[3.0], [1.0, 9.0], [5.0, 1.0, 2.0, 8.0, 4.0, 7.0, 3.0, 6.0]])
def test_percentile_is_numpys_linear_one_and_stays_within_the_data(values):
    for q in (0, 50, 95, 100):
        assert lt.percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert lt.percentile(values, 95) <= max(values)
    assert math.isnan(lt.percentile([], 95))


def test_ratios():
    assert lt.distinct_ratio(13.0, [2.0, 3.0, 5.0], workers=1) == pytest.approx(1.3)
    assert lt.distinct_ratio(13.0, [2.0, 3.0, 5.0], workers=2) == pytest.approx(2.6)
    assert lt.shared_ratio(6.0, 4.0) == pytest.approx(1.5)


def test_a_clean_view_has_no_problems():
    view = snapshot(control("kvhead", "0", ["0", "1"]), params={"prompt": ["p"], "new": ["8"]})
    assert problems(view, "cache", {"prompt": "p", "new": "8"}) == []
    assert problems(view, "/cache/") == []


def test_problems_name_what_went_wrong():
    raised = snapshot(
        {"type": "exception", "props": {"message": "boom"}},
        {"type": "error", "props": {"body": "The model is not available."}},
        status="error",
        page="",
        params={"prompt": ["other"]},
    )
    found = problems(raised, "cache", {"prompt": "p", "new": "8"})
    assert found[0] == "status 'error'"
    assert "exception: boom" in found and "error: The model is not available." in found
    assert any("page ''" in problem for problem in found)
    assert sum("URL parameter" in problem for problem in found) == 2


def test_widgets_and_selections():
    view = snapshot(
        {"type": "columns", "children": [control("dtype", "float32", ["float32", "bfloat16"])]},
        control("offgrid", "off", ["off", "on"]),
        control("kvhead", "2", [0, 1, 2]),
        {"type": "altair_chart"},
        {"type": "vega_lite_chart"},
        actions=("dtype", "offgrid", "kvhead"),
    )
    assert widget(view, "dtype")["value"] == "float32" and widget(view, "nope") is None
    assert count_types(view, lt.CHART_TYPES) == 2
    assert next_option(widget(view, "kvhead")) == "0"  # after the last, the first
    assert next_option(control("k", "x", ["x"])) is None
    assert next_option(control("k", None, ["a", "b"])) == "a"
    assert selection_move(view, ("kvhead", "offgrid")) == ("kvhead", "0")
    assert selection_move(view, ("missing", "offgrid")) == ("offgrid", "on")
    assert selection_move(view, ()) is None
    not_actionable = snapshot(control("kvhead", "0", ["0", "1"]))
    assert selection_move(not_actionable, ("kvhead",)) is None


class Scripted(AgentSession):
    """An AgentSession whose HTTP answers are scripted; it keeps the bodies it sent."""

    def __init__(self, *answers):
        super().__init__("http://127.0.0.1:1")
        self.answers, self.sent = list(answers), []

    def _post(self, body):
        self.sent.append(body)
        return self.answers.pop(0)


def test_open_is_one_creating_call_and_a_selection_continues_the_session():
    session = Scripted((200, snapshot()), (200, snapshot()))
    session.open("cache", {"prompt": "p", "new": "8"})
    session.set("kvhead", "1")
    assert session.sent == [
        {"page": "cache", "query_params": {"prompt": ["p"], "new": ["8"]}},
        {"session_id": "s_1", "widget_state": {"kvhead": "1"}},
    ]
    with pytest.raises(ProtocolError):
        session.open("cache", {})


def test_a_timed_out_wait_is_collected_with_the_session_id_alone():
    waiting = {"session_id": "s_9", "error": {"code": "wait_timed_out", "message": "later"}}
    session = Scripted((202, waiting), (202, waiting), (200, snapshot()))
    assert session.open("cache", {"prompt": "p"})["status"] == "ready"
    assert session.sent[1:] == [{"session_id": "s_9"}, {"session_id": "s_9"}]


@pytest.mark.parametrize(
    "answer",
    [
        (409, {"error": {"code": "session_busy", "message": "busy"}}),
        (429, {"error": {"code": "too_many_sessions", "message": "full"}}),
        (200, {"no": "tree"}),
    ],
)
def test_refusals_are_protocol_errors(answer):
    with pytest.raises(ProtocolError):
        Scripted(answer).open("cache", {})


def test_a_visit_records_its_times_and_problems_instead_of_raising(monkeypatch):
    moved = snapshot(
        control("kvhead", "1", ["0", "1"]),
        params={"prompt": ["p"], "new": ["8"], "kvhead": ["1"]},
        actions=("kvhead",),
    )
    opened = snapshot(
        control("kvhead", "0", ["0", "1"]),
        params={"prompt": ["p"], "new": ["8"]},
        actions=("kvhead",),
    )
    answers = [(200, opened), (200, moved)]
    monkeypatch.setattr(AgentSession, "_post", lambda self, body: answers.pop(0))
    view = lt.View("cache", {"prompt": "p", "new": "8"})
    record = lt.visit("http://127.0.0.1:1", view, 3, driver="agent")
    assert record.opened is not None and len(record.moves) == 1  # no answer left: an error
    assert record.problems == ["IndexError: pop from empty list"]
    failing = lt.visit("http://127.0.0.1:1", lt.View("cache", {"prompt": "p"}), 1, driver="agent")
    assert failing.opened is None and failing.problems


def test_a_reader_looks_at_a_view_before_changing_a_selection_and_the_look_is_not_timed(
    monkeypatch,
):
    opened = snapshot(
        control("kvhead", "0", ["0", "1"]),
        params={"prompt": ["p"], "new": ["8"]},
        actions=("kvhead",),
    )
    moved = snapshot(
        control("kvhead", "1", ["0", "1"]),
        params={"prompt": ["p"], "new": ["8"], "kvhead": ["1"]},
        actions=("kvhead",),
    )
    answers, sent = [(200, opened), (200, moved)], []

    def answer(self, body):
        sent.append(time.perf_counter())
        return answers.pop(0)

    monkeypatch.setattr(AgentSession, "_post", answer)
    view = lt.View("cache", {"prompt": "p", "new": "8"})
    record = lt.visit("http://127.0.0.1:1", view, 2, driver="agent", pause=0.3)
    assert record.problems == [] and len(record.moves) == 1
    assert sent[1] - sent[0] >= 0.3 > record.moves[0]


def test_sessions_start_together_keep_their_order_and_their_server(monkeypatch):
    lock = threading.Lock()
    arrived, seen_on_start, served = [], [], {}

    def fake_visit(base, view, rounds, start, driver, pause):
        with lock:
            arrived.append(view.page)
            served[view.page] = base
        start()  # no session's first request before every session is ready to send its own
        with lock:
            seen_on_start.append(len(arrived))
        return lt.Visit(view, opened=1.0)

    monkeypatch.setattr(lt, "visit", fake_visit)
    views = [lt.View(str(index), {}) for index in range(5)]
    visits = lt.concurrently(["http://a", "http://b"], views, 2)
    assert [visit.view.page for visit in visits] == ["0", "1", "2", "3", "4"]
    assert sorted(arrived) == ["0", "1", "2", "3", "4"]
    assert seen_on_start == [5] * 5
    assert [served[str(index)] for index in range(5)] == ["http://a", "http://b"] * 2 + ["http://a"]


def test_server_usage_over_a_window(tmp_path):
    server = lt.Server({}, tmp_path, replicas=2)
    server.samples = [(0.0, 100, 1.0), (1.0, 300, 2.0), (2.0, 200, 4.5), (3.0, 900, 9.0)]
    assert server.usage(0.5, 2.5) == (300, 3.5)  # CPU from the last sample before the window
    assert server.usage(5.0, 6.0) == (0, 0.0)
    lines = "Uvicorn\nkv-lens: computed prompt ab 0.00s\n"
    lines += "kv-lens: computed trace cd 1.00skv-lens: computed lens ef 2.00s\n\n"  # two threads
    (tmp_path / "server-0.log").write_text(lines)
    (tmp_path / "server-1.log").write_text("kv-lens: computed prompt ab 0.00s\n")
    assert server.computations() == 4  # every replica's


def test_a_phase_lists_its_times_and_errors():
    view = lt.View("cache", {"prompt": "p"})
    visits = [lt.Visit(view, 2.0, [1.0]), lt.Visit(view, None, [], ["ProtocolError: x"])]
    phase = lt.Phase("8_shared", visits, 3.0, 0, 0.0, 2)
    assert phase.opened == [2.0] and phase.moves == [1.0]
    assert phase.errors == ["8_shared: ProtocolError: x (cache 'p')"]


def phase(name, opened, peak_mb=1000, problems=()):
    view = lt.View("cache", {"prompt": "p"})
    visits = [lt.Visit(view, seconds, []) for seconds in opened]
    visits += [lt.Visit(view, None, [], [problem]) for problem in problems]
    return lt.Phase(name, visits, 1.0, peak_mb * 2**20, 1.0, 1)


def test_rows_hold_each_case_against_its_own_target():
    serial = phase("serial", [2.0, 2.0, 4.0, 4.0])
    by_name = {
        "2_distinct": phase("2_distinct", [3.0, 5.0]),  # p95 4.9 ÷ (2 + 2) = 1.225: met
        "2_shared": phase("2_shared", [3.0, 3.0], peak_mb=1200),  # 3 ÷ 2 = 1.5: met, just
        "4_distinct": phase("4_distinct", [8.0, 10.0, 12.0, 20.0]),  # 18.8 ÷ 12: missed
        "4_shared": phase("4_shared", [2.0, 2.0, 2.0, 4.0], problems=["ProtocolError: x"]),
    }
    found = lt.rows(by_name, [2, 4], serial, single_s=2.0, workers=1)
    assert [(row.sessions, row.case) for row in found] == [
        (2, "distinct"),
        (2, "shared"),
        (4, "distinct"),
        (4, "shared"),
    ]
    assert [row.ratio for row in found] == pytest.approx([1.225, 1.5, 18.8 / 12, 1.85])
    assert [row.met for row in found] == [True, True, False, False]
    assert [row.target for row in found] == [1.3, 1.5, 1.3, 1.5]
    assert [row.errors for row in found] == [0, 0, 0, 1]
    assert found[1].peak_rss_mb == pytest.approx(1200)
    # More sessions than serial views: no serial sum to compare with, no verdict of `met`.
    (short,) = lt.rows(by_name, [4], phase("serial", [2.0]), 2.0, 1)[:1]
    assert math.isnan(short.ratio) and not short.met


def test_the_table_shows_every_figure_and_verdict():
    row = lt.Row(8, "shared", 10.04, 12.96, 0, 1234.4, 1.62, 1.5)
    lines = lt.table([row, lt.Row(8, "distinct", 1.0, 2.0, 3, 10.0, 0.9, 1.3)]).splitlines()
    assert lines[0].startswith("| sessions | case | p50 s | p95 s | errors | peak RSS MB |")
    assert lines[2] == "| 8 | one shared link | 10.0 | 13.0 | 0 | 1234 | 1.62 | ≤ 1.5 missed |"
    assert lines[3] == "| 8 | distinct prompts | 1.0 | 2.0 | 3 | 10 | 0.90 | ≤ 1.3 met |"


def test_summarise_prints_the_figures_and_fails_on_any_error(capsys):
    serial = phase("serial", [2.0, 2.0])
    single = phase("single", [2.0])
    cold = phase("cold", [9.0])
    clean = [phase("2_distinct", [3.0, 4.0]), phase("2_shared", [2.5, 2.5])]
    args = SimpleNamespace(sessions=[2], page="cache", new=8, model="tiny-random", replicas=1)
    phases = [cold, serial, single, *clean]
    assert lt.summarise(phases, args, serial, single, cold, [], 2**30, 0.5) == 0
    out = capsys.readouterr().out
    assert "loadtest_2_distinct_p95_s: 3.950" in out
    assert "loadtest_2_distinct_ratio: 0.988" in out  # 3.95 ÷ (2 + 2)
    assert "loadtest_2_shared_ratio: 1.250" in out
    assert "loadtest_errors: 0.000" in out and "loadtest_server_peak_rss_mb: 1024.000" in out
    assert "| 2 | one shared link | 2.5 | 2.5 | 0 |" in out
    assert lt.summarise(phases, args, serial, single, cold, ["browser: boom"], 0, 0.5) == 1
    assert "error: browser: boom" in capsys.readouterr().out
    failing = [clean[0], phase("2_shared", [2.5], problems=["status 'error'"])]
    assert lt.summarise([cold, serial, single, *failing], args, serial, single, cold, [], 0, 0) == 1
