"""Where the work runs: this machine's threads (the default) or a Ray cluster (``executor="ray"``).

The Python API and the command line name an executor; this module checks the
choice and, for Ray, hands the job to :mod:`bigcppn.cluster` (imported only
then, so the core never loads Ray). Outputs are the same bytes either way.
"""

from __future__ import annotations

import time
from dataclasses import replace

from .config import Config
from .errors import UserError

__all__ = ["executor_options", "with_workers", "render_file_ray", "check_ray_format", "check_network", "ray_actors",
           "pyramid_engine"]


def executor_options(executor: str, ray_address: str | None, workers: int | None):
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


def with_workers(cfg: Config, options, workers: int | None) -> Config:
    """Locally ``workers`` is the number of render threads (render.workers)."""
    if options is None and workers is not None:
        return replace(cfg, render=replace(cfg.render, workers=workers))
    return cfg


def render_file_ray(job, options, progress, executor=None):
    """A checked job rendered on Ray: :func:`bigcppn.cluster.single.render_single`; the API's RenderResult.

    ``executor``: actors a series of renders shares (:func:`ray_actors`).
    """
    from .api import RenderResult, _size_of
    from .cluster.single import check_format, render_single
    from .core.geometry import Canvas
    from .core.tiling import make_plan
    from .network.strips import CPU_BATCH
    from .formats.target import OutputTarget

    cfg = job.config
    check_format(job)  # (the API checks it before anything is written; this keeps the function safe alone)
    p = make_plan(Canvas(cfg.canvas.width, cfg.canvas.height, cfg.canvas.bleed), cfg.render.tile,
                  cfg.render.batch or CPU_BATCH)
    t0 = time.perf_counter()
    info = render_single(job, OutputTarget(job.output, job.fmt), options, p.batch_pixels, progress,
                         executor=executor)
    c = cfg.canvas
    return RenderResult(job.output, c.width, c.height, _size_of(job.output), time.perf_counter() - t0,
                        info["worker_cpu"], info["transfer_bytes"])


def check_ray_format(job) -> None:
    """UserError unless Ray's band writers write this output (:func:`bigcppn.cluster.single.check_format`)."""
    from .cluster.single import check_format

    check_format(job)


def check_network(cfg: Config) -> None:
    """What building the renderer checks, on this machine's CPU: the network fits and overflows nowhere."""
    import torch

    from .network.strips import renderer_for

    renderer_for(cfg, torch.device("cpu"))


def ray_actors(options):
    """A context holding Ray and its actors for several renders (:func:`bigcppn.cluster.single.actors`)."""
    from .cluster.single import actors

    return actors(options)


def pyramid_engine(cfg: Config, options):
    """The pyramid's :class:`~bigcppn.pyramid.render.WorkRunner`: this machine's threads, or a cluster's actors."""
    if options is not None:
        from .cluster.pyramid import RayPyramidRunner

        check_network(cfg)
        return RayPyramidRunner(options)
    from .network.strips import pick_device, renderer_for, strip_workers
    from .pyramid.local import ThreadRunner

    device = pick_device(cfg.render.device)
    renderer, p_plan = renderer_for(cfg, device)
    return ThreadRunner(renderer, p_plan, strip_workers(device, cfg.render.workers))
