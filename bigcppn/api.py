"""The Python API: render an array, a file or a pyramid, and plan a render.

Every function takes a config as a :class:`~bigcppn.config.Config`, a path to a
TOML file, or ``None`` (the article's network). Bad input raises
:class:`~bigcppn.errors.UserError` before anything is rendered; a failure while
rendering raises :class:`~bigcppn.errors.RenderError` and leaves nothing under
the output's name. The command line is a thin layer over these functions.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .config import Config
from .errors import RenderError, UserError
from .estimate.disk import check_job_disk, free_bytes
from .estimate.plan import PlanInfo, describe
from .core.geometry import Window
from .results import CompletedInterrupt, PyramidResult, RenderResult
from .job import SEED_FIELD, Job, Sizing, check_overwrite, resolve_config, resolve_job
from .storage.base import is_url

__all__ = ["render_array", "render_file", "render_series", "render_sheet", "plan", "render_pyramid",
           "plan_pyramid", "serve", "RenderResult", "PyramidResult", "PlanInfo", "as_config", "CompletedInterrupt"]

ConfigLike = Config | str | Path | None


def as_config(config: ConfigLike = None, **values) -> Config:
    """A :class:`Config` from a Config, a TOML path or None, with keyword values on top.

    The keywords are those of :func:`bigcppn.job.resolve_config` (``seed``,
    ``depth``, ``tile``, ``device``, ``overrides``, ``sizing``, ``from_image``).
    """
    return resolve_config(config, **{k: v for k, v in values.items() if v is not None})


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
    from .network.strips import renderer_for

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


def plan(config: ConfigLike = None, path: str | Path | None = None, *, compression: str | None = None,
         quality: int | None = None, measure: bool = True, executor: str = "local",
         workers: int | None = None) -> PlanInfo:
    """What rendering ``config`` to ``path`` would do: tiles, batches, memory, bytes, and (``measure``) time.

    The time comes from the network and the output's writer timed on this
    machine, the way a render runs them (:mod:`bigcppn.estimate.measure`, about a second).
    ``executor="ray"``: also how the file is cut into bands for ``workers``
    actors (default 1) and what the driver keeps (``PlanInfo.ray``); Ray is not started.

    >>> import bigcppn
    >>> info = bigcppn.plan(bigcppn.load_config(None, ["canvas.width=640", "canvas.height=480"]), "a.png",
    ...                     measure=False)
    >>> (info.width, info.height, info.format)
    (640, 480, 'png')
    """
    from .engines import engine_for
    from .estimate.measure import measure_render
    from .estimate.sizes import estimate_output
    from .network.strips import renderer_for
    from .network.backend import strip_workers
    from .network.devices import pick_device

    if is_url(path):  # a bucket: the file's own plan, and the requests its upload makes
        from .formats.upload import plan_upload

        return plan_upload(lambda local: plan(config, local, compression=compression, quality=quality,
                                              measure=measure, executor=executor, workers=workers),
                           str(path), as_config(config).output)
    engine = engine_for(executor, workers=workers, planning=True)
    job = resolve_job(as_config(config), path, compression=compression, quality=quality)
    ray = engine.describe(job, workers)
    device = pick_device(job.config.render.device)
    renderer, p = renderer_for(job.config, device)
    rates = measure_render(job, renderer, p, strip_workers(device, job.config.render.workers)) if measure else None
    size = estimate_output(job, renderer) if measure else None
    return replace(describe(job, p, device.type, rates, size), ray=ray)


def _checked_job(cfg: Config, path, compression, quality, overwrite: bool) -> Job:
    """A render's job with everything checked that can be before rendering, but the free disk."""
    from .formats.target import OutputTarget

    job = resolve_job(cfg, path, compression=compression, quality=quality)
    try:
        OutputTarget(job.output, job.fmt).probe()
    except OSError as exc:
        raise UserError(str(exc)) from None
    check_overwrite(job, overwrite)
    return job


def _rendered(engine, job: Job, progress, session=None) -> RenderResult:
    """``engine.render``, a full disk told in one line (libvips' savers say only that they could not write)."""
    from .estimate.disk import no_space_error

    try:
        return engine.render(job, progress, session) if session is not None else engine.render(job, progress)
    except (RenderError, OSError) as exc:
        full = no_space_error(exc, job.output)
        if full is None:
            raise
        raise full from exc


