"""Several Beagle calls at once: threads, each waiting on its own Beagle process.

Used for the regions of ``chunks`` and for the sample groups of ``groups`` (and for both at
once: a group's regions share the group's stop signal). Each call gets a ``threading.Event``;
``run_beagle`` stops its process (the whole process group) when the event is set. On the first
failure, or an interrupt of the caller, the event is set, every thread is waited for and the
error is raised.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Callable, Sequence, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def run_parallel(items: Sequence[Item], run_one: Callable[[Item, threading.Event], Result], jobs: int,
                 cancel: threading.Event | None = None) -> list[tuple[Item, Result]]:
    """``run_one(item, cancel)`` for every item, ``jobs`` at a time; (item, result) in item order.

    ``cancel``: an event shared with an enclosing ``run_parallel`` (its failure then stops these
    calls too, and theirs stops it); None makes a new one.
    """
    cancel = threading.Event() if cancel is None else cancel
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="beagle-run")
    futures = [pool.submit(run_one, item, cancel) for item in items]
    try:
        done, _pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            if future.exception() is not None:
                raise future.exception()
        return [(item, future.result()) for item, future in zip(items, futures)]
    except BaseException:
        cancel.set()
        for future in futures:
            future.cancel()
        raise
    finally:
        pool.shutdown(wait=True)


def share_threads(threads: int, n_items: int, jobs: int | None) -> tuple[int, int]:
    """(calls at once, threads per call) for ``n_items`` calls under a budget of ``threads``:
    ``jobs`` (None: as many as the threads allow) capped by ``n_items``, and the threads shared
    out evenly (at least 1 each)."""
    at_once = max(1, min(n_items, jobs or threads))
    return at_once, max(1, threads // at_once)
