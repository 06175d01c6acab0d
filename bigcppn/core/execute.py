"""The executor seam: where work runs, and in what order its results come back.

Every pipeline in bigcppn has one shape: items go in (strips, pyramid jobs,
tiles to encode), a function runs on each somewhere, and results come back
**in order**, with a bounded number in flight so memory stays flat. That is
:meth:`Executor.map_ordered`. :class:`ThreadExecutor` runs it on a thread pool
(torch, libvips and the codecs release the GIL); a cluster engine runs the same
work lists with its own executor (see ``docs/design.md``).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, Protocol, TypeVar

__all__ = ["Executor", "ThreadExecutor", "put_until"]

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Runs a function over items, results in order, a bounded number ahead."""

    workers: int

    def map_ordered(self, fn: Callable[[T], R], items: Iterable[T], lookahead: int) -> Iterator[tuple[T, R]]:
        """``(item, fn(item))`` in the order of ``items``, at most ``lookahead`` + 1 running at once.

        ``items`` is pulled lazily, so it may itself be a pipeline. Closing the
        iterator early cancels what has not started.
        """
        ...

    def close(self, cancel: bool = False) -> None:
        """Wait for running work (dropping what has not started when ``cancel``) and free the workers."""
        ...


class ThreadExecutor:
    """An :class:`Executor` on a pool of ``workers`` threads in this process."""

    def __init__(self, workers: int, name: str = "bigcppn") -> None:
        self.workers = max(1, workers)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=name)

    def map_ordered(self, fn: Callable[[T], R], items: Iterable[T], lookahead: int) -> Iterator[tuple[T, R]]:
        pending: deque[tuple[T, Future]] = deque()
        try:
            for item in items:
                pending.append((item, self._pool.submit(fn, item)))
                if len(pending) > lookahead:
                    it, fut = pending.popleft()
                    yield it, fut.result()
            while pending:
                it, fut = pending.popleft()
                yield it, fut.result()
        finally:
            for _it, fut in pending:
                fut.cancel()

    def close(self, cancel: bool = False) -> None:
        self._pool.shutdown(wait=True, cancel_futures=cancel)

    def __enter__(self) -> "ThreadExecutor":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(cancel=exc_type is not None)


def put_until(q, item, stop) -> bool:
    """Put ``item`` on the bounded queue ``q``, waiting for room; False (not put) once the event ``stop`` is set."""
    import queue

    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
