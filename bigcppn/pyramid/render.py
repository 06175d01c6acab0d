"""Deep-zoom pyramids rendered level by level, straight from the network.

A pyramid made the usual way renders the base image and lets libvips shrink it
level by level. Here every tile of every level is sampled from the CPPN at that
level's own resolution: level pixel ``i`` at ``shift`` covers base pixels
``[i * 2**shift, (i + 1) * 2**shift)``, and is the mean of ``K×K`` samples at
the sub-pixel centres ``(i + (k + 0.5) / K) * 2**shift`` (a box filter, so the
small levels do not alias), mapped to the plane exactly as
:func:`bigcppn.core.tiling.pixel_coord` maps pixel centres, in float64.

The base level goes through the renderer's own strips, so it is the very image
``bigcppn render`` makes, pixel for pixel. Every tile is written atomically
(a hidden temporary name, then a rename), and the tiles are grouped into jobs
that do not depend on what is already on disk, so a run that was interrupted
resumes by skipping the finished tiles and ends with the same pyramid, byte for
byte, as an uninterrupted one. The metadata file and the viewer page are
written last: a pyramid with its ``.dzi`` / ``info.json`` is complete.

A render is three steps: :func:`bigcppn.pyramid.grid.work_list` (pure: the
tiles still missing, as base tiles and level jobs), :func:`run_work` (render
and encode them through an :class:`~bigcppn.core.execute.Executor`), and
:func:`finish` (the blank tile, the viewer page and the descriptor), all under
the folder's owner lock (:mod:`bigcppn.pyramid.store`).
"""


from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np
import pyvips

from .._version import __version__
from ..core.atomic import write_atomic
from ..network.backend import CPU_JOB_SAMPLES, Backend
from ..config import Config
from ..errors import UserError
from ..core.execute import Executor, ThreadExecutor
from ..core.tiling import Plan
from .request import pyramid_params
from .grid import LevelTile, Pyramid, PyramidWork, tile_samples, work_list
from .store import MANIFEST_NAME, PyramidOutput, TileStore, manifest_key, pyramid_output
from ..network.strips import Renderer
from ..core.system import available_cores

__all__ = ["LevelSampler", "encode_tile", "encode_image", "write_full_images", "TileStore", "PyramidOutput",
           "PyramidStats", "PyramidProgress", "render_pyramid", "pyramid_output", "MANIFEST_NAME", "run_work", "finish",
           "pyramid_params", "job_pixels", "write_tile", "level_job_pixels", "WorkRunner", "sweep_partials"]

# The level sampler is the compute backend: Backend.sample_many / render_many.
LevelSampler = Backend


def encode_tile(arr: np.ndarray, suffix: str, quality: int, pad: tuple[int, int] | None = None) -> bytes:
    """One tile image as JPEG, WebP or PNG bytes (no metadata, as dzsave writes them).

    ``pad`` grows the image to that size with white, as Google tiles are.
    """
    bands = arr.shape[2]
    img = pyvips.Image.new_from_array(np.ascontiguousarray(arr), interpretation="srgb" if bands >= 3 else "b-w")
    if pad is not None and (pad[0] != img.width or pad[1] != img.height):
        img = img.embed(0, 0, pad[0], pad[1], extend="background", background=[255] * bands)
    return encode_image(img, suffix, quality)


def encode_image(img: pyvips.Image, suffix: str, quality: int) -> bytes:
    """An image as JPEG, WebP or PNG bytes, without metadata."""
    if suffix == "jpeg":
        return img.jpegsave_buffer(Q=quality, keep="none")
    if suffix == "webp":
        return img.webpsave_buffer(Q=quality, keep="none")
    return img.pngsave_buffer(compression=6, keep="none")


def write_tile(store: TileStore, t: LevelTile, arr: np.ndarray, suffix: str, quality: int) -> None:
    """Encode one tile's pixels and write it atomically (Google tiles padded to their image size)."""
    pad = (t.image_width, t.image_height) if (t.image_width, t.image_height) != (t.width, t.height) else None
    store.write(t.path, encode_tile(arr, suffix, quality, pad))


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


