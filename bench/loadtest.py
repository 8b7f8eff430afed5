"""`make loadtest`: N Chromium sessions against one local server, each on its own page and prompt.

A first visit loads the model (reported as the cold start). Then every session opens its page
with its own prompt (all at once, on cold caches of generations and traces), then moves a slider
one step per round, as a reader exploring the view would. Reported: errors (exception boxes,
time-outs), p50/p95 seconds to a rendered view (all views; opening ones; moves), the slowest
views, the server's peak resident memory, and the CPU seconds of the server and of the browsers:
they share the machine's cores, so the browsers' rendering is part of every time. Traffic stays
on 127.0.0.1.
Not part of `make bench` (it is not a ratio against transformers): run it on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import unquote_plus, urlencode

import psutil
from playwright.async_api import async_playwright

from bench.common import report
from lib.serve import APP_IDLE, CHROMIUM, CHROMIUM_ARGS, streamlit_server

SLOWEST_SHOWN = 5
OPEN = "open"  # how an opening view's entry in the times starts
WARM_UP = {"prompt": "Hello", "new": 1}  # the first visit, before the clock of the sessions
PAGES = ["", "cache", "flow", "plan", "architectures"]
PROMPTS = [
    "The cure for cancer is",
    "Alice has 3 apples. Bob gives her 2 more. Now Alice has",
    "Roses are red, violets are blue,",
    "The capital of France is Paris. The capital of Italy is",
    "Once upon a time, a small robot",
    "def fibonacci(n):",
    "The best way to learn a language is",
    "In 1969, the first people to walk on the Moon were",
]


def session_url(base: str, index: int) -> str:
    page = PAGES[index % len(PAGES)]
    return f"{base}/{page}?{urlencode({'prompt': PROMPTS[index % len(PROMPTS)], 'new': 12})}"


async def settled(
    page, start: float, what: str, times: list[tuple[float, str]], errors: list[str]
) -> None:
    """Wait for the run to end (after a grace for it to start); note its time, and any error box."""
    await page.wait_for_timeout(300)
    await page.wait_for_selector(APP_IDLE, timeout=120_000)
    times.append((time.perf_counter() - start, what))
    if await page.locator("[data-testid='stException']").count():
        errors.append(f"exception at {what}")


async def nudge_a_slider(page) -> str:
    """Move the first slider of the page (the sidebar's on pages without one) one step, with the
    keyboard, as a reader exploring the view would; returns its label."""
    for area in ("stMain", "stSidebar"):
        sliders = page.locator(f"[data-testid='{area}'] [data-testid='stSlider']")
        if await sliders.count():
            label = (await sliders.first.locator("label").first.inner_text()).strip()
            await sliders.first.get_by_role("slider").press("ArrowRight")
            return label
    raise RuntimeError("no slider to move on this page")


async def run_session(
    browser, url: str, rounds: int, times: list[tuple[float, str]], errors: list[str]
) -> None:
    """Open `url`, then move a slider `rounds - 1` times; each view is timed until it settles."""
    context = await browser.new_context(viewport={"width": 1300, "height": 900})
    page = await context.new_page()
    what = unquote_plus(url.partition("//")[2].partition("/")[2])
    try:
        start = time.perf_counter()
        await page.goto(url)
        await settled(page, start, f"{OPEN} {what}", times, errors)
        for _ in range(rounds - 1):
            start = time.perf_counter()
            label = await nudge_a_slider(page)
            await settled(page, start, f"move '{label}' on {what}", times, errors)
    except Exception as error:  # a time-out or a crash is an error to count, not to raise
        errors.append(f"{type(error).__name__} at {page.url}")
    await context.close()


def p95(seconds: list[float]) -> float:
    return statistics.quantiles(seconds, n=20)[-1] if len(seconds) > 1 else float("nan")


@dataclass
class Usage:
    """What the processes used while the sessions ran: the server's peak resident memory, and
    the CPU seconds of the server and of the browsers, which share the machine's cores."""

    peak_rss: int = 0
    cpu: dict[int, tuple[str, float]] = field(default_factory=dict)  # pid -> (who, seconds)

    def seconds(self, who: str) -> float:
        return sum(seconds for name, seconds in self.cpu.values() if name == who)


def watch(server: psutil.Process, usage: Usage, stop: threading.Event) -> None:
    """Sample until `stop`; a process's CPU time is kept from its last sample before it ends."""
    start = sum(server.cpu_times()[:2])
    while not stop.is_set():
        try:
            serving = [server, *server.children(recursive=True)]
            usage.peak_rss = max(usage.peak_rss, sum(p.memory_info().rss for p in serving))
        except psutil.Error:
            break
        browsers = [p for p in psutil.Process().children(recursive=True) if p not in serving]
        for who, processes in (("server", serving), ("browser", browsers)):
            for process in processes:
                before = start if process is server else 0.0  # its start-up is not load
                with contextlib.suppress(psutil.Error):
                    usage.cpu[process.pid] = (who, sum(process.cpu_times()[:2]) - before)
        time.sleep(0.2)


async def load(base: str, sessions: int, rounds: int) -> tuple[list[tuple[float, str]], list[str]]:
    """The first visit to a fresh server (it loads the model) is timed on its own, as the cold
    start, and comes first in the times; then all sessions open their views at once."""
    times: list[tuple[float, str]] = []
    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        await run_session(browser, f"{base}/?{urlencode(WARM_UP)}", 1, times, errors)
        await asyncio.gather(
            *(
                run_session(browser, session_url(base, index), rounds, times, errors)
                for index in range(sessions)
            )
        )
        await browser.close()
    return times, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with streamlit_server() as base:
        server = next(
            p for p in psutil.Process().children() if "streamlit" in " ".join(p.cmdline())
        )
        usage, stop = Usage(), threading.Event()
        watcher = threading.Thread(target=watch, args=(server, usage, stop), daemon=True)
        watcher.start()
        times, errors = asyncio.run(load(base, args.sessions, args.rounds))
        stop.set()
    for error in errors:
        print(f"error: {error}")
    (cold_start, _), times = times[0], times[1:]
    for seconds, what in sorted(times, reverse=True)[:SLOWEST_SHOWN]:
        print(f"slow: {seconds:5.1f} s  {what}")
    report("loadtest_cold_start_s", cold_start)
    report("loadtest_sessions", args.sessions)
    report("loadtest_errors", len(errors))
    everything = [seconds for seconds, _ in times]
    opening = [seconds for seconds, what in times if what.startswith(OPEN)]
    moving = [seconds for seconds, what in times if not what.startswith(OPEN)]
    for name, seconds in (("", everything), ("_open", opening), ("_move", moving)):
        report(f"loadtest{name}_p50_s", statistics.median(seconds) if seconds else float("nan"))
        report(f"loadtest{name}_p95_s", p95(seconds))
    report("loadtest_server_peak_rss_mb", usage.peak_rss / 2**20)
    report("loadtest_server_cpu_s", usage.seconds("server"))
    report("loadtest_browser_cpu_s", usage.seconds("browser"))


if __name__ == "__main__":
    main()
