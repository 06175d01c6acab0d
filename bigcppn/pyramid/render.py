"""Deep-zoom pyramids rendered level by level, straight from the network.

A pyramid made the usual way renders the base image and lets libvips shrink it
level by level. Here every tile of every level is sampled from the CPPN at that
level's own resolution: level pixel ``i`` at ``shift`` covers base pixels
``[i * 2**shift, (i + 1) * 2**shift)``, and is the mean of ``K×K`` samples at
the sub-pixel centres ``(i + (k + 0.5) / K) * 2**shift`` (a box filter, so the
small levels do not alias; the last pixel of a level is cut at the canvas
edge: :func:`bigcppn.core.geometry.sample_positions`), mapped to the plane by
:func:`bigcppn.core.geometry.level_coord`, which is
:func:`bigcppn.core.geometry.pixel_coord` for fractional positions, in float64.

The base level goes through the renderer's own strips, so it is the very image
``bigcppn render`` makes, pixel for pixel. Every tile is written atomically
(a hidden temporary name, then a rename), and the tiles are grouped into jobs
that do not depend on what is already on disk, so a run that was interrupted
resumes by skipping the finished tiles and ends with the same pyramid, byte for
byte, as an uninterrupted one. The metadata file and the viewer page are
written last: a pyramid with its ``.dzi`` / ``info.json`` is complete.

A render of a :class:`~bigcppn.pyramid.request.PyramidRequest` is three steps:
:func:`bigcppn.pyramid.worklist.work_list` (pure: the tiles still missing, as
base tiles and level jobs), a :class:`WorkRunner`'s ``run`` (render, encode
and write them: this machine's threads, :class:`bigcppn.pyramid.local.ThreadRunner`,
or a cluster's actors, :class:`bigcppn.cluster.pyramid.RayPyramidRunner`), and
:func:`finish` (the blank tile, the viewer page and the descriptor), all under
the folder's owner lock (:mod:`bigcppn.pyramid.store`).
"""


from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from .._version import __version__
from ..errors import UserError
from .levels import LevelTile
from .request import PyramidRequest
from .store import PyramidOutput, TileStore
from .worklist import PyramidWork, tile_samples, work_list

__all__ = ["PyramidStats", "PyramidProgress", "PyramidHooks", "WorkRunner", "render_pyramid", "finish",
           "sweep_partials"]


