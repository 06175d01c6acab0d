"""A pyramid's work list rendered on this machine's threads: :class:`ThreadRunner`, the local :class:`WorkRunner`.

Two executors in a pipeline: one renders (the base level through the
renderer's own strips, so it is the very image ``bigcppn render`` makes, pixel
for pixel; the levels below it job by job), the other encodes and writes the
tiles (:mod:`bigcppn.pyramid.images`); then the whole picture at the layout's
sizes (IIIF).
"""

from __future__ import annotations

import threading
from typing import Callable, Iterator

import numpy as np

from ..core.execute import Executor, ThreadExecutor
from ..core.system import available_cores
from ..core.tiling import Tiling
from ..network.backend import Backend
from ..network.devices import CPU_JOB_SAMPLES
from ..network.strips import Renderer
from .grid import Pyramid
from .images import write_full_images, write_tile
from .levels import LevelTile
from .render import PyramidStats, WorkRunner
from .request import PyramidRequest
from .store import TileStore
from .worklist import PyramidWork

__all__ = ["ThreadRunner", "run_work", "job_pixels", "level_job_pixels"]


def job_pixels(renderer: Renderer, plan: Tiling, supersample: int) -> int:
    """Level pixels evaluated in one job below the base: a CPU's cache-sized share, or a GPU's batch."""
    return level_job_pixels(supersample, renderer.job_samples(plan.batch_pixels))


def level_job_pixels(supersample: int, samples: int | None = None) -> int:
    """Level pixels per job of the work list: ``samples`` (``Backend.job_samples``; default a CPU's share) / K²."""
    return max(1, (samples or CPU_JOB_SAMPLES) // (supersample * supersample))


class ThreadRunner(WorkRunner):
    """Renders a work list with ``workers`` render threads and ``encoders`` encoding threads (default: the cores)."""

    def __init__(self, renderer: Renderer, plan: Tiling, workers: int = 1, encoders: int | None = None) -> None:
        self.renderer, self.plan, self.workers, self.encoders = renderer, plan, workers, encoders

    def job_pixels(self, supersample: int) -> int:
        return job_pixels(self.renderer, self.plan, supersample)

    def run(self, request: PyramidRequest, work: PyramidWork, store: TileStore, stats: PyramidStats,
            on_tile: Callable[[LevelTile], None] | None = None) -> None:
        """The level jobs and encoding, then the full images (IIIF)."""
        k, quality = request.supersample, request.quality
        with ThreadExecutor(self.workers, "bigcppn-level") as render_ex, \
                ThreadExecutor(self.encoders or available_cores(), "bigcppn-encode") as encode_ex:
            run_work(work, request.pyramid, self.renderer, self.plan, store, supersample=k, quality=quality,
                     render_ex=render_ex, encode_ex=encode_ex, stats=stats, on_tile=on_tile)
        write_full_images(request.pyramid, self.renderer, store, supersample=k, quality=quality)


def run_work(work: PyramidWork, p: Pyramid, renderer: Renderer, plan: Tiling, store: TileStore, *,
             supersample: int, quality: int, render_ex: Executor, encode_ex: Executor, stats: PyramidStats,
             on_tile: Callable[[LevelTile], None] | None = None) -> None:
    """Render, encode and write every tile of ``work``: a pipeline of two executors."""
    counting = threading.Lock()

    def write(item: tuple[LevelTile, np.ndarray]) -> None:
        t, arr = item
        write_tile(store, t, arr, p.codec, quality)
        with counting:
            stats.written += 1
            stats.pixels += t.pixels
        if on_tile is not None:
            on_tile(t)

    def tiles() -> Iterator[tuple[LevelTile, np.ndarray]]:
        yield from _base_tiles(renderer, plan, work.base, render_ex, stats)
        yield from _level_tiles(renderer, work, supersample, render_ex, stats)

    for _ in encode_ex.map_ordered(write, tiles(), 4 * encode_ex.workers):
        pass


def _base_tiles(renderer: Renderer, plan: Tiling, todo: tuple[LevelTile, ...], ex: Executor,
                stats: PyramidStats) -> Iterator[tuple[LevelTile, np.ndarray]]:
    """The base level through the renderer's own strips, cut into pyramid tiles, in order."""
    if not todo:
        return
    rows: dict[int, list[LevelTile]] = {}
    for t in todo:
        rows.setdefault(t.row, []).append(t)
    sh = plan.strip_height
    spans: list[tuple[int, int, list[LevelTile]]] = []  # (first strip, last strip, tiles of one tile row)
    for r in sorted(rows):
        t0 = rows[r][0]
        spans.append((t0.y // sh, (t0.y + t0.height - 1) // sh, rows[r]))
    needed = sorted({i for a, b, _ in spans for i in range(a, b + 1)})
    buffer: dict[int, np.ndarray] = {}
    k = 0
    for i, arr in ex.map_ordered(lambda i: renderer.render_strip(plan.strip(i)), needed, ex.workers):
        buffer[i] = arr
        stats.base_strips += 1
        while k < len(spans) and spans[k][1] <= i:
            a, b, tiles = spans[k]
            for t in tiles:  # each tile's rows from the strips it spans, no copy of whole strips
                parts = [buffer[j][max(t.y - j * sh, 0) : t.y + t.height - j * sh, t.x : t.x + t.width]
                         for j in range(a, b + 1)]
                yield t, np.ascontiguousarray(np.concatenate(parts, axis=0) if b > a else parts[0])
            k += 1
            keep = spans[k][0] if k < len(spans) else i + 1
            for j in [j for j in buffer if j < keep]:
                del buffer[j]


def _level_tiles(backend: Backend, work: PyramidWork, supersample: int, ex: Executor,
                 stats: PyramidStats) -> Iterator[tuple[LevelTile, np.ndarray]]:
    """The missing tiles of the levels below the base, job by job, in order."""

    def run_job(job):
        return backend.render_many([(t.shift, t.x, t.y, t.width, t.height) for t in job.tiles], supersample)

    for job, arrays in ex.map_ordered(run_job, work.jobs, ex.workers):
        stats.jobs += 1
        wanted = set(job.missing)
        for t, arr in zip(job.tiles, arrays):
            if t in wanted:
                yield t, arr
