"""`make loadtest`: the server under N concurrent sessions, each driven without a browser.

Every session speaks Streamlit's WebSocket protocol as a browser tab does
(`bench/loadtest_socket.py`): it opens a page URL with its query parameters and waits until the
script run has finished (a finished view), then, after looking at it for `--pause` seconds (2 by
default; a person reads before moving a control), changes one selection of the view (`--rounds
2`, the default) and waits again. The server computes and renders exactly as for a
browser; no browser shares its cores. One real Chromium session then opens the measured views,
as a check that they render (no exception box, their charts drawn). `--driver agent` drives the
sessions through Streamlit's agent HTTP API instead (`bench/loadtest_agent.py`), which costs the
server more per view (below).

The server starts fresh, with an empty results folder (a temporary `KV_LENS_RESULTS_DIR`), so
nothing was computed before; a first visit loads the model (the cold start). Then:

1. serial: the views of the distinct case one after another, each on a fresh prompt, then one
   view of the shared case on a fresh prompt: every session alone on the server;
2. for each N of `--sessions`: N sessions at once, each on its own prompt (distinct); then N
   sessions at once on one new link (shared). No prompt is used twice in a run.

Reported per N: p50/p95 seconds to a finished view (and to the view after the selection),
errors (a run that raised, an error box, a refused request, a view other than the one asked
for: must be 0), the server's peak RSS (server process and children), its CPU seconds, and the
computations it logged (`kv-lens: computed …` on its stderr). Targets, as ratios of this run:

* `loadtest_N_distinct_ratio` = p95 ÷ (serial sum of the same N views ÷ model workers) ≤ 1.3:
  a server process serialises its model calls with one lock, so one worker per process;
  beyond that, no overhead;
* `loadtest_N_shared_ratio` = p95 ÷ one session's time on a fresh link ≤ 1.5: the link is
  computed once (lib/store.py), the other sessions wait for it and render.

`--replicas N` starts N server processes sharing the results folder, as compose.yaml's replicas
behind their sticky proxy do, and spreads the concurrent sessions over them (session `i` on
process `i mod N`); the serial phases and the cold start use the first. One process renders on
one core at a time (Python's interpreter lock), so on a host with more cores a crowd on one link
is rendered faster by more processes.

The server runs torch on one thread per model call (`--torch-threads 1`, the default): model
calls are serialised anyway, and on a small host shared with the sessions' rendering a second
intra-op thread mostly waits (on the 2 busy cores here /cache's two 8-token runs of the real
model took ~80 s with two threads, ~9 s with one). `--torch-threads 0` keeps torch's default.

Why tabs and not the agent API by default: for a session the agent API created, Streamlit
describes every element it sends and answers each finished run with a JSON snapshot of the page;
for a browser's session it does neither. When a stored /cache view cost ~1 CPU-s that was noise;
once it cost ~0.1 CPU-s, 32 agent sessions opening a stored view cost the server 3.1–3.5 CPU-s
against 2.2 CPU-s for 32 tabs (same server, same view, 2026-11-30).

Not part of `make bench`: run it on its own (`--model tiny-random` for a quick run). The exit
status is 1 when there was an error. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import psutil

from bench.common import report
from bench.loadtest_agent import AgentSession, count_types, problems, selection_move
from bench.loadtest_socket import SocketSession
from lib import site
from lib.serve import CHROMIUM, CHROMIUM_ARGS, app_process, wait_idle

DEFAULT_MODEL = "smollm2-135m"  # lib.models.DEFAULT_MODEL (not imported: it imports torch)
DEFAULT_SESSIONS = (8, 32)
COMPUTED = "kv-lens: computed "  # the line lib.store logs for every result it computes
# How a session speaks to the server: as a browser tab does (default), or through the agent API.
DRIVERS = {"socket": SocketSession, "agent": AgentSession}
AGENT_OPTIONS = {
    "server.enableAgentApi": "true",
    "server.agentWaitTimeout": "600",  # answer when the view is finished, not `wait_timed_out`
    "server.agentSessionTTL": "30",  # done sessions leave, as a closed browser tab's do
    "server.agentMaxSessions": "1000",
}
# What a reader exploring a view clicks next, per page: selections that rerun the page from its
# stored results (not `dtype`, which loads a second model).
SELECTIONS = {
    "cache": ("kvhead", "offgrid"),
    "flow": ("weight", "agg"),
    "architectures": ("generation",),
}
CHART_TYPES = ("altair_chart", "vega_lite_chart", "line_chart", "bar_chart", "area_chart")
CHART_DRAWN = "[data-testid='stVegaLiteChart'] :is(canvas, svg)"  # in the browser
WARM_UP = {"prompt": "Hello", "new": "2"}  # the first visit: it loads the model
PROMPTS = (
    "The cure for cancer is",
    "Alice has 3 apples. Bob gives her 2 more. Now Alice has",
    "Roses are red, violets are blue,",
    "Once upon a time, a small robot",
    "def fibonacci(n):",
    "The best way to learn a language is",
    "In 1969, the first people to walk on the Moon were",
    "My favourite season is autumn because",
)
SHARED_PROMPT = "The capital of France is Paris. The capital of Italy is"
SERIAL, SHARED_SERIAL = 0, 1  # the phases before the concurrent ones, for fresh prompts


@dataclass(frozen=True)
class View:
    """One link: a page and its URL parameters."""

    page: str
    params: dict[str, str]

    def url(self, base: str) -> str:
        return f"{base}/{self.page}?{urlencode(self.params)}"

    def __or__(self, extra: Mapping[str, str]) -> View:
        return View(self.page, {**self.params, **extra})


def fresh_prompt(base: str, phase: int, index: int) -> str:
    """A prompt used once in a run: `base` with a marker unique to (phase, index). The marker
    has the same length in every phase, so view `index` costs alike in all of them."""
    if not 0 <= index < 1000 or not 0 <= phase < 9:
        raise ValueError("at most 9 phases of 1000 sessions")
    return f"Note {1000 * (phase + 1) + index}. {base}"


def distinct_views(phase: int, count: int, page: str, new: int, model: str) -> list[View]:
    """`count` views of `page`, each on its own prompt: view `i` of every phase differs only by
    its marker."""
    return [
        View(page, {"prompt": fresh_prompt(PROMPTS[i % len(PROMPTS)], phase, i), "new": str(new)})
        | model_param(model)
        for i in range(count)
    ]


def shared_view(phase: int, page: str, new: int, model: str) -> View:
    return View(page, {"prompt": fresh_prompt(SHARED_PROMPT, phase, 0), "new": str(new)}) | (
        model_param(model)
    )


def model_param(model: str) -> dict[str, str]:
    return {} if model == DEFAULT_MODEL else {"model": model}


def threads_env(threads: int) -> dict[str, str]:
    """The server's environment for `threads` torch threads per model call (0: torch's own
    choice, one per core). The model's calls are serialised by one lock; on a small host
    shared with other sessions' rendering (or other work), more threads than one mostly wait
    for each other (lib/toy/common.py measured 10-100× on 2 busy cores)."""
    if threads <= 0:
        return {}
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100), linear between closest ranks (numpy's default); never
    outside the data."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def distinct_ratio(p95: float, serial_times: Sequence[float], workers: int) -> float:
    """p95 of N concurrent distinct views ÷ (the same N views' serial sum ÷ model workers)."""
    return p95 / (sum(serial_times) / workers)


def shared_ratio(p95: float, single: float) -> float:
    """p95 of N concurrent sessions on one link ÷ one session's time on a fresh link."""
    return p95 / single


DISTINCT_TARGET, SHARED_TARGET = 1.3, 1.5  # the ceilings for the two ratios


@dataclass(frozen=True)
class Row:
    """One line of the figures table: N sessions of one case."""

    sessions: int
    case: str  # "distinct" or "shared"
    p50: float
    p95: float
    errors: int
    peak_rss_mb: float
    ratio: float
    target: float

    @property
    def met(self) -> bool:
        return self.ratio <= self.target


def rows(
    by_name: Mapping[str, Phase],
    sessions: Sequence[int],
    serial: Phase,
    single_s: float,
    workers: int,
) -> list[Row]:
    """The table's rows: per N, the distinct and the shared case against their targets."""
    found = []
    for count in sessions:
        for case in ("distinct", "shared"):
            phase = by_name[f"{count}_{case}"]
            p95 = percentile(phase.opened, 95)
            if case == "distinct":
                serial_times = serial.opened[:count]
                ratio = (
                    distinct_ratio(p95, serial_times, workers)
                    if len(serial_times) == count
                    else float("nan")
                )
                target = DISTINCT_TARGET
            else:
                ratio, target = shared_ratio(p95, single_s), SHARED_TARGET
            found.append(
                Row(
                    count,
                    case,
                    percentile(phase.opened, 50),
                    p95,
                    len(phase.errors),
                    phase.peak_rss / 2**20,
                    ratio,
                    target,
                )
            )
    return found


def table(found: Sequence[Row]) -> str:
    """The figures as a Markdown table, as the README records them."""
    names = {"distinct": "distinct prompts", "shared": "one shared link"}
    lines = [
        "| sessions | case | p50 s | p95 s | errors | peak RSS MB | ratio | target |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in found:
        verdict = "met" if row.met else "missed"
        lines.append(
            f"| {row.sessions} | {names[row.case]} | {row.p50:.1f} | {row.p95:.1f} | "
            f"{row.errors} | {row.peak_rss_mb:.0f} | {row.ratio:.2f} | "
            f"≤ {row.target} {verdict} |"
        )
    return "\n".join(lines)


@dataclass
class Visit:
    """One session: seconds to its finished view, to each view after a selection, problems."""

    view: View
    opened: float | None = None
    moves: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    charts: int = 0  # charts in the finished view, for the browser check


def visit(
    base: str,
    view: View,
    rounds: int,
    start: Callable[[], None] = lambda: None,
    driver: str = "socket",
    pause: float = 0.0,
) -> Visit:
    """Open `view` in a new session, then change a selection `rounds - 1` times, each `pause`
    seconds after the last finished view; each timed from the request to the finished view.
    Failures are recorded, not raised."""
    record = Visit(view)
    expect = {name: view.params[name] for name in ("prompt", "new") if name in view.params}
    start()
    try:
        with contextlib.closing(DRIVERS[driver](base)) as session:
            began = time.perf_counter()
            snapshot = session.open(view.page, view.params)
            record.opened = time.perf_counter() - began
            record.problems += problems(snapshot, view.page, expect)
            record.charts = count_types(snapshot, CHART_TYPES)
            for _ in range(rounds - 1):
                move = selection_move(snapshot, SELECTIONS.get(view.page, ()))
                if move is None:
                    break
                time.sleep(pause)
                began = time.perf_counter()
                snapshot = session.set(*move)
                record.moves.append(time.perf_counter() - began)
                record.problems += problems(snapshot, view.page, expect)
                if snapshot.get("query_params", {}).get(move[0]) != [move[1]]:
                    record.problems.append(f"{move[0]} is not {move[1]!r} after the selection")
    except Exception as error:  # a refusal, a time-out or a dropped connection: an error
        record.problems.append(f"{type(error).__name__}: {error}")
    return record


def concurrently(
    bases: Sequence[str],
    views: Sequence[View],
    rounds: int,
    driver: str = "socket",
    pause: float = 0.0,
) -> list[Visit]:
    """All views at once: every session waits at one barrier, then sends its first request.
    Session `i` stays on server `i mod len(bases)`, as a sticky proxy would spread them."""
    barrier = threading.Barrier(len(views))
    with ThreadPoolExecutor(max_workers=len(views)) as pool:
        futures = [
            pool.submit(visit, bases[i % len(bases)], view, rounds, barrier.wait, driver, pause)
            for i, view in enumerate(views)
        ]
        return [future.result() for future in futures]


class Server:
    """The app as `replicas` processes on free ports sharing one results folder (as replicas
    behind a proxy do, compose.yaml), with the agent API on; each one's stderr kept in a file
    to count the computations it logs; their resident memory and CPU time sampled together
    every 0.2 s."""

    def __init__(self, env: Mapping[str, str], folder: Path, replicas: int = 1) -> None:
        self.env = env
        self.logs = [folder / f"server-{index}.log" for index in range(replicas)]
        self.samples: list[tuple[float, int, float]] = []  # (time, RSS bytes, CPU seconds)
        self._stop = threading.Event()

    @contextlib.contextmanager
    def running(self, timeout: float = 180) -> Iterator[list[str]]:
        """The servers' base URLs while they run."""
        with contextlib.ExitStack() as stack:
            started = [stack.enter_context(self._process(log, timeout)) for log in self.logs]
            pids = [pid for _, pid in started]
            threading.Thread(target=self._watch, args=(pids,), daemon=True).start()
            stack.callback(self._stop.set)
            yield [base for base, _ in started]

    @contextlib.contextmanager
    def _process(self, log_path: Path, timeout: float) -> Iterator[tuple[str, int]]:
        with log_path.open("w") as log:
            started = app_process(self.env, AGENT_OPTIONS, log, timeout)
            with started as (base, process):
                yield base, process.pid

    def _watch(self, pids: list[int]) -> None:
        servers = [psutil.Process(pid) for pid in pids]
        while not self._stop.is_set():
            try:
                processes = [p for server in servers for p in (server, *server.children(True))]
                rss = sum(process.memory_info().rss for process in processes)
                cpu = sum(sum(process.cpu_times()[:2]) for process in processes)
            except psutil.Error:
                break
            self.samples.append((time.perf_counter(), rss, cpu))
            time.sleep(0.2)

    def computations(self) -> int:
        """The results the servers have computed so far: their `kv-lens: computed …` lines
        (counted as occurrences, since two threads' lines can share a line of a file)."""
        return sum(log.read_text().count(COMPUTED) for log in self.logs)

    def usage(self, since: float, until: float) -> tuple[int, float]:
        """Peak RSS (bytes) and CPU seconds of the servers together between two `perf_counter`
        times."""
        inside = [sample for sample in self.samples if since <= sample[0] <= until]
        if not inside:
            return 0, 0.0
        before = [sample for sample in self.samples if sample[0] < since]
        cpu_start = before[-1][2] if before else inside[0][2]
        return max(rss for _, rss, _ in inside), inside[-1][2] - cpu_start


@dataclass
class Phase:
    """A set of sessions and what the server did meanwhile."""

    name: str
    visits: list[Visit]
    seconds: float
    peak_rss: int
    cpu: float
    computations: int

    @property
    def opened(self) -> list[float]:
        return [visit.opened for visit in self.visits if visit.opened is not None]

    @property
    def moves(self) -> list[float]:
        return [seconds for visit in self.visits for seconds in visit.moves]

    @property
    def errors(self) -> list[str]:
        return [
            f"{self.name}: {problem} ({visit.view.page} {visit.view.params.get('prompt')!r})"
            for visit in self.visits
            for problem in visit.problems
        ]


def measure(server: Server, name: str, work: Callable[[], list[Visit]]) -> Phase:
    done = server.computations()
    began = time.perf_counter()
    visits = work()
    ended = time.perf_counter()
    time.sleep(0.5)  # a last sample of the server
    peak, cpu = server.usage(began, ended)
    return Phase(name, visits, ended - began, peak, cpu, server.computations() - done)


def browser_check(base: str, visits: Sequence[Visit]) -> list[str]:
    """One Chromium session opens each view (already computed): it must finish its run with
    no exception box, and draw charts where the agent's snapshot of that view had some."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    found = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1300, "height": 900}).new_page()
        for checked in visits:
            url = checked.view.url(base)
            try:
                page.goto(url)
                wait_idle(page, timeout=600_000)
                if page.locator("[data-testid='stException']").count():
                    found.append(f"browser: an exception box on {url}")
                if checked.charts:  # drawn after the run ends: wait for the first
                    try:
                        page.wait_for_selector(CHART_DRAWN, timeout=60_000)
                    except PlaywrightTimeout:
                        found.append(f"browser: no chart drawn on {url}")
            except Exception as error:
                found.append(f"browser: {type(error).__name__} on {url}")
        browser.close()
    return found


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="The server under concurrent sessions, each driven without a browser."
    )
    parser.add_argument(
        "--sessions",
        type=int,
        nargs="+",
        default=list(DEFAULT_SESSIONS),
        metavar="N",
        help="concurrent sessions, one load per number (default: 8 32)",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model id (tiny-random: quick)")
    parser.add_argument(
        "--page",
        default="cache",
        choices=[page.path for page in site.PAGES if page.path != "tracking"],
        help="the page every session opens (default: cache)",
    )
    parser.add_argument("--new", type=int, default=8, help="tokens generated per view (8)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="finished views per session: the opening one, then one per selection change (2)",
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=2.0,
        help="seconds a session looks at a finished view before changing a selection (2; 0: at "
        "once, which no reader does, and which puts the selections of the first sessions "
        "served among the views still being opened)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch's threads in the server (OMP_NUM_THREADS; 0: torch's default, one per core)",
    )
    parser.add_argument(
        "--driver",
        default="socket",
        choices=list(DRIVERS),
        help="sessions speak Streamlit's WebSocket protocol as a browser tab does (socket, the "
        "default), or drive the app through its agent HTTP API (agent)",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="server processes sharing the results folder, sessions spread over them (1)",
    )
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium check")
    args = parser.parse_args(argv)
    if min(args.sessions) < 1 or max(args.sessions) > 999 or args.rounds < 1:
        parser.error("sessions must be 1–999 and rounds at least 1")
    if not 0 <= args.pause <= 600:
        parser.error("pause must be 0–600 seconds")
    if not 1 <= args.replicas <= 8:
        parser.error("replicas must be 1–8")
    if args.new < 2:  # the app drops `new=1` from the URL (the slider's default is its minimum)
        parser.error("--new must be at least 2")
    if 2 * len(args.sessions) + 2 > 9:
        parser.error("at most 3 numbers of sessions")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # A `kill` ends the run through the `finally` clauses, which stop the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    page, new, model, rounds, driver = args.page, args.new, args.model, args.rounds, args.driver
    pause = args.pause
    load_before = os.getloadavg()[0]
    largest = max(args.sessions)
    phases: list[Phase] = []
    with tempfile.TemporaryDirectory(prefix="kv-lens-loadtest-") as work:
        results = Path(work) / "results"
        env = {"KV_LENS_RESULTS_DIR": str(results)} | threads_env(args.torch_threads)
        server = Server(env, Path(work), args.replicas)
        with server.running() as bases:
            base = bases[0]
            print(
                f"view: /{page}?new={new}, model {model}, {rounds} finished views per session "
                f"(a selection {pause:g} s after a view), sessions driven by {driver}"
            )
            print(f"server: {' '.join(f'{k}={v}' for k, v in env.items() if 'THREADS' in k)}")
            warm_up = View("", WARM_UP) | model_param(model)
            cold = measure(server, "cold", lambda: [visit(base, warm_up, 1, driver=driver)])
            for other in bases[1:]:  # every replica loads its model before the measures
                visit(other, warm_up, 1, driver=driver)
            serial_views = distinct_views(SERIAL, largest, page, new, model)
            serial = measure(
                server,
                "serial",
                lambda: [
                    visit(base, view, rounds, driver=driver, pause=pause) for view in serial_views
                ],
            )
            single = measure(
                server,
                "single",
                lambda: [
                    visit(
                        base,
                        shared_view(SHARED_SERIAL, page, new, model),
                        rounds,
                        driver=driver,
                        pause=pause,
                    )
                ],
            )
            phases += [cold, serial, single]
            for number, count in enumerate(args.sessions):
                views = distinct_views(2 + 2 * number, count, page, new, model)
                phases.append(
                    measure(
                        server,
                        f"{count}_distinct",
                        lambda v=views: concurrently(bases, v, rounds, driver, pause),
                    )
                )
                link = shared_view(3 + 2 * number, page, new, model)
                phases.append(
                    measure(
                        server,
                        f"{count}_shared",
                        lambda c=count, v=link: concurrently(bases, [v] * c, rounds, driver, pause),
                    )
                )
            checked = [phases[-2].visits[0], phases[-1].visits[0]]
            browser_errors = [] if args.no_browser else browser_check(base, checked)
            overall_peak = max((rss for _, rss, _ in server.samples), default=0)
    return summarise(phases, args, serial, single, cold, browser_errors, overall_peak, load_before)


def summarise(
    phases: list[Phase],
    args: argparse.Namespace,
    serial: Phase,
    single: Phase,
    cold: Phase,
    browser_errors: list[str],
    overall_peak: int,
    load_before: float,
) -> int:
    errors = [error for phase in phases for error in phase.errors] + browser_errors
    for error in errors[:20]:
        print(f"error: {error}")
    if len(errors) > 20:
        print(f"error: … and {len(errors) - 20} more")
    by_name = {phase.name: phase for phase in phases}
    report("loadtest_cold_start_s", cold.visits[0].opened or float("nan"))
    report("loadtest_model_workers", args.replicas)
    report("loadtest_serial_p50_s", statistics.median(serial.opened or [float("nan")]))
    report("loadtest_serial_move_p50_s", statistics.median(serial.moves or [float("nan")]))
    report("loadtest_serial_computations_per_view", serial.computations / len(serial.visits))
    single_s = single.opened[0] if single.opened else float("nan")
    report("loadtest_shared_single_s", single_s)
    report("loadtest_shared_single_computations", single.computations)
    for count in args.sessions:
        report("loadtest_sessions", count)
        distinct, shared = by_name[f"{count}_distinct"], by_name[f"{count}_shared"]
        serial_sum = sum(serial.opened[:count]) if len(serial.opened) >= count else float("nan")
        for case, phase in (("distinct", distinct), ("shared", shared)):
            prefix = f"loadtest_{count}_{case}"
            report(f"{prefix}_p50_s", percentile(phase.opened, 50))
            report(f"{prefix}_p95_s", percentile(phase.opened, 95))
            if phase.moves:
                report(f"{prefix}_move_p50_s", percentile(phase.moves, 50))
                report(f"{prefix}_move_p95_s", percentile(phase.moves, 95))
            report(f"{prefix}_errors", len(phase.errors))
            report(f"{prefix}_computations", phase.computations)
            report(f"{prefix}_wall_s", phase.seconds)
            report(f"{prefix}_server_cpu_s", phase.cpu)
            report(f"{prefix}_peak_rss_mb", phase.peak_rss / 2**20)
        report(f"loadtest_{count}_distinct_serial_sum_s", serial_sum)
        p95 = percentile(distinct.opened, 95)
        report(
            f"loadtest_{count}_distinct_ratio",
            distinct_ratio(p95, serial.opened[:count], args.replicas),
        )
        report(
            f"loadtest_{count}_shared_ratio", shared_ratio(percentile(shared.opened, 95), single_s)
        )
    report("loadtest_browser_errors", len(browser_errors))
    report("loadtest_errors", len(errors))
    report("loadtest_server_peak_rss_mb", overall_peak / 2**20)
    report("loadtest_load_1m_before", load_before)
    load_after = os.getloadavg()
    report("loadtest_load_1m_after", load_after[0])
    print()
    print(
        f"/{args.page}?new={args.new}, model {args.model}: one view alone "
        f"{statistics.median(serial.opened or [float('nan')]):.1f} s (median of "
        f"{len(serial.opened)}), one fresh shared link alone {single_s:.1f} s; "
        f"{args.replicas} server process(es), one model worker each; load average "
        f"{load_before:.2f} before, "
        f"{load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f} after; "
        f"{os.cpu_count()} cores"
    )
    print(table(rows(by_name, args.sessions, serial, single_s, args.replicas)))
    print(f"errors: {len(errors)} (browser check: {len(browser_errors)})")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
