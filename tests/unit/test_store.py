"""The shared result store: bounded in bytes, least recently used first out, one computation
per key however many sessions ask at once."""

import gc
import pickle
import threading
import time
import weakref
from functools import partial

import diskcache
import numpy as np
import pytest
import torch

from lib import store as store_module
from lib.store import DiskTier, ResultStore, call_digest, claim_name, digest_of, nbytes_of


def test_results_are_weighed_by_their_arrays():
    array = np.zeros((100, 100), dtype=np.float32)  # 40,000 bytes
    assert 40_000 <= nbytes_of(array) < 41_000
    assert nbytes_of({"a": array, "b": (array,)}) < 2 * 40_000  # the same array counted once


def test_a_view_weighs_the_buffer_it_holds():
    """Results are views more often than not: read-only copies of tensors, slices, arrays back
    from the disk tier. Each holds its whole buffer, counted once."""
    array = np.zeros((100, 100), dtype=np.float32)
    assert 40_000 <= nbytes_of(array[:1]) < 41_000  # a row keeps the whole table alive
    assert nbytes_of((array[:50], array[50:], array)) < 2 * 40_000
    tensor_backed = torch.zeros(100, 100).numpy()[:, :10]
    assert nbytes_of(tensor_backed) >= 4_000
    unpickled = pickle.loads(pickle.dumps(np.zeros((31, 192, 576), np.float32)[::2]))
    assert nbytes_of(unpickled) >= unpickled.nbytes


def test_the_least_recently_used_results_leave_when_the_budget_is_passed():
    store = ResultStore(budget_bytes=100_000)
    for key in "abc":
        store.put(key, np.zeros(10_000, dtype=np.float32))  # 40 KB each
    assert store.get("a") is None and store.get("b") is not None and store.get("c") is not None
    use = store.use()
    assert use.used_bytes <= use.budget_bytes and use.entries == 2 and use.evictions == 1
    store.get("b")  # now "c" is the least recently used
    store.put("d", np.zeros(10_000, dtype=np.float32))
    assert store.get("c") is None and store.get("b") is not None


def test_a_result_larger_than_the_budget_is_returned_but_not_kept():
    store = ResultStore(budget_bytes=1_000)
    big = store.compute("big", lambda: np.zeros(10_000))
    assert big.shape == (10_000,) and store.get("big") is None and store.use().used_bytes == 0


def _at_once(*calls):
    """Run the calls in threads started together; their results in order."""
    results = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(index):
        barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_sessions_asking_for_one_key_at_once_share_one_computation():
    store = ResultStore(budget_bytes=1 << 20)
    calls = []

    def slow() -> str:
        calls.append(1)
        time.sleep(0.3)
        return "result"

    assert _at_once(*[partial(store.compute, "k", slow)] * 4) == ["result"] * 4
    assert len(calls) == 1


def test_results_on_disk_serve_another_process_and_survive_a_restart(tmp_path):
    """Two stores on one folder stand for two replicas (or a server before and after a
    restart): what one computed, the other reads without computing."""
    key = ("trace", "tiny-random", "float32", (1, 2, 3))
    first = ResultStore(1 << 20, DiskTier(tmp_path, 1 << 24))
    value = first.compute(key, lambda: np.arange(1000.0))
    first.disk.flush()
    second = ResultStore(1 << 20, DiskTier(tmp_path, 1 << 24))
    made = []
    again = second.compute(key, lambda: made.append(1) or np.zeros(1))
    np.testing.assert_array_equal(again, value)
    assert made == []
    assert second.get(key) is not None  # now in memory too


