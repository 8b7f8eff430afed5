"""`rss_hostile_mb`: the server's peak memory after strangers' links at the largest sizes.

A child process plays the server: it opens /cache, /flow and /plan through AppTest with 8
distinct prompts of the largest allowed length (KV_LENS_MAX_PROMPT_TOKENS tokens) and the most
tokens a link may ask for, keeping every result in the shared store as a server would, and
reports its peak resident memory. Its budget is KV_LENS_MAX_CACHE_MB; the target is ≤ 1.6 GB.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import report

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PROMPTS = 8
WORDS = [
    "cache",
    "layer",
    "token",
    "state",
    "attention",
    "value",
    "key",
    "model",
    "carry",
    "forward",
    "pyramid",
    "hidden",
    "logit",
    "lens",
    "surgery",
    "memory",
    "feedback",
    "recurrent",
    "sequence",
    "prompt",
    "reader",
    "stranger",
    "budget",
]


def long_prompt(index: int, tokens: int) -> str:
    """A distinct prompt of about `tokens` tokens (one word ≈ one token here)."""
    return " ".join(WORDS[(index * 7 + i * (index + 3)) % len(WORDS)] for i in range(tokens))


def child() -> None:
    from streamlit.testing.v1 import AppTest

    from lib.settings import SETTINGS
    from lib.ui import resources

    for index in range(PROMPTS):
        query = {
            "prompt": long_prompt(index, SETTINGS.max_prompt_tokens + 20),
            "new": str(SETTINGS.max_new_tokens),
        }
        for page in ("cache", "flow", "plan"):
            at = AppTest.from_file(APP, default_timeout=3600)
            at.query_params.update(query)
            at.switch_page(f"views/{page}.py")
            at.run()
            assert not at.exception, (page, at.exception)
        use = resources.store().use()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"prompt {index + 1}: peak {peak:.0f} MB, store {use.used_bytes >> 20} MB", flush=True
        )
    print(f"PEAK {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")


def run() -> None:
    # A results folder of its own: prompts stored by an earlier run would be read, not computed.
    with tempfile.TemporaryDirectory() as results:
        done = subprocess.run(
            [sys.executable, "-m", "bench.memory", "--child"],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "KV_LENS_RESULTS_DIR": results},
        )
    print(done.stdout, end="", file=sys.stderr)  # the child's progress, and why it failed
    done.check_returncode()
    peak = next(line for line in done.stdout.splitlines() if line.startswith("PEAK"))
    report("rss_hostile_mb", float(peak.split()[1]))


if __name__ == "__main__" and sys.argv[1:] == ["--child"]:
    child()
