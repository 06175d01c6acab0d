"""The Python API: render an array, a file or a pyramid, and plan a render.

Every function takes a config as a :class:`~bigcppn.config.Config`, a path to a
TOML file, or ``None`` (the article's network). Bad input raises
:class:`~bigcppn.errors.UserError` before anything is rendered; a failure while
rendering raises :class:`~bigcppn.errors.RenderError` and leaves nothing under
the output's name. The command line is a thin layer over these functions.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from .config import Config
from .errors import RenderError, UserError
from .estimate import PlanInfo, check_disk, describe, measure_rate
from .geometry import Window
from .job import Sizing, resolve_config, resolve_job

__all__ = ["render_array", "render_file", "plan", "render_pyramid", "RenderResult", "PyramidResult", "PlanInfo",
           "as_config", "CompletedInterrupt"]

ConfigLike = Config | str | Path | None


def as_config(config: ConfigLike = None, **values) -> Config:
    """A :class:`Config` from a Config, a TOML path or None, with keyword values on top.

    The keywords are those of :func:`bigcppn.job.resolve_config` (``seed``,
    ``depth``, ``tile``, ``device``, ``overrides``, ``sizing``, ``from_image``).
    """
    return resolve_config(config, **{k: v for k, v in values.items() if v is not None})


class CompletedInterrupt(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) that came after the output was complete; ``result`` says what was written."""

    def __init__(self, result: "RenderResult") -> None:
        super().__init__(f"interrupted after {result.path} was complete")
        self.result = result


@dataclass(frozen=True)
class RenderResult:
    """A finished render: where it is, its size in pixels and on disk, and how long it took."""

    path: Path
    width: int
    height: int
    bytes: int
    seconds: float
    worker_cpu: float = 0.0  # CPU seconds of the cluster's workers (executor="ray"; 0 locally)
    transfer_bytes: int = 0  # bytes of jobs and results between driver and workers (executor="ray")

    @property
    def mpix_per_s(self) -> float:
        return self.width * self.height / 1e6 / max(self.seconds, 1e-9)