def test_two_processes_asking_for_one_key_at_once_compute_it_once(tmp_path):
    """Replicas that open one link at the same moment: the first claims it in the shared
    folder, the other waits for the result there (and says so) instead of computing it too."""
    key = ("cache_runs", "m", "float32", (1, 2, 3))
    calls, waits = [], []

    def slow():
        calls.append(1)
        time.sleep(0.5)
        return np.arange(10.0)

    stores = [ResultStore(1 << 20, DiskTier(tmp_path, 1 << 24)) for _ in range(2)]
    results = _at_once(
        *(partial(one.compute, key, slow, on_wait=lambda: waits.append(1)) for one in stores)
    )
    assert len(calls) == 1 and len(waits) == 1
    for result in results:
        np.testing.assert_array_equal(result, np.arange(10.0))
    stores[0].disk.flush()  # the claim is dropped after the result's write, in the background
    assert claim_name(key) not in diskcache.Cache(str(tmp_path))


def test_a_claim_lives_while_its_computation_runs_and_a_dead_one_expires(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "CLAIM_SECONDS", 0.3)
    monkeypatch.setattr(store_module, "RENEW_SECONDS", 0.05)
    calls = []

    def slow():  # three claim lifetimes: only renewal keeps the other process waiting
        calls.append(1)
        time.sleep(0.9)
        return "made"

    stores = [ResultStore(1 << 20, DiskTier(tmp_path, 1 << 24)) for _ in range(2)]
    assert _at_once(*(partial(one.compute, "long", slow) for one in stores)) == ["made"] * 2
    assert len(calls) == 1

    # A process that claimed a key and died: nobody renews its claim, and it expires.
    diskcache.Cache(str(tmp_path)).add(claim_name("orphan"), "dead", expire=0.3)
    began = time.perf_counter()
    assert stores[0].compute("orphan", lambda: "computed here") == "computed here"
    assert time.perf_counter() - began >= 0.25


def test_a_failed_computation_releases_its_claim(tmp_path):
    first, second = (ResultStore(1 << 20, DiskTier(tmp_path, 1 << 24)) for _ in range(2))

    def fail():
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        first.compute("key", fail)
    first.disk.flush()
    assert claim_name("key") not in diskcache.Cache(str(tmp_path))  # else the next one waits
    assert second.compute("key", lambda: "second try") == "second try"


def test_a_key_names_the_same_result_in_every_process():
    key = ("surgery", "m", "float32", (1, 2), ("edit", 3))
    assert digest_of(key) == digest_of(tuple(key)) != digest_of(("surgery", "m", "bfloat16"))
    assert len(digest_of(key)) == 64


class _Cycle:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.itself = self
        self.payload = np.ones(1 << 20)


def test_a_computation_starts_after_earlier_cycles_are_collected():
    store = ResultStore(1 << 20)
    assert gc.get_freeze_count() > 0  # long-lived objects are out of the scans
    cycle = _Cycle()
    gone = weakref.ref(cycle)
    del cycle
    gc.disable()  # no automatic collection: only the store's own can free it
    try:
        assert gone() is not None
        assert store.compute("key", lambda: gone() is None)
    finally:
        gc.enable()


def test_a_call_is_named_by_the_content_of_its_arguments():
    """Each run builds its page model in new objects: equal content, same name; any difference
    in the function, the arguments or a keyword, another name."""
    labels = ("a", "b")
    name = call_digest(partial(np.round, np.arange(3.0), labels, decimals=1))
    assert call_digest(partial(np.round, np.arange(3.0), ("a", "b"), decimals=1)) == name
    assert call_digest(partial(np.round, np.arange(3.0) + 1e-9, labels, decimals=1)) != name
    assert call_digest(partial(np.round, np.arange(3.0), ("a", "c"), decimals=1)) != name
    assert call_digest(partial(np.round, np.arange(3.0), labels, decimals=2)) != name
    assert call_digest(partial(np.floor, np.arange(3.0), labels, decimals=1)) != name


def test_a_store_can_keep_its_computations_quiet():
    heard = []
    ResultStore(1 << 20, report=lambda key, seconds: heard.append(key)).compute("k", lambda: 1)
    ResultStore(1 << 20, report=None).compute("q", lambda: 2)
    assert heard == ["k"]
