"""A real Streamlit server and Debian's Chromium: what the browser tests and the load test share.

Not part of the app: it starts the app as a reader's browser would reach it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
APP_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def app_process(
    env: Mapping[str, str] | None = None,
    options: Mapping[str, str] | None = None,
    stderr: IO[str] | int = subprocess.DEVNULL,
    timeout: float = 120,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Serve app.py on a free port, with extra `--option value`s, until the block ends; yield
    its base URL, once healthy, and its process."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
    command += ["--server.port", str(port), "--server.address", "127.0.0.1"]
    command += ["--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    for option, value in (options or {}).items():
        command += [f"--{option}", value]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process, timeout)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def streamlit_server(env: Mapping[str, str] | None = None, timeout: float = 120) -> Iterator[str]:
    """Serve app.py on a free port until the block ends; yield its base URL."""
    with app_process(env, timeout=timeout) as (base, _):
        yield base


def wait_healthy(base: str, process: subprocess.Popen, timeout: float) -> None:
    """Return once the server answers its health check; raise if it exits or times out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as answer:
                if answer.read().strip() == b"ok":
                    return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Streamlit server did not start") from None
            time.sleep(0.3)


def wait_idle(page, timeout: float = 120_000) -> None:
    """Wait until the app has finished its run (after a short grace for a rerun to start)."""
    page.wait_for_timeout(300)
    page.wait_for_selector(APP_IDLE, timeout=timeout)
