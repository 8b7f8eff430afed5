"""Results shared by every session, kept within a byte budget and computed once per key.

Free-text prompts make the set of possible results unbounded, and one trace of a long sequence
holds about a hundred megabytes: a cache bounded by its number of entries lets a few strangers
with long prompts push a small host out of memory. Here every result is weighed when it is
stored, the least recently used ones leave when the total passes the budget, and sessions that
ask for the same key at once wait for one computation instead of each running the model.

Behind the memory, a folder on disk (`DiskTier`, a `diskcache.Cache`) keeps results across
restarts and across server processes that share it: a link opened by a crowd, or by a room of
laptops served by several replicas, is computed once. The first process to ask for a result
claims it in the folder, and the others wait for it there. Its keys carry a fingerprint of the
code that computes them, so a result is never served by code that would compute it differently.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import os
import pickle
import socket
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import cache, partial
from pathlib import Path
from typing import Any, Generic, TypeVar

import diskcache
import numpy as np
import pandas as pd
import torch

from lib import allocator

Value = TypeVar("Value")
OBJECT_BYTES = 64  # what a small Python object costs, roughly: a floor for what we do not weigh


def nbytes_of(value: Any, _seen: set[int] | None = None) -> int:
    """The memory a result holds: its arrays, tensors, tables and strings, followed through
    dataclasses and containers (each object counted once)."""
    seen = set() if _seen is None else _seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        # A view holds its whole buffer (read-only results, slices, unpickled and torch-backed
        # arrays are all views): weigh the array that owns it, once.
        owner = value
        while isinstance(owner.base, np.ndarray):
            owner = owner.base
        own = 0 if owner is not value and id(owner) in seen else owner.nbytes
        seen.add(id(owner))
        if value.dtype == object:
            own += sum(nbytes_of(item, seen) for item in value.ravel())
        return own + OBJECT_BYTES
    if isinstance(value, torch.Tensor):
        return value.element_size() * value.nelement() + OBJECT_BYTES
    if isinstance(value, pd.DataFrame):
        return int(value.memory_usage(deep=True).sum())
    if isinstance(value, pd.Series):
        return int(value.memory_usage(deep=True))
    if isinstance(value, str | bytes):
        return sys.getsizeof(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return OBJECT_BYTES + sum(
            nbytes_of(getattr(value, field.name), seen) for field in dataclasses.fields(value)
        )
    if isinstance(value, Mapping):
        return OBJECT_BYTES + sum(
            nbytes_of(key, seen) + nbytes_of(item, seen) for key, item in value.items()
        )
    if isinstance(value, list | tuple | set | frozenset):
        return OBJECT_BYTES + sum(nbytes_of(item, seen) for item in value)
    return OBJECT_BYTES


@cache
def code_fingerprint() -> str:
    """A digest of every source file of lib/: results computed by other code are not reused."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def digest_of(key: Hashable) -> str:
    """A stable name for a key, the same in every process: its representation (tuples of
    numbers, strings and frozen dataclasses) and the code fingerprint, hashed."""
    return hashlib.sha256(f"{code_fingerprint()}|{key!r}".encode()).hexdigest()


def call_digest(call: partial) -> str:
    """A name for what a call returns, from its function and the content of its arguments
    (pickled, then hashed): each run builds its page model anew, in new objects, and equal
    arguments must find the result of the first run. Arguments that pickle differently only
    miss; different arguments never share a name."""
    what = (call.func.__module__, call.func.__qualname__, call.args, sorted(call.keywords.items()))
    return hashlib.sha256(pickle.dumps(what, protocol=pickle.HIGHEST_PROTOCOL)).hexdigest()


CLAIM_SECONDS = 20.0  # a claim not renewed for this long belongs to a process that died
RENEW_SECONDS = 5.0
POLL_SECONDS = 0.05  # how often a process waiting for another's result looks at the folder


def claim_name(key: Hashable) -> str:
    return f"claim:{digest_of(key)}"


class DiskTier:
    """Results on disk, within `budget_bytes`, least recently used out first; safe for several
    threads and processes (SQLite underneath). Writes happen in the background.

    A process that computes a result claims it first (`claim`): replicas that open one link at
    once compute it once. A claim lives until the result is written, and is renewed meanwhile;
    one that is not renewed (its process died) expires, and a waiting process computes."""

    def __init__(self, folder: Path, budget_bytes: int) -> None:
        self._cache = diskcache.Cache(
            str(folder), size_limit=budget_bytes, eviction_policy="least-recently-used"
        )
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kv-lens-disk")
        self._held: set[str] = set()
        self._held_lock = threading.Lock()
        self._renewer: threading.Thread | None = None

    def get(self, key: Hashable) -> Any | None:
        return self._cache.get(digest_of(key))

    def put(self, key: Hashable, value: Any) -> None:
        self._writer.submit(self._cache.set, digest_of(key), value)

    def claim(self, key: Hashable) -> bool:
        """Whether this process is the one to compute `key`: no live claim of another holds it."""
        name = claim_name(key)
        holder = f"{socket.gethostname()}:{os.getpid()}"  # for a person reading the folder
        if not self._cache.add(name, holder, expire=CLAIM_SECONDS):
            return False
        with self._held_lock:
            self._held.add(name)
            if self._renewer is None:
                self._renewer = threading.Thread(
                    target=self._renew, name="kv-lens-claims", daemon=True
                )
                self._renewer.start()
        return True

    def release(self, key: Hashable) -> None:
        """Drop the claim of `key` once the writes queued before it (its result) are done."""
        self._writer.submit(self._drop, claim_name(key))

    def wait_for(self, key: Hashable) -> Any | None:
        """The result of `key` once the process that claimed it has written it; None when its
        claim ends without one (it failed, or died and the claim expired)."""
        name = claim_name(key)
        while name in self._cache:
            found = self.get(key)
            if found is not None:
                return found
            time.sleep(POLL_SECONDS)
        return self.get(key)  # written just before the claim was dropped, or never

    def _drop(self, name: str) -> None:
        with self._held_lock:
            self._held.discard(name)
        self._cache.delete(name)

    def _renew(self) -> None:
        while True:
            time.sleep(RENEW_SECONDS)
            with self._held_lock:
                held = list(self._held)
            for name in held:
                self._cache.touch(name, expire=CLAIM_SECONDS)

    def flush(self) -> None:
        """Wait for the writes under way (a warm-up command before it exits, tests)."""
        self._writer.submit(lambda: None).result()

    def volume(self) -> int:
        return int(self._cache.volume())