def render_array(config: ConfigLike = None, *, width: int | None = None, height: int | None = None,
                 seed: int | None = None, window: tuple[int, int, int, int] | None = None,
                 device: str | None = None, depth: int | None = None) -> np.ndarray:
    """The picture as an (height, width, bands) uint8 or uint16 array.

    ``width``/``height`` size the canvas (one of them keeps the config's
    aspect); ``window=(x, y, w, h)`` renders only that region of the canvas,
    pixel for pixel the same as that region of a whole render. ``device``
    (auto, cpu, cuda) and ``depth`` (8 or 16) default to the config's (auto, 8).

    >>> import bigcppn
    >>> bigcppn.render_array(width=64, height=48, seed=7, device="cpu").shape
    (48, 64, 3)
    """
    from .render import renderer_for

    cfg = as_config(config, sizing=Sizing(width=width, height=height), seed=seed, device=device, depth=depth)
    renderer, plan = renderer_for(cfg)
    c = plan.canvas
    x, y, w, h = window if window is not None else (0, 0, c.width, c.height)
    win = Window(x, y, w, h)
    if w < 1 or h < 1 or win.intersection(Window(0, 0, c.width, c.height)) != win:
        raise UserError(f"window {tuple(window)} is not inside the {c.width}x{c.height} canvas; "
                        "give (x, y, width, height) within it")
    out = np.empty((h, w, renderer.bands), dtype=renderer.dtype)
    rows = max(1, plan.batch_pixels // w)
    for part in win.subdivide(w, rows):
        out[part.y - y : part.y - y + part.height] = renderer.render_window(part)
    return out


def plan(config: ConfigLike = None, path: str | Path | None = None, *, measure: bool = True) -> PlanInfo:
    """What rendering ``config`` to ``path`` would do: tiles, batches, memory, bytes, and (``measure``) time.

    >>> import bigcppn
    >>> info = bigcppn.plan(bigcppn.load_config(None, ["canvas.width=640", "canvas.height=480"]), "a.png",
    ...                     measure=False)
    >>> (info.width, info.height, info.format)
    (640, 480, 'png')
    """
    from .render import pick_device, renderer_for, strip_workers

    job = resolve_job(as_config(config), path)
    device = pick_device(job.config.render.device)
    renderer, p = renderer_for(job.config, device)
    rate = measure_rate(renderer, p, strip_workers(device, job.config.render.workers)) if measure else None
    return describe(job, p, device.type, rate)


def render_file(config: ConfigLike, path: str | Path | None = None, *,
                progress: Callable[[int, int], None] | None = None, executor: str = "local",
                ray_address: str | None = None, workers: int | None = None) -> RenderResult:
    """Render to ``path``; the extension picks the format (default ``cppn-SEED-WxH.tif``).

    Everything ``bigcppn render`` does: the format's limits and the free disk
    checked first, the config embedded, the file written under a hidden
    temporary name and renamed only when complete. ``progress(done, total)``
    is called about ten times a second with rendered pixels.

    ``executor="ray"``: a tiled TIFF rendered and encoded on a Ray cluster (``ray_address``,
    ``workers``: as :func:`render_pyramid`), the same file byte for byte.
    """
    from .render import StripStream, pick_device, renderer_for, strip_workers
    from .sink import save_strips

    options = _executor_options(executor, ray_address, workers)
    job = resolve_job(as_config(config), path)
    if options is None and workers is not None:
        job = replace(job, config=replace(job.config, render=replace(job.config.render, workers=workers)))
    cfg = job.config
    if options is not None:
        return _render_file_ray(job, options, progress)
    device = pick_device(cfg.render.device)
    target = _probed(job)
    renderer, p = renderer_for(cfg, device)
    _check_file_disk(job, p, device.type)
    c = p.canvas
    stream = StripStream(renderer, p, queue_size=cfg.render.queue,
                         workers=strip_workers(device, cfg.render.workers))
    done = {"rows": 0}

    def counted():
        for strip in stream:
            done["rows"] += strip.shape[0]
            yield strip

    def poll() -> None:
        if progress is not None:
            progress(done["rows"] * c.width, c.pixels)

    t0 = time.perf_counter()
    complete = False
    try:
        save_strips(counted(), target, c.width, c.height, cfg.network.bands, cfg.output,
                    poll=poll, cancel=stream.cancel, config=cfg)
        complete = True
    finally:
        try:
            stream.cancel()
            stream.join()  # no rendering thread may outlive the call
            poll()
        except KeyboardInterrupt:
            if not complete:
                raise
            # Ctrl-C after the file was complete: it stays, and the caller is told so
            raise CompletedInterrupt(RenderResult(job.output, c.width, c.height, 0, time.perf_counter() - t0))
    size = sum(_size_of(f) for f in job.fmt.produced(job.output))
    return RenderResult(job.output, c.width, c.height, size, time.perf_counter() - t0)


def _probed(job):
    """The output's :class:`~bigcppn.sink.OutputTarget`, its folder checked writable; UserError if not."""
    from .sink import OutputTarget

    target = OutputTarget(job.output, job.fmt)
    try:
        target.probe()
    except OSError as exc:
        raise UserError(str(exc)) from None
    return target


def _check_file_disk(job, p, device: str) -> None:
    needed = describe(job, p, device, None).estimated_bytes
    if job.fmt.is_pyramid(job.config.output) and job.fmt.writer(job.config.output) == "tiff":
        needed = needed * 5 // 4  # lower pyramid levels spool beside the output until they are appended
    check_disk(job.output, needed)


def _render_file_ray(job, options, progress) -> RenderResult:
    """:func:`render_file` on Ray: the same checks, then :func:`bigcppn.cluster.tiff.render_tiff`."""
    from .cluster.tiff import check_format, render_tiff
    from .geometry import Canvas
    from .plan import make_plan
    from .render import CPU_BATCH

    cfg = job.config
    check_format(job)
    target = _probed(job)
    p = make_plan(Canvas(cfg.canvas.width, cfg.canvas.height, cfg.canvas.bleed), cfg.render.tile,
                  cfg.render.batch or CPU_BATCH)
    _check_file_disk(job, p, "ray")
    t0 = time.perf_counter()
    info = render_tiff(job, target, options, p.batch_pixels, progress)
    c = job.config.canvas
    return RenderResult(job.output, c.width, c.height, _size_of(job.output), time.perf_counter() - t0,
                        info["worker_cpu"], info["transfer_bytes"])


def _size_of(p: Path) -> int:
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return p.stat().st_size if p.exists() else 0


@dataclass(frozen=True)
class PyramidResult:
    """A finished pyramid: its descriptor (or folder), levels, tiles written and skipped, and the page."""

    path: Path
    width: int
    height: int
    levels: int
    tiles: int
    written: int
    skipped: int
    pixels: int
    page: Path
    seconds: float
    worker_cpu: float = 0.0  # CPU seconds of the cluster's workers (executor="ray"; 0 locally)
    transfer_bytes: int = 0  # bytes of jobs and results between driver and workers (executor="ray")

    @property
    def tiles_per_s(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0

    @property
    def mpix_per_s(self) -> float:
        return self.pixels / 1e6 / max(self.seconds, 1e-9)


def render_pyramid(config: ConfigLike, path: str | Path | None = None, *, layout: str = "dz",
                   tile: int | None = None, overlap: int | None = None, format: str = "jpeg",
                   quality: int | None = None, supersample: int = 2, base_url: str | None = None,
                   max_size: int | None = None, on_start: Callable[[int, int], None] | None = None,
                   on_tile: Callable[[object], None] | None = None,
                   executor: str = "local", ray_address: str | None = None,
                   workers: int | None = None) -> PyramidResult:
    """Render a deep-zoom pyramid, every level straight from the network, with a viewer page.

    ``layout`` is dz (``path`` = DIR/NAME.dzi), iiif3, zoomify or google
    (``path`` = a folder); ``format`` the tile format (jpeg, webp, png).
    ``max_size`` (iiif3): the largest width and height served, the size of
    ``full/max`` (default 2048, or the tile size when larger). Tiles
    are written atomically; calling it again after an interruption skips the
    finished ones. ``on_start(pending, total)`` is called once the finished
    tiles are counted, ``on_tile(tile)`` after each tile (from worker threads).

    ``executor="ray"`` renders the tiles on a Ray cluster (``pip install
    "bigcppn[ray]"``): ``ray_address`` None starts or joins a local Ray,
    ``"auto"`` or ``HOST:PORT`` joins a cluster; ``workers`` is the number of
    actors (default one per GPU, or one per CPU-only node). The output folder
    must be on a filesystem every node shares. Locally ``workers`` is the
    number of render threads. The tiles are the same bytes either way.
    """
    import pyvips

    from .geometry import Canvas
    from .pyramid import render_pyramid as run
    from .pyramid_plan import Pyramid

    cfg = as_config(config)
    if cfg.output.depth != 8:
        raise UserError("pyramid tiles are 8-bit; leave out --depth 16 (or output.depth)")
    options = _executor_options(executor, ray_address, workers)
    opts = _pyramid_options(cfg, layout, format, tile, overlap, quality, supersample, base_url or "", max_size)
    out = pyramid_place(cfg, path, layout)
    if options is None and workers is not None:
        cfg = replace(cfg, render=replace(cfg.render, workers=workers))
    renderer, p_plan, threads, runner = _pyramid_engine(cfg, options, supersample, opts["quality"])
    c = Canvas(cfg.canvas.width, cfg.canvas.height, cfg.canvas.bleed)
    p = Pyramid(c.width, c.height, layout, opts["tile"], opts["overlap"], format,
                name="image" if out.folder else out.name, max_size=opts["max_size"])
    _check_pyramid_disk(cfg, out, format)
    try:
        stats = run(cfg, p, out, renderer, p_plan, supersample=supersample, quality=opts["quality"],
                    workers=threads, base_url=opts["base_url"], on_start=on_start, on_tile=on_tile,
                    runner=runner)
    except (OSError, pyvips.Error, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise RenderError(f"writing the pyramid failed: {first}; the finished tiles are kept, "
                          "run the same command again to resume") from exc
    return PyramidResult(stats.descriptor or out.root, p.width, p.height, len(p.levels), stats.tiles,
                         stats.written, stats.skipped, stats.pixels, stats.page, stats.seconds,
                         stats.worker_cpu, stats.transfer_bytes)


def _pyramid_engine(cfg: Config, options, supersample: int, quality: int):
    """(renderer, plan, threads, None) for a local run, (None, None, 1, runner) for a cluster."""
    if options is not None:
        from .cluster.pyramid import RayPyramidRunner

        return None, None, 1, RayPyramidRunner(cfg, supersample, quality, options)
    from .render import pick_device, renderer_for, strip_workers

    device = pick_device(cfg.render.device)
    renderer, p_plan = renderer_for(cfg, device)
    return renderer, p_plan, strip_workers(device, cfg.render.workers), None


def _check_pyramid_disk(cfg: Config, out, fmt: str) -> None:
    import shutil

    from .formats import FORMATS, estimate_output_bytes

    need = estimate_output_bytes(FORMATS["dz"], cfg.canvas.width, cfg.canvas.height, cfg.network.bands,
                                 replace(cfg.output, depth=8, dz_suffix=fmt))
    free = shutil.disk_usage(out.root if out.root.is_dir() else out.root.parent).free
    if need > free:
        raise UserError(f"not enough free disk for the pyramid: about {need / 1e9:.1f} GB needed, "
                        f"{free / 1e9:.1f} GB free; free some space or write elsewhere")


def _executor_options(executor: str, ray_address: str | None, workers: int | None):
    """None for the local executor, else the cluster's :class:`~bigcppn.cluster.pyramid.RayOptions`; checked."""
    if executor not in ("local", "ray"):
        raise UserError(f"unknown executor '{executor}'; choose local or ray")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if executor == "local":
        if ray_address is not None:
            raise UserError("--ray-address is for --executor ray")
        return None
    from .cluster.engine import require_ray
    from .cluster.pyramid import RayOptions

    require_ray()
    return RayOptions(address=ray_address, workers=workers)


def pyramid_place(cfg: Config, path: str | Path | None, layout: str):
    """Where a pyramid goes (:class:`~bigcppn.pyramid_store.PyramidOutput`); default ``cppn-SEED-WxH[.dzi]``."""
    from .pyramid_store import pyramid_output

    folder = _layout(layout).folder
    default = f"cppn-{cfg.seed}-{cfg.canvas.width}x{cfg.canvas.height}" + ("" if folder else ".dzi")
    return pyramid_output(path or default, layout)


def _pyramid_options(cfg: Config, layout: str, fmt: str, tile: int | None, overlap: int | None, quality: int | None,
                     supersample: int, base_url: str, max_size: int | None = None) -> dict:
    """The pyramid's settings, checked; UserError on any that cannot be used."""
    from .formats import FORMATS
    from .pyramid_plan import DEFAULT_OVERLAP, DEFAULT_TILE, LAYOUTS, MAX_TILE, TILE_FORMATS

    if layout not in LAYOUTS:
        raise UserError(f"unknown layout '{layout}'; choose from {', '.join(LAYOUTS)}")
    if fmt not in TILE_FORMATS:
        raise UserError(f"unknown tile format '{fmt}'; choose from {', '.join(TILE_FORMATS)}")
    tile = tile or DEFAULT_TILE[layout]
    if overlap is not None and not _layout(layout).overlap_allowed:
        raise UserError(f"--overlap applies to the dz layout only; the {layout} layout has none")
    overlap = overlap if overlap is not None else DEFAULT_OVERLAP[layout]
    if not 1 <= tile <= MAX_TILE:
        raise UserError(f"--tile {tile} is too large; use at most {MAX_TILE}")
    if not 0 <= overlap < tile:
        raise UserError(f"--overlap must be between 0 and the tile size - 1 ({tile - 1}), got {overlap}")
    quality = quality if quality is not None else cfg.output.quality
    if not 1 <= quality <= 100:
        raise UserError(f"--quality must be between 1 and 100, got {quality}")
    if supersample > 16:
        raise UserError(f"--supersample {supersample} is more than needed; use at most 16")
    if supersample < 1:
        raise UserError(f"--supersample must be at least 1, got {supersample}")
    if base_url and not re.match(r"^https?://[^\s/]+", base_url):
        raise UserError(f"--base-url must be an http(s) URL, got '{base_url}'")
    if base_url and not _layout(layout).published:
        raise UserError("--base-url is for the iiif3 layout (its info.json names its own URL)")
    if max_size is not None:
        if not _layout(layout).published:
            raise UserError("--max-size is for the iiif3 layout (the size of its full/max image)")
        if max_size < tile:
            raise UserError(f"--max-size {max_size} is smaller than the tile ({tile}); give at least {tile}")
        if max_size > FORMATS[fmt].max_side:
            raise UserError(f"--max-size {max_size} is more than {fmt.upper()} holds; "
                            f"use at most {FORMATS[fmt].max_side}")
    return {"tile": tile, "overlap": overlap, "quality": quality, "base_url": base_url, "max_size": max_size or 0}


def _layout(name: str):
    from .layouts import LAYOUTS

    return LAYOUTS[name]
