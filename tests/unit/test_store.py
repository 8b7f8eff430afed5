"""The shared result store: bounded in bytes, least recently used first out, one computation
per key however many sessions ask at once."""

import gc
import pickle
import threading
import time
import weakref
from functools import partial

import numpy as np
import torch

from lib.store import DiskTier, ResultStore, call_digest, digest_of, nbytes_of


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


def test_sessions_asking_for_one_key_at_once_share_one_computation():
    store = ResultStore(budget_bytes=1 << 20)
    calls = []

    def slow() -> str:
        calls.append(1)
        time.sleep(0.3)
        return "result"

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(store.compute("k", slow))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["result"] * 4 and len(calls) == 1


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
