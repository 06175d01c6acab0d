"""Where the work runs: an :class:`Engine`, this machine's threads (``local``) or a Ray cluster (``ray``).

The API names an executor and asks its engine to check a job, render it, hold
a session for a series, set up a pyramid and describe the Ray part of a plan;
it never tests which engine it has. The Ray engine hands the work to
:mod:`bigcppn.cluster` (imported only then, so the core never loads Ray).
Outputs are the same bytes either way. A new engine is a subclass registered
in :data:`ENGINES`.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from typing import Callable, ContextManager

from .config import Config
from .errors import UserError
from .job import Job
from .results import CompletedInterrupt, RenderResult, size_of

__all__ = ["Engine", "LocalEngine", "RayEngine", "ENGINES", "engine_for", "check_network"]

Progress = Callable[[int, int], None] | None


def check_network(cfg: Config) -> None:
    """What building the renderer checks, on this machine's CPU: the network fits and overflows nowhere."""
    import torch

    from .network.strips import renderer_for

    renderer_for(cfg, torch.device("cpu"))


class Engine:
    """How a checked job is rendered. Subclasses: :class:`LocalEngine`, :class:`RayEngine`."""

    def __init__(self, ray_address: str | None = None, workers: int | None = None) -> None:
        """The engine with its options (checked: UserError)."""

    @classmethod
    def planning(cls, workers: int | None) -> "Engine":
        """The engine for ``plan``, which starts nothing; ``workers``: the actors to plan for."""
        if workers is not None:
            raise UserError("--workers is for --executor ray here (the actors to plan for), at least 1")
        return cls()

    def configure(self, cfg: Config, workers: int | None) -> Config:
        """``cfg`` with what ``workers`` means to this engine."""
        return cfg

    def check(self, job: Job) -> None:
        """UserError, before anything is written, for a job this engine cannot render."""

    def session(self) -> ContextManager:
        """What a series of renders shares (Ray's actors); passed back to :meth:`render`."""
        return contextlib.nullcontext()

    def segment_runner(self) -> ContextManager:
        """An executor whose ``map_ordered`` renders a clip's segments (:mod:`bigcppn.animate.segments`), or None:
        this process renders them one after another, its frames batched or in strips on its own workers."""
        return contextlib.nullcontext()

    def render(self, job: Job, progress: Progress, session=None) -> RenderResult:
        raise UserError(f"{type(self).__name__} cannot render files")

    def pyramid(self, cfg: Config):
        """The :class:`~bigcppn.pyramid.render.WorkRunner` that renders a pyramid's work list."""
        raise UserError(f"{type(self).__name__} cannot render pyramids")

    def describe(self, job: Job, workers: int | None) -> dict | None:
        """This engine's part of ``plan`` (Ray: how the file is cut for ``workers`` actors); None locally."""
        return None


class LocalEngine(Engine):
    """This machine: strips rendered ahead on threads, the writer encoding on every core."""

    def __init__(self, ray_address: str | None = None, workers: int | None = None) -> None:
        if ray_address is not None:
            raise UserError("--ray-address is for --executor ray")

    def configure(self, cfg: Config, workers: int | None) -> Config:
        """Locally ``workers`` is the number of render threads (render.workers)."""
        if workers is not None:
            return replace(cfg, render=replace(cfg.render, workers=workers))
        return cfg

    def render(self, job: Job, progress: Progress, session=None) -> RenderResult:
        """Render a checked job to its output, atomically."""
        from .formats.target import OutputTarget
        from .network.strips import StripStream, renderer_for
        from .network.backend import strip_workers
        from .network.devices import pick_device

        cfg = job.config
        device = pick_device(cfg.render.device)
        renderer, p = renderer_for(cfg, device)
        stream = StripStream(renderer, p, queue_size=cfg.render.queue,
                             workers=strip_workers(device, cfg.render.workers))
        t0 = time.perf_counter()
        _save_stream(job, stream, OutputTarget(job.output, job.fmt), p.canvas, progress, t0)
        c = p.canvas
        size = sum(size_of(f) for f in job.fmt.produced(job.output))
        return RenderResult(job.output, c.width, c.height, size, time.perf_counter() - t0)

    def pyramid(self, cfg: Config):
        """This machine's threads (:class:`~bigcppn.pyramid.local.ThreadRunner`)."""
        from .network.strips import renderer_for
        from .network.backend import strip_workers
        from .network.devices import pick_device
        from .pyramid.local import ThreadRunner

        device = pick_device(cfg.render.device)
        renderer, tiling = renderer_for(cfg, device)
        return ThreadRunner(renderer, tiling, strip_workers(device, cfg.render.workers))