def render_file(config: ConfigLike, path: str | Path | None = None, *, compression: str | None = None,
                quality: int | None = None, overwrite: bool = False,
                progress: Callable[[int, int], None] | None = None, executor: str = "local",
                ray_address: str | None = None, workers: int | None = None, endpoint_url: str | None = None,
                cache_control: str | None = None) -> RenderResult:
    """Render to ``path``; the extension picks the format (default ``cppn-SEED-WxH.tif``).

    ``path`` may be a bucket URL (``s3://bucket/prefix/poster.tif``): the file is made in a staging folder
    under TMPDIR and sent as one multipart upload, completed only when all of it is up (``endpoint_url``,
    ``cache_control``: as :func:`render_pyramid`).

    Everything ``bigcppn render`` does: the format's limits and the free disk
    checked first, the config embedded, the file written under a hidden
    temporary name and renamed only when complete. ``{seed}`` in ``path`` is
    replaced by the seed. An existing output is refused (UserError) unless
    ``overwrite``; then it stays as it is until the new one is complete.
    ``compression`` (TIFF) and ``quality`` (lossy outputs) override the
    config's ``output`` settings. ``progress(done, total)`` is called about
    ten times a second with rendered pixels.

    ``executor="ray"``: a tiled TIFF or a DeepZoom .dzi/.szi rendered and encoded on a Ray cluster (``ray_address``,
    ``workers``: as :func:`render_pyramid`): the same tiles, pixels and tags (a TIFF byte for byte unless it
    is cut in square blocks, which place the tiles in another order).
    """
    from .engines import engine_for

    if is_url(path):  # a bucket: rendered as a local file and sent as one multipart upload, while written
        from .formats.upload import render_to_bucket

        local = partial(render_file, config, compression=compression, quality=quality, overwrite=False,
                        progress=progress, executor=executor, ray_address=ray_address, workers=workers)
        url = str(path).replace(SEED_FIELD, str(as_config(config).seed))  # as output_path does for a file
        return render_to_bucket(local, url, storage_options(endpoint_url, cache_control), overwrite)
    engine = engine_for(executor, ray_address, workers)
    job = _checked_job(engine.configure(as_config(config), workers), path, compression, quality, overwrite)
    engine.check(job)
    check_job_disk(job)
    return _rendered(engine, job, progress)


def render_series(config: ConfigLike, path: str | Path | None, seeds: Sequence[int], *,
                  compression: str | None = None, quality: int | None = None, overwrite: bool = False,
                  progress: Callable[[int, int], None] | None = None,
                  on_done: Callable[[RenderResult], None] | None = None, executor: str = "local",
                  ray_address: str | None = None, workers: int | None = None, endpoint_url: str | None = None,
                  cache_control: str | None = None) -> list[RenderResult]:
    """Render one file per seed: ``path`` names them with ``{seed}`` (``poster-{seed}.tif``).

    Every output is checked (names, formats, existing files, free disk for all
    of them) before the first is rendered. ``progress(done, total)`` counts the
    pixels of the whole series; ``on_done(result)`` is called after each file.
    ``executor="ray"`` (TIFF and DeepZoom files, as :func:`render_file`): one
    set of Ray actors renders the whole series, one file after another. A bucket URL (``endpoint_url``,
    ``cache_control``: as :func:`render_file`): every object checked first, then each file as render_file.
    """
    from .engines import check_network, engine_for

    seeds = list(seeds)
    if not seeds:
        raise UserError("no seeds given; give e.g. --seeds 0-7")
    if len(set(seeds)) != len(seeds):
        twice = next(s for s in seeds if seeds.count(s) > 1)
        raise UserError(f"seed {twice} is given twice; give each seed once")
    if len(seeds) > 1 and path is not None and SEED_FIELD not in str(path):
        raise UserError(f"{len(seeds)} seeds need {len(seeds)} files: put {SEED_FIELD} in the output name, "
                        f"e.g. -o poster-{SEED_FIELD}{Path(str(path)).suffix or '.tif'}")
    if is_url(path):
        from .formats.upload import series_to_bucket

        one = partial(render_file, compression=compression, quality=quality, overwrite=overwrite, executor=executor,
                      ray_address=ray_address, workers=workers, endpoint_url=endpoint_url, cache_control=cache_control)
        return series_to_bucket(lambda seed, url, prog: one(replace(as_config(config), seed=seed), url, progress=prog),
                                str(path), seeds, storage_options(endpoint_url, cache_control), overwrite, progress,
                                on_done)
    engine = engine_for(executor, ray_address, workers)
    cfg = engine.configure(as_config(config), workers)
    jobs = [_checked_job(replace(cfg, seed=s), path, compression, quality, overwrite) for s in seeds]
    engine.check(jobs[0])  # every job has the same format and settings
    for job in jobs:
        check_network(job.config)  # each seed's network: none may overflow
    free: dict[Path, int] = {}  # folder: free bytes left once the outputs before are counted
    for job in jobs:
        left = free.setdefault(job.output.parent, free_bytes(job.output))
        free[job.output.parent] = left - check_job_disk(job, free=left)
    total = sum(j.config.canvas.width * j.config.canvas.height for j in jobs)
    results: list[RenderResult] = []
    with engine.session() as session:
        for job in jobs:
            before = sum(r.width * r.height for r in results)
            per_file = (lambda done, _n, b=before: progress(b + done, total)) if progress else None
            results.append(_rendered(engine, job, per_file, session))
            if on_done is not None:
                on_done(results[-1])
    return results