def log_computed(key: Hashable, seconds: float) -> None:
    """One line per computation on the server's stderr: what replicas and load tests count."""
    kind = key[0] if isinstance(key, tuple) and key else type(key).__name__
    print(f"kv-lens: computed {kind} {digest_of(key)[:12]} {seconds:.2f}s", file=sys.stderr)


@dataclasses.dataclass(frozen=True)
class StoreUse:
    """What a store holds now, for the README's memory table and the bench."""

    entries: int
    used_bytes: int
    budget_bytes: int
    evictions: int


class ResultStore(Generic[Value]):
    """A thread-safe least-recently-used store whose bound is bytes, not entries. `report` hears
    of each computation (by default a line on stderr, which replicas and load tests count)."""

    def __init__(
        self,
        budget_bytes: int,
        disk: DiskTier | None = None,
        report: Callable[[Hashable, float], None] | None = log_computed,
    ) -> None:
        self._budget = budget_bytes
        self.disk = disk
        self._report = report
        self._items: OrderedDict[Hashable, tuple[Value, int]] = OrderedDict()
        self._used = 0
        self._evictions = 0
        self._lock = threading.Lock()
        self._computing: dict[Hashable, threading.Lock] = {}
        allocator.set_aside_long_lived()  # so that `compute`'s collections cost milliseconds

    def get(self, key: Hashable) -> Value | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            self._items.move_to_end(key)
            return found[0]

    def put(self, key: Hashable, value: Value) -> None:
        """Keep `value` unless it alone is larger than the budget; evict the oldest to fit."""
        size = nbytes_of(value)
        with self._lock:
            if key in self._items:
                self._used -= self._items.pop(key)[1]
            if size > self._budget:
                return
            self._items[key] = (value, size)
            self._used += size
            while self._used > self._budget:
                _, (_, freed) = self._items.popitem(last=False)
                self._used -= freed
                self._evictions += 1

    def save(self, key: Hashable, value: Value) -> None:
        """Keep a new result in memory and, when there is one, on disk."""
        self.put(key, value)
        if self.disk is not None:
            self.disk.put(key, value)

    def compute(
        self, key: Hashable, make: Callable[[], Value], on_wait: Callable[[], None] = lambda: None
    ) -> Value:
        """The stored value of `key`, or `make()` stored under it. Concurrent callers of one key
        wait for the first one's computation rather than repeat it, in this process or in
        another that shares the folder (`on_wait` hears when this caller starts waiting for
        another process)."""
        found = self.get(key)
        if found is not None:
            return found
        with self._lock:
            key_lock = self._computing.setdefault(key, threading.Lock())
        try:
            with key_lock:
                found = self.get(key)
                if found is not None:
                    return found
                if self.disk is None:
                    return self._made(key, make)
                found = self._from_disk(key, on_wait)
                if found is not None:
                    self.put(key, found)
                    return found
                try:
                    return self._made(key, make)
                finally:
                    self.disk.release(key)
        finally:
            with self._lock:
                self._computing.pop(key, None)

    def _from_disk(self, key: Hashable, on_wait: Callable[[], None]) -> Value | None:
        """`key` from the folder, when there or once the process computing it has written it;
        None once this process has claimed it, to compute it."""
        while True:
            found = self.disk.get(key)
            if found is not None or self.disk.claim(key):
                return found
            on_wait()
            found = self.disk.wait_for(key)
            if found is not None:
                return found

    def _made(self, key: Hashable, make: Callable[[], Value]) -> Value:
        gc.collect()  # earlier views' cycles leave before this one's working memory
        start = time.perf_counter()
        made = make()
        if self._report is not None:
            self._report(key, time.perf_counter() - start)
        self.save(key, made)
        return made

    def computing(self, key: Hashable) -> bool:
        """Whether another caller is computing `key` right now (this call never waits)."""
        with self._lock:
            return key in self._computing

    def use(self) -> StoreUse:
        with self._lock:
            return StoreUse(len(self._items), self._used, self._budget, self._evictions)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._used = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
