"""Another thread holding a lock for the length of a block: another session's run of the model."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def held_elsewhere(lock) -> Iterator[None]:
    """`lock` is held by another thread from the start of the block to its end."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            held.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(5), "the other thread never took the lock"
        yield
    finally:
        release.set()
        holder.join()