def render_sheet(config: ConfigLike, path: str | Path, seeds: Sequence[int] | str, *, cell: int = 256,
                 columns: int | None = None, aspect: float | None = None, overwrite: bool = False,
                 quality: int | None = None, progress: Callable[[int, int], None] | None = None,
                 endpoint_url: str | None = None, cache_control: str | None = None) -> RenderResult:
    """A contact sheet: one labelled thumbnail per seed, in one batched pass.

    ``seeds`` is a list or text such as ``"0-15"``; ``aspect`` (width / height)
    frames the thumbnails, by default the config's canvas; ``quality`` a JPEG
    or WebP sheet's (default the config's). ``path`` may be a bucket URL (as :func:`render_file`).
    """
    from .job import parse_seeds
    from .sheet import render_sheet as run

    if is_url(path):
        from .formats.upload import render_to_bucket

        local = partial(render_sheet, config, seeds=seeds, cell=cell, columns=columns, aspect=aspect, quality=quality,
                        progress=progress)
        return render_to_bucket(local, str(path), storage_options(endpoint_url, cache_control), overwrite)
    if isinstance(seeds, str):
        seeds = parse_seeds(seeds)
    return run(as_config(config), path, list(seeds), cell, columns, aspect=aspect, overwrite=overwrite,
               quality=quality, progress=progress)


def storage_options(endpoint_url: str | None = None, cache_control: str | None = None, break_lock: bool = False):
    """How an ``s3://`` output is reached: a :class:`~bigcppn.storage.base.StorageOptions`."""
    from .storage.base import StorageOptions

    return StorageOptions(endpoint_url or "", cache_control or "", break_lock)


