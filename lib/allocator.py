"""Hand freed tensor memory back to the operating system, so a server's peak stays near its need.

glibc's malloc raises its mmap threshold each time a large block is freed (up to 32 MiB), after
which blocks of a view's working tensors (activations, full-vocabulary logits) come from heaps
that keep their freed pages; and every Streamlit session thread may get its own heap. Measured
on /flow at 256 tokens with the real model, a process kept ~420 MB it no longer used after the
cone and the surgery, and its peak was 220 MB higher than with the two settings below (1666 vs
1446 MB). Fixing the threshold keeps every large block a mapping of its own, returned on free;
two heaps bound what idle threads hold. Other C libraries (macOS, musl) are left as they are.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import cache

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's initial value, now fixed
ARENAS = 2


@cache
def return_freed_memory() -> bool:
    """Set glibc's malloc to return large freed blocks at once; False where it is not glibc.
    Once per process: the settings are process-wide."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        libc.mallopt(M_ARENA_MAX, ARENAS)
    )


@cache
def set_aside_long_lived() -> None:
    """Freeze what is alive when the first result store is made — the imported modules, which
    live as long as the process — out of the cyclic garbage collector's scans, once per process.
    A full collection then takes ~2 ms instead of ~400 ms (457,000 objects with the model
    loaded, measured), so the store can afford one before every computation
    (`ResultStore.compute`). Without those collections, the reference cycles of finished views
    (in the benchmark's AppTest sessions: Streamlit's messages, tables, generation steps)
    waited for Python's rare full collections, and a server's peak rose ~45 MB with every long
    prompt (`rss_hostile_mb`)."""
    gc.collect()
    gc.freeze()
