"""The driver's side of a pyramid on Ray: the work list cut into jobs, run by the actors.

:func:`bigcppn.pyramid.render.render_pyramid` still does everything around the
tiles, under the folder's owner lock: the manifest, the resume-aware work list
(:func:`bigcppn.pyramid.worklist.work_list`), and at the end the descriptor and
the page (:func:`bigcppn.pyramid.render.finish`). :class:`RayPyramidRunner` is
the :class:`~bigcppn.pyramid.render.WorkRunner` that replaces this machine's
threads (:class:`~bigcppn.pyramid.local.ThreadRunner`): it starts the actors,
checks that each sees the output folder (a shared filesystem), and hands them
jobs; each actor writes its tiles straight into the folder, atomically, and
returns their names. A run killed at any point leaves only whole tiles, so the
same command resumes it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..config import Config
from ..errors import UserError
from ..pyramid.levels import LevelTile
from ..pyramid.local import level_job_pixels
from ..pyramid.render import PyramidStats, WorkRunner, sweep_partials
from ..pyramid.request import PyramidRequest
from ..pyramid.store import TileStore
from ..pyramid.worklist import PyramidWork
from .executor import RayExecutor, RaySession, place_actors
from .tasks import ActorJob, FolderCheck, FullImagesTask, PyramidTask, WorkerSetup

__all__ = ["RayOptions", "RayPyramidRunner", "split_work", "job_budget", "check_folder", "check_workers"]

# Samples per job and per core of a CPU actor: about a fifth of a second of a CPU core's work.
JOB_SAMPLES = 1 << 20
# Samples per job of a GPU actor, at most: about a tenth of a second of an H200 and its encoding cores.
GPU_JOB_SAMPLES = 1 << 25
# Jobs per actor at least, where the pyramid is large enough: the last jobs balance the load.
MIN_JOBS_PER_WORKER = 4


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide to run: the cluster's address (None: start or join a local Ray), actors, job size."""

    address: str | None = None
    workers: int | None = None
    job_samples: int | None = None  # samples per job per core (default JOB_SAMPLES)
    init_options: tuple = ()  # extra ray.init keywords, as (name, value) pairs (tests: a temp dir)


def split_work(work: PyramidWork, k: int, budget: int) -> list[ActorJob]:
    """The work list as jobs of about ``budget`` samples: base tiles first, then level jobs, finest first."""
    jobs: list[ActorJob] = []
    cur: list[LevelTile] = []
    n = 0
    for t in work.base:
        cur.append(t)
        n += t.pixels
        if n >= budget:
            jobs.append(ActorJob(base=tuple(cur)))
            cur, n = [], 0
    if cur:
        jobs.append(ActorJob(base=tuple(cur)))
    lv: list = []
    n = 0
    for j in work.jobs:
        lv.append(j)
        n += k * k * sum(t.pixels for t in j.tiles)
        if n >= budget:
            jobs.append(ActorJob(levels=tuple(lv)))
            lv, n = [], 0
    if lv:
        jobs.append(ActorJob(levels=tuple(lv)))
    return jobs


