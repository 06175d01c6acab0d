"""The renderer behind ``bigcppn serve``: tiles on request, gathered into batches on the device, cached.

:class:`TileService` puts requests in a queue; one device thread takes whatever has arrived together
(waiting a few milliseconds for more) and evaluates it as one batch; a small pool encodes the tiles,
which go into :class:`TileCache`, an LRU cache of encoded bytes. A tile asked for while it is being
rendered is rendered once. Each request is a future, so the HTTP side never waits on a thread.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from ..network.backend import Backend
from ..pyramid.grid import Pyramid
from ..pyramid.images import encode_tile

__all__ = ["TileCache", "TileService", "ServeStats", "Stopping"]


class TileCache:
    """An LRU cache of encoded tiles, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._d: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key):
        with self._lock:
            v = self._d.get(key)
            if v is None:
                self.misses += 1
                return None
            self._d.move_to_end(key)
            self.hits += 1
            return v

    def put(self, key, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            old = self._d.pop(key, None)
            if old is not None:
                self.bytes -= len(old)
            self._d[key] = data
            self.bytes += len(data)
            while self.bytes > self.max_bytes:
                _k, v = self._d.popitem(last=False)
                self.bytes -= len(v)

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._d


@dataclass
class ServeStats:
    requests: int = 0
    tiles_rendered: int = 0
    batches: int = 0
    largest_batch: int = 0
    errors: int = 0
    render_seconds: float = 0.0
    dropped: int = 0  # tiles no client awaited any more by the time their turn came
    batch_sizes: deque = field(default_factory=lambda: deque(maxlen=4096))  # the latest


class Stopping(RuntimeError):
    """The server stopped before the tile's turn came."""


class TileService:
    """Renders tiles of a :class:`Pyramid` (with levels past the base) on request, in batches."""

    def __init__(self, sampler: Backend, pyramid: Pyramid, supersample: int = 2, quality: int = 90,
                 cache_bytes: int = 256 << 20, gather_s: float = 0.005, batch_samples: int | None = None,
                 encoders: int = 2) -> None:
        self.sampler = sampler
        self.pyramid = pyramid
        self.supersample = supersample
        self.quality = quality
        self.cache = TileCache(cache_bytes)
        self.gather_s = gather_s
        self.batch_samples = batch_samples or sampler.gather_samples
        self.stats = ServeStats()
        self._queue: queue.Queue = queue.Queue()
        self._inflight: dict = {}
        self._wanted: dict = {}  # key -> how many requests wait for it, until the device thread takes it
        self._lock = threading.Lock()
        self._encoders = ThreadPoolExecutor(max(1, encoders), thread_name_prefix="bigcppn-encode")
        self._cpu_pool = None
        if sampler.tile_workers:  # a CPU: tiles side by side, one per core
            self._cpu_pool = ThreadPoolExecutor(sampler.tile_workers, thread_name_prefix="bigcppn-cpu")
        self._thread = threading.Thread(target=self._loop, name="bigcppn-device", daemon=True)
        self._started = False
        self._stopped = threading.Event()

    def start(self) -> "TileService":
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._queue.put(None)
        if self._started:
            self._thread.join(5)
        with self._lock:
            pending, self._inflight = list(self._inflight.values()), {}
        for f in pending:  # whoever still waits is told, not left hanging
            if not f.done():
                f.set_exception(Stopping("the server is stopping; retry later"))
        self._encoders.shutdown(wait=True, cancel_futures=True)
        if self._cpu_pool is not None:
            self._cpu_pool.shutdown(wait=True, cancel_futures=True)

    def cancel_queued(self, why: str = "superseded") -> int:
        """Fail every request still waiting for the device (not those rendering now); how many."""
        keys = []
        while True:
            try:
                key = self._queue.get_nowait()
            except queue.Empty:
                break
            if key is None:  # stopping: leave the signal for the device thread
                self._queue.put(None)
                break
            keys.append(key)
        for key in keys:
            self._finish(key, exc=RuntimeError(why))
        return len(keys)

    def tile_key(self, level: int, col: int, row: int) -> tuple[int, int, int]:
        """Checks that the tile exists (IndexError otherwise)."""
        self.pyramid.tile_at(level, col, row)
        return (level, col, row)

    def request(self, level: int, col: int, row: int) -> Future:
        """A future of the tile's encoded bytes; IndexError for a tile that does not exist."""
        key = self.tile_key(level, col, row)
        data = self.cache.get(key)
        if data is not None:
            f: Future = Future()
            f.set_result(data)
            return f
        with self._lock:
            f = self._inflight.get(key)
            if key in self._wanted:
                self._wanted[key] += 1
            if f is not None:
                return f
            f = Future()
            self._inflight[key] = f
            self._wanted[key] = 1
        self._queue.put(key)
        return f

    def release(self, level: int, col: int, row: int) -> None:
        """One request of this tile is no longer awaited (its client left): a tile that no one awaits any
        more and that is not being rendered yet is dropped from the queue (its future cancelled)."""
        key = (level, col, row)
        with self._lock:
            left = self._wanted.get(key, 0) - 1
            if left > 0:
                self._wanted[key] = left
                return
            if self._wanted.pop(key, None) is None:
                return  # taken by the device thread already: it finishes, and the tile is cached
            f = self._inflight.pop(key, None)
        self.stats.dropped += 1
        if f is not None:
            f.cancel()

    def drop_queued(self) -> None:
        """Fail every request whose tile is not being rendered yet (the server is stopping)."""
        with self._lock:
            doomed = [(k, self._inflight.pop(k, None)) for k in list(self._wanted)]
            self._wanted.clear()
        for _key, f in doomed:
            if f is not None and not f.done():
                f.set_exception(Stopping("the server is stopping; retry later"))

    def _take(self, key) -> bool:
        """Whether the device thread should render ``key`` (someone still awaits it); marks it taken."""
        with self._lock:
            return self._wanted.pop(key, None) is not None

    def get(self, level: int, col: int, row: int, timeout: float | None = 120) -> bytes:
        return self.request(level, col, row).result(timeout)

    # ------------------------------------------------------------------ the device thread

    def _gather(self, first) -> list:
        keys, samples = [first], self._samples(first)
        deadline = time.monotonic() + self.gather_s
        while samples < self.batch_samples:
            try:
                key = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if key is None:
                self._queue.put(None)
                break
            if not self._take(key):
                continue
            keys.append(key)
            samples += self._samples(key)
        return keys

    def _k(self, t) -> int:
        return self.supersample if t.shift > 0 else 1

    def _samples(self, key) -> int:
        t = self.pyramid.tile_at(*key)
        return t.pixels * self._k(t) ** 2

    def _loop(self) -> None:
        while not self._stopped.is_set():
            first = self._queue.get()
            if first is None:
                return
            if not self._take(first):
                continue  # its clients left before it was begun
            keys = self._gather(first)
            tiles = [self.pyramid.tile_at(*k) for k in keys]
            t0 = time.perf_counter()
            try:
                arrays: dict = {}
                if self._cpu_pool is not None:
                    # a CPU: the batch's tiles spread over the cores, one torch thread each (each tile
                    # on its own, so a tile is the same whatever arrived with it)
                    futs = {key: self._cpu_pool.submit(
                        self.sampler.render_many, [(t.shift, t.x, t.y, t.width, t.height)], self._k(t))
                        for key, t in zip(keys, tiles)}
                    arrays = {key: f.result()[0] for key, f in futs.items()}
                else:
                    # a GPU: one device call per sampling rate for the whole batch
                    for k in sorted({self._k(t) for t in tiles}):
                        group = [(key, t) for key, t in zip(keys, tiles) if self._k(t) == k]
                        rects = [(t.shift, t.x, t.y, t.width, t.height) for _key, t in group]
                        for (key, _t), arr in zip(group, self.sampler.render_many(rects, k)):
                            arrays[key] = arr
            except Exception as exc:  # the batch failed: every request in it gets the error
                self.stats.errors += 1
                for key in keys:
                    self._finish(key, exc=exc)
                continue
            self.stats.render_seconds += time.perf_counter() - t0
            self.stats.batches += 1
            self.stats.tiles_rendered += len(keys)
            self.stats.largest_batch = max(self.stats.largest_batch, len(keys))
            self.stats.batch_sizes.append(len(keys))
            for key in keys:
                self._encoders.submit(self._encode, key, arrays[key])

    def _encode(self, key, arr) -> None:
        try:
            data = encode_tile(arr, self.pyramid.codec, self.quality)
        except Exception as exc:
            self._finish(key, exc=exc)
            return
        self.cache.put(key, data)
        self._finish(key, data=data)

    def _finish(self, key, data: bytes | None = None, exc: BaseException | None = None) -> None:
        with self._lock:
            f = self._inflight.pop(key, None)
        if f is None:
            return
        if exc is not None:
            f.set_exception(exc)
        else:
            f.set_result(data)
