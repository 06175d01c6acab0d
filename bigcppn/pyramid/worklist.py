"""What is left of a pyramid to render: its missing tiles as base tiles and level jobs. Pure.

A work list depends on the pyramid and on which tiles exist, nothing else, so
any runner (this machine's threads, a cluster) can run it, and a run that
stopped resumes with the same jobs less the finished tiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from .grid import Pyramid
from .levels import LevelTile

__all__ = ["LevelJob", "PyramidWork", "level_jobs", "tile_samples", "work_list"]


def level_jobs(p: Pyramid, level: int, per_job: int) -> list[tuple[LevelTile, ...]]:
    """Consecutive tiles of a level, grouped by pixel count; fixed by the plan, not by what is on disk."""
    jobs, cur, n = [], [], 0
    for t in p.tiles(level):
        if cur and n + t.pixels > per_job:
            jobs.append(tuple(cur))
            cur, n = [], 0
        cur.append(t)
        n += t.pixels
    if cur:
        jobs.append(tuple(cur))
    return jobs


@dataclass(frozen=True)
class LevelJob:
    """Tiles of one level below the base evaluated together; ``missing`` are the ones still to write."""

    tiles: tuple[LevelTile, ...]
    missing: tuple[LevelTile, ...]


@dataclass(frozen=True)
class PyramidWork:
    """What is left of a pyramid: its base tiles to write, and its lower levels' jobs, finest first."""

    base: tuple[LevelTile, ...]
    jobs: tuple[LevelJob, ...]
    total: int

    @property
    def pending(self) -> int:
        return len(self.base) + sum(len(j.missing) for j in self.jobs)

    def samples(self, supersample: int) -> int:
        """Network samples the missing tiles take: one a base pixel, ``K²`` a pixel of a level below."""
        return tile_samples(self.base, supersample) + sum(tile_samples(j.missing, supersample) for j in self.jobs)


def tile_samples(tiles: Iterable[LevelTile], supersample: int) -> int:
    """Network samples of ``tiles``: one a base pixel (shift 0), ``K²`` a pixel of a level below."""
    k2 = supersample * supersample
    return sum(t.pixels * (1 if t.shift <= 0 else k2) for t in tiles)


def work_list(p: Pyramid, per_job: int, done: Callable[[str], bool]) -> PyramidWork:
    """The tiles of ``p`` not yet written (``done(path)`` says which are), as base tiles and level jobs."""
    base = p.base_level
    todo_base = tuple(t for t in p.tiles(base.index) if not done(t.path))
    jobs = []
    for lv in reversed(p.levels[: base.index]):
        for job in level_jobs(p, lv.index, per_job):
            missing = tuple(t for t in job if not done(t.path))
            if missing:
                jobs.append(LevelJob(job, missing))
    return PyramidWork(todo_base, tuple(jobs), p.tile_count)