def job_budget(total_samples: int, specs: list, per_core: int | None = None) -> int:
    """Samples per job: an actor's share of work (cores x per_core, or a GPU's) within 1/4 of its part of the total."""
    per_core = per_core or JOB_SAMPLES
    one = max(GPU_JOB_SAMPLES if s.gpus else per_core * max(1, s.cpus) for s in specs)
    return max(per_core, min(one, total_samples // (MIN_JOBS_PER_WORKER * len(specs))))


def check_folder(ex: RayExecutor, root: Path, token_file: Path) -> None:
    """Every actor sees ``root`` as the driver does and can write in it; UserError naming the first that cannot.

    The driver writes a random token into ``token_file`` (the pyramid's lock
    file, which the run holds anyway); each worker must read it back.
    """
    token = secrets.token_hex(16)
    token_file.write_text(token, encoding="utf-8")
    results = ex.broadcast(FolderCheck(str(root), token_file.name, token))
    for problem, version in results:
        if problem:
            raise UserError(problem)
    _same_version(v for _p, v in results)


def check_workers(ex: RayExecutor, cfg: Config) -> None:
    """Every actor builds the network (RenderError if one cannot) and runs the driver's bigcppn (else UserError)."""
    _same_version(ex.broadcast(WorkerSetup(cfg)))


def _same_version(versions) -> None:
    from .._version import __version__

    for version in versions:
        if version != __version__:
            raise UserError(f"a Ray worker runs bigcppn {version}, the driver {__version__}; "
                            "install the same version on every node")


class RayPyramidRunner(WorkRunner):
    """Renders a pyramid's work list on Ray actors."""

    def __init__(self, options: RayOptions = RayOptions()) -> None:
        self.options = options
        self.session: RaySession | None = None
        self.ex: RayExecutor | None = None

    def open(self, request: PyramidRequest) -> None:
        """Join or start Ray, start the actors, and check that each can write in the pyramid's folder."""
        self.session = RaySession(self.options.address, **dict(self.options.init_options)).__enter__()
        try:
            self.ex = RayExecutor(place_actors(self.session.nodes(), self.options.workers))
            if not request.out.storage.remote:  # a bucket: every actor uploads its tiles itself
                check_folder(self.ex, request.out.root, request.out.lock_path)
            check_workers(self.ex, request.config)
        except BaseException as exc:
            self.close(cancel=isinstance(exc, KeyboardInterrupt))
            raise

    def job_pixels(self, supersample: int) -> int:
        """A CPU's share, as a local run on a CPU groups the levels' tiles (:func:`split_work` gathers the jobs)."""
        return level_job_pixels(supersample)

    def run(self, request: PyramidRequest, work: PyramidWork, store: TileStore, stats: PyramidStats,
            on_tile: Callable[[LevelTile], None] | None = None) -> None:
        ex = self.ex
        if ex is None:
            raise RuntimeError("RayPyramidRunner.run before open")
        p, cfg, k, quality = request.pyramid, request.config, request.supersample, request.quality
        total = sum(t.pixels for t in work.base) + k * k * sum(t.pixels for j in work.jobs for t in j.tiles)
        jobs = split_work(work, k, job_budget(total, ex.specs, self.options.job_samples))
        task = PyramidTask(cfg, _where(store), p.codec, quality, k, _options(store))
        cpu0, sent0, got0 = ex.worker_cpu, ex.sent, ex.received
        for job, written in ex.map_ordered(task, jobs, 2 * ex.workers):
            done = set(written)
            stats.jobs += 1
            for t in job.wanted():
                if t.path in done:
                    stats.written += 1
                    stats.pixels += t.pixels
                    if on_tile is not None:
                        on_tile(t)
        if p.layout.full_images(p):  # IIIF's full/max and sizes: one actor renders them
            full = FullImagesTask(cfg, p, _where(store), k, quality, _options(store))
            for _ in ex.map_ordered(full, [None], 0):
                pass
        # A worker killed while writing left a partial file; its job ran again on the restarted actor.
        sweep_partials(request.out)
        stats.worker_cpu += ex.worker_cpu - cpu0
        stats.transfer_bytes += ex.sent - sent0 + ex.received - got0

    def close(self, cancel: bool = False) -> None:
        """Stop the actors (``cancel``: without waiting for running jobs) and leave Ray if this run joined it."""
        if self.ex is not None:
            self.ex.close(cancel)
            self.ex = None
        if self.session is not None:
            self.session.__exit__(None, None, None)
            self.session = None


def _where(store: TileStore) -> str:
    """Where the actors write: the shared folder's path, or the bucket's URL (each uploads its own tiles)."""
    return store.storage.location if store.storage.remote else str(store.root)


def _options(store: TileStore):
    """How the actors reach the bucket (None for a folder); credentials come from each node's environment."""
    return getattr(store.storage, "options", None) if store.storage.remote else None
