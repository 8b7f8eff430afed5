"""Workshop mode is read at start-up, so it is checked in a fresh interpreter."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json
from lib import config
v = config.from_query({"model": ["tiny-random"], "new": ["100"]})
print(json.dumps({"model": v.config.model, "new": v.config.new, "prompt": v.config.prompt,
                  "notices": v.notices, "allowed": config.allowed_models()}))
"""


def probe(**env: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_workshop_mode_locks_the_model_and_the_sizes():
    locked = probe(KV_LENS_WORKSHOP="1")
    assert locked["allowed"] == ["smollm2-135m"] and locked["model"] == "smollm2-135m"
    assert locked["new"] == 48 and len(locked["notices"]) == 2
    assert locked["prompt"].startswith("Alice")


def test_without_workshop_mode_the_registry_is_open():
    free = probe(KV_LENS_WORKSHOP="")
    assert free["model"] == "tiny-random" and free["new"] == 100 and free["notices"] == []