def _save_stream(job: Job, stream, target, c, progress: Progress, t0: float) -> None:
    """The strips of ``stream`` saved to ``target``; no rendering thread outlives the call.

    Ctrl-C after the file was complete leaves it, and raises :class:`CompletedInterrupt` to say so.
    """
    from .formats.target import save_strips

    cfg = job.config
    done = {"rows": 0}

    def counted():
        for strip in stream:
            done["rows"] += strip.shape[0]
            yield strip

    def poll() -> None:
        if progress is not None:
            progress(done["rows"] * c.width, c.pixels)

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
            raise CompletedInterrupt(RenderResult(job.output, c.width, c.height, 0, time.perf_counter() - t0))


class RayEngine(Engine):
    """A Ray cluster: TIFF and DeepZoom files cut into blocks, pyramids as independent jobs (:mod:`bigcppn.cluster`)."""

    def __init__(self, ray_address: str | None = None, workers: int | None = None) -> None:
        from .cluster.executor import require_ray
        from .cluster.pyramid import RayOptions

        require_ray()
        self.options = RayOptions(address=ray_address, workers=workers)

    def check(self, job: Job) -> None:
        from .cluster.single import check_format

        check_format(job)
        check_network(job.config)  # (a local render checks it as it builds the renderer)

    def session(self) -> ContextManager:
        from .cluster.single import actors

        return actors(self.options)

    def segment_runner(self) -> ContextManager:
        """Ray's actors, a segment of a clip each at a time."""
        from .cluster.single import actors

        return actors(self.options)

    def render(self, job: Job, progress: Progress, session=None) -> RenderResult:
        """A checked job rendered on Ray (:func:`bigcppn.cluster.single.render_single`); ``session``: shared actors."""
        from .cluster.single import render_single
        from .core.geometry import Canvas
        from .core.tiling import make_tiling
        from .formats.target import OutputTarget
        from .network.devices import CPU_BATCH

        cfg, c = job.config, job.config.canvas
        p = make_tiling(Canvas(c.width, c.height, c.bleed), cfg.render.tile, cfg.render.batch or CPU_BATCH)
        t0 = time.perf_counter()
        info = render_single(job, OutputTarget(job.output, job.fmt), self.options, p.batch_pixels, progress,
                             executor=session)
        return RenderResult(job.output, c.width, c.height, size_of(job.output), time.perf_counter() - t0,
                            info["worker_cpu"], info["transfer_bytes"])

    def pyramid(self, cfg: Config):
        """Ray's actors (:class:`~bigcppn.cluster.pyramid.RayPyramidRunner`)."""
        from .cluster.pyramid import RayPyramidRunner

        check_network(cfg)
        return RayPyramidRunner(self.options)

    @classmethod
    def planning(cls, workers: int | None) -> "Engine":
        """Ray for ``plan``: the cut is arithmetic, so Ray need not be installed, nor started."""
        if workers is not None and workers < 1:
            raise UserError("--workers is for --executor ray here (the actors to plan for), at least 1")
        engine = cls.__new__(cls)
        engine.options = None
        return engine

    def describe(self, job: Job, workers: int | None) -> dict | None:
        """How the file would be cut for ``workers`` actors (default 1)."""
        from .cluster.single import check_format, describe_blocks

        check_format(job)
        return describe_blocks(job, workers or 1)


ENGINES: dict[str, type[Engine]] = {"local": LocalEngine, "ray": RayEngine}


def engine_for(executor: str, ray_address: str | None = None, workers: int | None = None,
               planning: bool = False) -> Engine:
    """The engine ``executor`` names, its options checked (``planning``: for ``plan``, which starts nothing)."""
    if executor not in ENGINES:
        raise UserError(f"unknown executor '{executor}'; choose {' or '.join(ENGINES)}")
    if planning:
        return ENGINES[executor].planning(workers)
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    return ENGINES[executor](ray_address, workers)
