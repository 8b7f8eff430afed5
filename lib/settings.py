"""Server-wide limits and modes, read once from the environment.

Each limit is a named setting with a default fit for a 1 GB host; pages say so when one bites.
Workshop mode (`KV_LENS_WORKSHOP=1`, or `make run WORKSHOP=1`) locks the model, lowers the
sizes and opens on a starter prompt, so a room of laptops behaves the same.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

WORKSHOP_STARTER = "Alice has 3 apples. Bob gives her 2 more. Now Alice has"


@dataclass(frozen=True)
class Settings:
    workshop: bool
    max_prompt_tokens: int  # KV_LENS_MAX_PROMPT_TOKENS
    max_new_tokens: int  # KV_LENS_MAX_NEW_TOKENS
    max_grid_tokens: int  # KV_LENS_MAX_GRID_TOKENS: sequence length for gradient and surgery views
    weights: str  # KV_LENS_WEIGHTS: float32, or bfloat16 to halve the weights on small hosts
    starter_prompt: str
    max_cache_mb: int  # KV_LENS_MAX_CACHE_MB: every computed result together, in MiB
    results_dir: str  # KV_LENS_RESULTS_DIR: results kept on disk ("off": none); see lib/store.py
    max_disk_mb: int  # KV_LENS_MAX_DISK_MB: the results on disk together, in MiB


def _number(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    try:
        return min(max(int(env.get(name, default)), low), high)
    except ValueError:
        return default


def from_environment(env: Mapping[str, str] = os.environ) -> Settings:
    workshop = env.get("KV_LENS_WORKSHOP", "").lower() in {"1", "true", "yes", "on"}
    weights = env.get("KV_LENS_WEIGHTS", "float32")
    return Settings(
        workshop=workshop,
        max_prompt_tokens=_number(
            env, "KV_LENS_MAX_PROMPT_TOKENS", 64 if workshop else 128, 4, 512
        ),
        max_new_tokens=_number(env, "KV_LENS_MAX_NEW_TOKENS", 48 if workshop else 128, 1, 256),
        max_grid_tokens=_number(env, "KV_LENS_MAX_GRID_TOKENS", 96 if workshop else 192, 8, 768),
        weights=weights if weights in {"float32", "bfloat16"} else "float32",
        starter_prompt=env.get("KV_LENS_STARTER_PROMPT", WORKSHOP_STARTER if workshop else ""),
        max_cache_mb=_number(env, "KV_LENS_MAX_CACHE_MB", 128, 16, 65_536),
        results_dir=env.get("KV_LENS_RESULTS_DIR", ""),
        max_disk_mb=_number(env, "KV_LENS_MAX_DISK_MB", 2048, 64, 1 << 20),
    )


SETTINGS = from_environment()