def render_pyramid(config: ConfigLike, path: str | Path | None = None, *, layout: str = "dz",
                   tile: int | None = None, overlap: int | None = None, format: str = "jpeg",
                   quality: int | None = None, supersample: int = 2, base_url: str | None = None,
                   max_size: int | None = None, overwrite: bool = False,
                   on_start: Callable[[int, int], None] | None = None,
                   on_tile: Callable[[object], None] | None = None,
                   progress: Callable[[object], None] | None = None, executor: str = "local",
                   ray_address: str | None = None, workers: int | None = None, endpoint_url: str | None = None,
                   cache_control: str | None = None,
                   break_lock: bool = False) -> PyramidResult:
    """Render a deep-zoom pyramid, every level straight from the network, with a viewer page.

    ``layout`` is dz (``path`` = DIR/NAME.dzi, the page DIR/NAME.html), iiif3,
    zoomify or google (``path`` = a folder, the page in it is index.html);
    ``format`` the tile format (jpeg, webp, png). ``max_size`` (iiif3): the
    largest width and height served, the size of ``full/max`` (default 2048,
    or the tile size when larger). Tiles are written atomically;
    calling it again after an interruption skips the finished ones. Another
    render's pyramid at ``path`` is refused (UserError) unless ``overwrite``,
    which removes it first. ``on_start(pending, total)`` is called once the
    finished tiles are counted, ``on_tile(tile)`` after each tile (from worker
    threads), ``progress`` with a :class:`~bigcppn.pyramid.render.PyramidProgress`
    (tiles and network samples across all levels, one call at a time).

    ``executor="ray"`` renders the tiles on a Ray cluster (``pip install
    "bigcppn[ray]"``): ``ray_address`` None starts or joins a local Ray,
    ``"auto"`` or ``HOST:PORT`` joins a cluster; ``workers`` is the number of
    actors (default one per GPU, or one per CPU-only node). The output folder
    must be on a filesystem every node shares, or a bucket. Locally ``workers`` is the
    number of render threads. The tiles are the same bytes either way.

    ``path`` may be a bucket URL (``s3://bucket/prefix/NAME.dzi``; ``pip install "bigcppn[s3]"``):
    ``endpoint_url`` names an S3-compatible service (default ``AWS_ENDPOINT_URL``), ``cache_control`` is
    every object's ``Cache-Control``, ``break_lock`` takes over a lock another machine left; docs/storage.md.
    """
    import pyvips

    from .engines import engine_for
    from .pyramid.render import PyramidHooks
    from .pyramid.render import render_pyramid as run
    from .pyramid.request import resolve_pyramid_request

    engine = engine_for(executor, ray_address, workers)
    request = resolve_pyramid_request(
        engine.configure(as_config(config), workers), path, layout=layout, tile=tile, overlap=overlap,
        format=format, quality=quality, supersample=supersample, base_url=base_url, max_size=max_size,
        overwrite=overwrite, storage=storage_options(endpoint_url, cache_control, break_lock))
    request.check_output()
    runner = engine.pyramid(request.config)
    try:
        stats = run(request, runner, PyramidHooks(on_start, on_tile, progress))
    except (OSError, pyvips.Error, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise RenderError(f"writing the pyramid failed: {first}; the finished tiles are kept, "
                          "run the same command again to resume") from exc
    p = request.pyramid
    return PyramidResult(stats.descriptor or request.out.root, p.width, p.height, len(p.levels), stats.tiles,
                         stats.written, stats.skipped, stats.pixels, stats.page, stats.seconds,
                         stats.viewer_local, stats.replaced, stats.worker_cpu, stats.transfer_bytes,
                         _requests(request.out.storage))


def _requests(storage) -> dict | None:
    """A bucket's request counts (None for a local folder)."""
    from dataclasses import asdict

    return asdict(storage.stats) if storage.remote else None


def plan_pyramid(config: ConfigLike = None, path: str | Path | None = None, *, layout: str = "dz",
                 tile: int | None = None, overlap: int | None = None, format: str = "jpeg",
                 quality: int | None = None, supersample: int = 2, base_url: str | None = None,
                 max_size: int | None = None, overwrite: bool = False, measure: bool = True,
                 endpoint_url: str | None = None, cache_control: str | None = None):
    """What :func:`render_pyramid` would do, without rendering: levels, tiles, files, bytes and time.

    Refuses (UserError) what the render would refuse; counts the tiles a
    resumed run would still write. Returns a :class:`~bigcppn.estimate.plan.PyramidPlanInfo`.
    """
    from .estimate.plan import describe_pyramid
    from .estimate.measure import measure_pyramid
    from .estimate.sizes import estimate_pyramid
    from .pyramid.local import job_pixels
    from .pyramid.request import resolve_pyramid_request
    from .pyramid.worklist import work_list
    from .pyramid.store import TileStore
    from .network.strips import renderer_for
    from .network.backend import strip_workers
    from .network.devices import pick_device

    request = resolve_pyramid_request(
        as_config(config), path, layout=layout, tile=tile, overlap=overlap, format=format, quality=quality,
        supersample=supersample, base_url=base_url, max_size=max_size, overwrite=overwrite,
        storage=storage_options(endpoint_url, cache_control))
    if request.out.storage.remote:
        request.out.storage.check()
    state = request.out.check_manifest(request.key, request.overwrite)
    cfg = request.config
    device = pick_device(cfg.render.device)
    renderer, tiling = renderer_for(cfg, device)
    store = TileStore(request.out.storage)
    done = store.listing(request.pyramid.layout.tiles_folder(request.out.name)).__contains__ \
        if state == "resume" else (lambda _path: False)
    work = work_list(request.pyramid, job_pixels(renderer, tiling, supersample), done)
    workers = strip_workers(device, cfg.render.workers)
    rates = measure_pyramid(request, renderer, tiling, workers) if measure else None
    size = estimate_pyramid(request, renderer) if measure else None
    return describe_pyramid(request, work, state, device.type, rates, size)


def serve(config: ConfigLike = None, *, host: str = "127.0.0.1", port: int = 8000, tile: int | None = None,
          extra_levels: int | None = None, supersample: int = 2, quality: int | None = None, cache_mb: int = 256,
          cors: bool = False, verbose: bool = False, on_ready: Callable[[object], None] | None = None):
    """Serve a live viewer of ``config`` that zooms on forever, tiles rendered on demand (``bigcppn serve``).

    A DeepZoom image ``2**extra_levels`` times larger than the canvas (default:
    as deep as float64 resolves) at ``http://HOST:PORT/``: the page at ``/``,
    ``/image.dzi``, tiles of ``tile`` pixels (default 254) at
    ``/image_files/LEVEL/COL_ROW.jpeg``, rendered in batches and kept in
    ``cache_mb`` MB; ``port`` 0 picks a free one; ``cors`` lets pages elsewhere
    use it. Bad settings, or an address it cannot listen on, raise UserError.

    ``on_ready(server)`` is called once it listens (``server.url`` is where);
    then it serves until SIGTERM or Ctrl-C (caught when called from the main
    thread) or until another thread calls ``server.drain()``, and finishes the
    answers in progress. Returns a :class:`~bigcppn.server.app.ServeResult`
    (``status`` 143 after SIGTERM, else 0).
    """
    from .server.app import serve as run

    return run(as_config(config), host=host, port=port, tile=tile, extra_levels=extra_levels,
               supersample=supersample, quality=quality, cache_mb=cache_mb, cors=cors, verbose=verbose,
               on_ready=on_ready)
