"""`make loadtest`: N Chromium sessions against one local server, each on its own page and prompt.

Every session opens its view, then clicks through selections (new token/layer in the link) for
a fixed number of rounds. Reported: errors (exception boxes, time-outs), p50/p95 seconds to a
rendered view, and the server's peak resident memory. Traffic stays on 127.0.0.1.
Not part of `make bench` (it is not a ratio against transformers): run it on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from urllib.parse import urlencode

import psutil
from playwright.async_api import async_playwright

from bench.common import report
from tests.browser.server import APP_IDLE, CHROMIUM, CHROMIUM_ARGS, streamlit_server

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


def session_urls(base: str, index: int, rounds: int) -> list[str]:
    page = PAGES[index % len(PAGES)]
    prompt = PROMPTS[index % len(PROMPTS)]
    return [
        f"{base}/{page}?{urlencode({'prompt': prompt, 'new': 12, 'token': 2 + r, 'layer': 1 + r})}"
        for r in range(rounds)
    ]


async def run_session(browser, urls: list[str], times: list[float], errors: list[str]) -> None:
    context = await browser.new_context(viewport={"width": 1300, "height": 900})
    page = await context.new_page()
    for url in urls:
        start = time.perf_counter()
        try:
            await page.goto(url)
            await page.wait_for_timeout(300)
            await page.wait_for_selector(APP_IDLE, timeout=120_000)
            times.append(time.perf_counter() - start)
            if await page.locator("[data-testid='stException']").count():
                errors.append(f"exception at {url}")
        except Exception as error:  # a time-out or a crash is an error to count, not to raise
            errors.append(f"{type(error).__name__} at {url}")
    await context.close()


def watch_rss(pid: int, peak: list[int], stop: threading.Event) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        try:
            rss = process.memory_info().rss + sum(
                child.memory_info().rss for child in process.children(recursive=True)
            )
        except psutil.Error:
            break
        peak[0] = max(peak[0], rss)
        time.sleep(0.2)


async def load(base: str, sessions: int, rounds: int) -> tuple[list[float], list[str]]:
    times: list[float] = []
    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        await asyncio.gather(
            *(
                run_session(browser, session_urls(base, index, rounds), times, errors)
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
        peak, stop = [0], threading.Event()
        watcher = threading.Thread(target=watch_rss, args=(server.pid, peak, stop), daemon=True)
        watcher.start()
        times, errors = asyncio.run(load(base, args.sessions, args.rounds))
        stop.set()
    for error in errors:
        print(f"error: {error}")
    report("loadtest_sessions", args.sessions)
    report("loadtest_errors", len(errors))
    report("loadtest_p50_s", statistics.median(times) if times else float("nan"))
    report(
        "loadtest_p95_s", statistics.quantiles(times, n=20)[-1] if len(times) > 1 else float("nan")
    )
    report("loadtest_server_peak_rss_mb", peak[0] / 2**20)


if __name__ == "__main__":
    main()