@dataclass
class PyramidStats:
    tiles: int = 0
    written: int = 0
    skipped: int = 0
    base_strips: int = 0
    jobs: int = 0
    seconds: float = 0.0
    pixels: int = 0  # level pixels written (not counting samples)
    page: Path | None = None  # the viewer page written
    descriptor: Path | None = None  # the metadata file that marks it complete (none for Google)
    viewer_local: bool = False  # OpenSeadragon copied beside the page (else the page loads it from a CDN)
    replaced: bool = False  # another render's pyramid was removed first (overwrite)
    worker_cpu: float = 0.0  # CPU seconds spent by cluster workers (0 for a local run)
    transfer_bytes: int = 0  # bytes sent to and from cluster workers (0 for a local run)

    @property
    def tiles_per_s(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class PyramidProgress:
    """How far a pyramid run is: tiles, and network samples (what the time goes by) across all levels."""

    tiles: int  # tiles written by this run so far
    pending: int  # tiles this run writes
    total: int  # tiles in the pyramid (pending + already written)
    samples: int  # network samples of the tiles written so far
    samples_total: int  # network samples of the pending tiles: K² per pixel below the base, 1 at the base
    pixels: int  # level pixels written so far
    seconds: float  # since the run started rendering


class _Progress:
    """Counts written tiles and calls ``progress`` with a :class:`PyramidProgress`, one call at a time."""

    def __init__(self, work: PyramidWork, total: int, supersample: int, progress, on_tile) -> None:
        self.k = supersample
        self.pending, self.total = work.pending, total
        self.samples_total = work.samples(supersample)
        self.progress, self.on_tile = progress, on_tile
        self.tiles = self.samples = self.pixels = 0
        self.lock = threading.Lock()
        self.t0 = time.perf_counter()

    def report(self) -> None:
        if self.progress is not None:
            self.progress(PyramidProgress(self.tiles, self.pending, self.total, self.samples, self.samples_total,
                                          self.pixels, time.perf_counter() - self.t0))

    def __call__(self, t: LevelTile) -> None:
        with self.lock:
            self.tiles += 1
            self.samples += tile_samples((t,), self.k)
            self.pixels += t.pixels
            self.report()
        if self.on_tile is not None:
            self.on_tile(t)


@dataclass(frozen=True)
class PyramidHooks:
    """What a caller hears of a run: ``on_start(pending, total)`` once the finished tiles are counted,
    ``on_tile(tile)`` after each tile is written (from worker threads), ``progress`` with a
    :class:`PyramidProgress` when the work is known and after each tile (one call at a time)."""

    on_start: Callable[[int, int], None] | None = None
    on_tile: Callable[[LevelTile], None] | None = None
    progress: Callable[[PyramidProgress], None] | None = None


class WorkRunner(ABC):
    """Renders a pyramid's work list and writes its tiles: this machine's threads, or a cluster's actors."""

    def open(self, request: PyramidRequest) -> None:
        """Start the workers and check they can write ``request.out`` (before the manifest is written)."""

    @abstractmethod
    def job_pixels(self, supersample: int) -> int:
        """Level pixels a job of the work list evaluates together."""

    @abstractmethod
    def run(self, request: PyramidRequest, work: PyramidWork, store: TileStore, stats: PyramidStats,
            on_tile: Callable[[LevelTile], None] | None = None) -> None:
        """Render and write every tile of ``work``, and the layout's full images, counting them in ``stats``."""

    def close(self, cancel: bool = False) -> None:
        """Stop the workers; ``cancel``: without waiting for the work they are doing (Ctrl-C)."""


def finish(request: PyramidRequest, stats: PyramidStats) -> None:
    """What completes a pyramid once its tiles are written: the blank tile, the viewer page, the descriptor."""
    import pyvips

    from .viewer import static_page

    cfg, p, out, supersample = request.config, request.pyramid, request.out, request.supersample
    if p.layout.blank_tile:
        blank = pyvips.Image.black(p.tile, p.tile) + 255
        out.write("blank.png", blank.cast("uchar").pngsave_buffer(keep="none"))
    local = out.install_viewer()
    info = (f"bigcppn {__version__} · seed {cfg.seed} · {p.width}×{p.height} px · {p.layout.name} · "
            f"{len(p.levels)} levels · supersampled {supersample}×{supersample}")
    page_html = static_page(p, request.title or f"{out.name} (bigcppn)", info, local)
    # NAME.html, or index.html in the pyramid's own folder; checked before rendering
    if out.foreign_page():
        raise UserError(f"'{out.page}' appeared while rendering and was not written by bigcppn; move it and run "
                        "the same command again")
    page = p.layout.page_name(out.name)
    out.write(page, page_html)
    stats.page = out.at(page)
    stats.viewer_local = local
    if p.descriptor_path:
        stats.descriptor = out.at(p.descriptor_path)
        out.write(p.descriptor_path, p.descriptor(request.base_url or f"http://localhost:8000/{out.name}"))


def render_pyramid(request: PyramidRequest, runner: WorkRunner, hooks: PyramidHooks = PyramidHooks()) -> PyramidStats:
    """Render every missing tile of ``request.pyramid`` into ``request.out`` with ``runner``, then the metadata
    and the viewer page.

    Holds the pyramid's owner lock throughout; tells ``hooks`` how it goes.
    Another render's pyramid at ``request.out`` is refused (UserError) unless
    ``request.overwrite``: then the new one is rendered beside it and takes its
    place only once complete (a failed or interrupted replacement leaves the old
    one as it was, and its own finished tiles beside it for the same command to
    resume).
    """
    t_start = time.perf_counter()
    p, out = request.pyramid, request.out
    stats = PyramidStats(tiles=p.tile_count)
    key = request.key
    with out.lock() as lock:
        out.finish_commit()  # a swap that a killed run left half done: finished before anything is read
        state = out.check_manifest(key, request.overwrite)
        # Another render's pyramid stays as it is until its replacement, rendered beside it, is complete;
        # an interrupted replacement keeps its tiles there, and the same command resumes it.
        if state == "replace":
            target, resuming = out.replacement(key)
        else:
            out.sweep_replacements()  # an abandoned replacement by another render
            target, resuming = out, state == "resume"
        stats.replaced = state == "replace"
        target.make_root()
        try:
            _render_into(replace(request, out=target), resuming, runner, hooks, stats)
        except KeyboardInterrupt as exc:  # (Ctrl-C, SIGTERM) the command line's stop line names this folder
            exc.kept_in = target.root
            raise
        if target is not out:
            out.swap_in(target, lock)
            if not out.folder:  # the page beside the .dzi loads the viewer from the folder it is in
                out.install_viewer()
            stats.page = out.at(p.layout.page_name(out.name))
            stats.descriptor = out.at(p.descriptor_path) if p.descriptor_path else None
    stats.seconds = time.perf_counter() - t_start
    return stats


def _render_into(request: PyramidRequest, resuming: bool, runner: WorkRunner, hooks: PyramidHooks,
                 stats: PyramidStats) -> None:
    """Every missing tile into ``request.out``, then its metadata and page (the caller holds the lock)."""
    p, out = request.pyramid, request.out
    runner.open(request)
    store = None
    try:
        store = _prepare(out, request.key, resuming)
        # A new pyramid has no tiles yet (the manifest check refused anything in the way); a resumed one
        # is listed once.
        done = store.listing(p.layout.tiles_folder(out.name)).__contains__ if resuming else (lambda _path: False)
        work = work_list(p, runner.job_pixels(request.supersample), done)
        stats.skipped = p.tile_count - work.pending
        if hooks.on_start is not None:
            hooks.on_start(work.pending, p.tile_count)
        counter = _Progress(work, p.tile_count, request.supersample, hooks.progress, hooks.on_tile)
        counter.report()
        runner.run(request, work, store, stats, counter)
        store.flush()  # the tiles still uploading to a bucket: all of them before the descriptor
    except KeyboardInterrupt:
        runner.close(cancel=True)
        raise
    finally:
        runner.close()
        if store is not None:
            store.close()
    finish(request, stats)


def _prepare(out: PyramidOutput, key: dict, resuming: bool) -> TileStore:
    """The tile store; on a resume the partial files of the interrupted run swept, else the manifest written."""
    store = TileStore(out.storage)
    if resuming:
        out.sweep_partials()
    else:
        out.write_manifest(key)
    return store


def sweep_partials(out: PyramidOutput) -> None:
    """Remove the hidden partial files that killed writers left in a pyramid (tiles, manifest, page, descriptor)."""
    out.sweep_partials()