def _base_tiles(renderer: Renderer, plan: Plan, todo: tuple[LevelTile, ...], ex: Executor,
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


def run_work(work: PyramidWork, p: Pyramid, renderer: Renderer, plan: Plan, store: TileStore, *,
             supersample: int, quality: int, render_ex: Executor, encode_ex: Executor, stats: PyramidStats,
             on_tile: Callable[[LevelTile], None] | None = None) -> None:
    """Render, encode and write every tile of ``work``: a pipeline of two executors."""
    counting = threading.Lock()

    def write(item: tuple[LevelTile, np.ndarray]) -> None:
        t, arr = item
        write_tile(store, t, arr, p.suffix, quality)
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


def write_full_images(p: Pyramid, backend: Backend, store: TileStore, *, supersample: int, quality: int) -> None:
    """The whole picture at the sizes the layout names besides its tiles (IIIF: full/max, each of ``sizes``).

    Each size is rendered once, straight from the network at that size (``supersample``²
    samples a pixel; the base size is the render's own pixels), streamed in bands of
    rows into the encoder, so memory follows the band, not the size. A name that
    already exists (a tile of the same size, or an earlier run) is copied, not rendered.
    """
    by_size: dict[tuple[int, int], list[str]] = {}
    for path, w, h in p.scheme.full_images(p):
        by_size.setdefault((w, h), []).append(path)
    for (w, h), paths in by_size.items():
        missing = [q for q in paths if not store.exists(q)]
        if not missing:
            continue
        have = next((q for q in paths if store.exists(q)), None)
        data = store.path(have).read_bytes() if have else _render_full(p, backend, w, h, supersample, quality)
        for q in missing:
            store.write(q, data)


def _render_full(p: Pyramid, backend: Backend, width: int, height: int, supersample: int, quality: int) -> bytes:
    from ..formats.vips import StripSource, png_stream

    k = 1 if (width, height) == (p.width, p.height) else supersample
    rows = max(1, backend.job_samples(1 << 22) // (width * k * k))
    strips = (backend.render_scaled(width, height, y, min(rows, height - y), k) for y in range(0, height, rows))
    source = StripSource(png_stream(strips, width, height, backend.bands, 8))
    try:
        return encode_image(source.image(), p.suffix, quality)
    except pyvips.Error:
        if source.error is not None:
            raise source.error from None
        raise


def finish(cfg: Config, p: Pyramid, out: PyramidOutput, supersample: int, base_url: str, title: str,
           stats: PyramidStats) -> None:
    """What completes a pyramid once its tiles are written: the blank tile, the viewer page, the descriptor."""
    from .viewer import GENERATOR_META, install_openseadragon, static_page

    if p.scheme.blank_tile:
        blank = pyvips.Image.black(p.tile, p.tile) + 255
        write_atomic(out.root / "blank.png", blank.cast("uchar").pngsave_buffer(keep="none"))
    local = install_openseadragon(out.root)
    info = (f"bigcppn {__version__} · seed {cfg.seed} · {p.width}×{p.height} px · {p.layout} · "
            f"{len(p.levels)} levels · supersampled {supersample}×{supersample}")
    page_html = static_page(p, title or f"{out.name} (bigcppn)", info, local)
    page = out.page  # NAME.html, or index.html in the pyramid's own folder; checked before rendering
    if page.exists() and GENERATOR_META not in page.read_text(encoding="utf-8", errors="replace"):
        raise UserError(f"'{page}' appeared while rendering and was not written by bigcppn; move it and run "
                        "the same command again")
    write_atomic(page, page_html)
    stats.page = page
    stats.viewer_local = local
    if p.descriptor_path:
        stats.descriptor = out.root / p.descriptor_path
        write_atomic(stats.descriptor, p.descriptor(base_url or f"http://localhost:8000/{out.name}"))


def job_pixels(renderer: Renderer, plan: Plan, supersample: int) -> int:
    """Level pixels evaluated in one job below the base: a CPU's cache-sized share, or a GPU's batch."""
    return level_job_pixels(supersample, renderer.job_samples(plan.batch_pixels))


def level_job_pixels(supersample: int, samples: int | None = None) -> int:
    """Level pixels per job of the work list: ``samples`` (``Backend.job_samples``; default a CPU's share) / K²."""
    return max(1, (samples or CPU_JOB_SAMPLES) // (supersample * supersample))


class WorkRunner(Protocol):
    """Renders a work list somewhere other than this process' threads (a cluster: :mod:`bigcppn.cluster`)."""

    def open(self, out: PyramidOutput) -> None:
        """Start the workers and check they can write the pyramid's folder (before the manifest is written)."""
        ...

    def run(self, work: PyramidWork, p: Pyramid, out: PyramidOutput, store: TileStore, stats: PyramidStats,
            on_tile: Callable[[LevelTile], None] | None = None) -> None:
        """Render and write every tile of ``work``, counting them in ``stats``."""
        ...

    def close(self, cancel: bool = False) -> None:
        """Stop the workers; ``cancel``: without waiting for the work they are doing (Ctrl-C)."""
        ...


def render_pyramid(
    cfg: Config,
    p: Pyramid,
    out: PyramidOutput,
    renderer: Renderer | None,
    plan: Plan | None,
    supersample: int = 2,
    quality: int = 90,
    workers: int = 1,
    encoders: int | None = None,
    base_url: str = "",
    title: str = "",
    on_start: Callable[[int, int], None] | None = None,
    on_tile: Callable[[LevelTile], None] | None = None,
    progress: Callable[[PyramidProgress], None] | None = None,
    overwrite: bool = False,
    runner: WorkRunner | None = None,
) -> PyramidStats:
    """Render every missing tile of ``p`` into ``out``, then the metadata and the viewer page.

    Holds the pyramid's owner lock throughout. ``on_start(pending, total)`` is
    called once the finished tiles are counted; ``on_tile`` after each tile is
    written (from encoder threads); ``progress`` with a :class:`PyramidProgress`
    when the work is known and after each tile (one call at a time). Another
    render's pyramid at ``out`` is refused (UserError) unless ``overwrite``:
    then the new one is rendered beside it and takes its place only once
    complete (a failed or interrupted replacement leaves the old one as it
    was, and its own finished tiles beside it for the same command to
    resume). ``runner`` renders the work list
    somewhere else (a cluster: :mod:`bigcppn.cluster`); by default threads here
    do, and ``renderer``/``plan`` may then not be None.
    """
    t_start = time.perf_counter()
    stats = PyramidStats(tiles=p.tile_count)
    key = manifest_key(cfg, pyramid_params(p, quality, supersample, base_url))
    with out.lock() as lock:
        state = out.check_manifest(key, overwrite)
        # Another render's pyramid stays as it is until its replacement, rendered beside it, is complete;
        # an interrupted replacement keeps its tiles there, and the same command resumes it.
        if state == "replace":
            target, resuming = out.replacement(key)
        else:
            out.sweep_replacements()  # an abandoned replacement by another render
            target, resuming = out, state == "resume"
        stats.replaced = target is not out
        target.root.mkdir(exist_ok=True)
        try:
            _render_into(cfg, p, target, key, resuming, renderer, plan, supersample, quality, workers,
                         encoders, base_url, title, on_start, on_tile, progress, runner, stats)
        except BaseException as exc:
            exc.kept_in = target.root  # where the finished tiles are, for the line that reports the stop
            raise
        if target is not out:
            out.swap_in(target, lock)
            if not out.folder:  # the page beside the .dzi loads the viewer from the folder it is in
                from .viewer import install_openseadragon

                install_openseadragon(out.root)
            stats.page = out.root / stats.page.relative_to(target.root)
            stats.descriptor = out.root / stats.descriptor.relative_to(target.root) if stats.descriptor else None
    stats.seconds = time.perf_counter() - t_start
    return stats


def _render_into(cfg: Config, p: Pyramid, out: PyramidOutput, key: dict, resuming: bool, renderer, plan,
                 supersample: int, quality: int, workers: int, encoders: int | None, base_url: str, title: str,
                 on_start, on_tile, progress, runner: "WorkRunner | None", stats: PyramidStats) -> None:
    """Every missing tile of ``p`` into ``out``, then its metadata and page (the caller holds the lock)."""
    if runner is not None:
        runner.open(out)
    try:
        store = _prepare(out, key, resuming)
        # A new pyramid has no tiles yet (the manifest check refused anything in the way); a resumed one
        # is listed once.
        done = store.listing(out.tiles_dir).__contains__ if resuming else (lambda _path: False)
        samples = renderer.job_samples(plan.batch_pixels) if renderer is not None else None
        work = work_list(p, level_job_pixels(supersample, samples), done)
        stats.skipped = p.tile_count - work.pending
        if on_start is not None:
            on_start(work.pending, p.tile_count)
        counter = _Progress(work, p.tile_count, supersample, progress, on_tile)
        counter.report()
        if runner is not None:
            runner.run(work, p, out, store, stats, counter)  # the full images (IIIF) too
        else:
            _run_here(work, p, renderer, plan, store, supersample, quality, workers, encoders, stats, counter)
    except KeyboardInterrupt:
        if runner is not None:
            runner.close(cancel=True)
        raise
    finally:
        if runner is not None:
            runner.close()
    finish(cfg, p, out, supersample, base_url, title, stats)


def _run_here(work: PyramidWork, p: Pyramid, renderer: Renderer, plan: Plan, store: TileStore, supersample: int,
              quality: int, workers: int, encoders: int | None, stats: PyramidStats, on_tile) -> None:
    """The work list on this machine's threads: level jobs and encoding, then the full images (IIIF)."""
    with ThreadExecutor(workers, "bigcppn-level") as render_ex, \
            ThreadExecutor(encoders or available_cores(), "bigcppn-encode") as encode_ex:
        run_work(work, p, renderer, plan, store, supersample=supersample, quality=quality,
                 render_ex=render_ex, encode_ex=encode_ex, stats=stats, on_tile=on_tile)
    write_full_images(p, renderer, store, supersample=supersample, quality=quality)


def _prepare(out: PyramidOutput, key: dict, resuming: bool) -> TileStore:
    """The tile store; on a resume the partial files of the interrupted run swept, else the manifest written."""
    store = TileStore(out.root)
    if resuming:
        sweep_partials(out)
    else:
        out.write_manifest(key)
    return store


def sweep_partials(out: PyramidOutput) -> None:
    """Remove the hidden partial files that killed writers left in a pyramid (tiles, manifest, page, descriptor)."""
    TileStore(out.root).remove_partials(out.tiles_dir)
    for f in out.root.glob(".*.partial-*"):
        if f.is_file():
            f.unlink(missing_ok=True)
