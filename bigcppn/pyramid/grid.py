"""Deep-zoom pyramids: levels, tiles, file names and metadata. Pure arithmetic.

No torch, no pyvips: a :class:`Pyramid` is a small frozen value that knows,
for one base canvas and one layout, every level's size, every tile's
rectangle of level pixels and the path the layout gives it, and the text of
the layout's metadata file. The renderer (:mod:`bigcppn.pyramid.render`) and the
live server (:mod:`bigcppn.server.app`) only fill these rectangles with pixels.

Scale. Every level has a ``shift``: one of its pixels spans ``2**shift`` base
pixels, so level pixel ``i`` covers base pixels ``[i * 2**shift, (i + 1) *
2**shift)``. The base level has shift 0, the levels below it shift 1, 2, …;
the live server's levels past the base have negative shifts. A level is
``ceil(W / 2**shift)`` pixels wide (DeepZoom's rule, and libvips'): the last
pixel of a level may reach past the canvas, which costs nothing here because
the network is defined everywhere.

Layouts (DeepZoom, IIIF 3, Zoomify, Google) are objects in :mod:`bigcppn.pyramid.layouts`:
how each numbers its levels, names its tiles and describes itself.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Iterator

from ..core.geometry import level_coord, sample_positions
from .layouts import LAYOUTS as _LAYOUTS
from .layouts import Layout, dz_level_count

__all__ = [
    "LAYOUTS",
    "TILE_FORMATS",
    "DEFAULT_TILE",
    "DEFAULT_OVERLAP",
    "Level",
    "LevelTile",
    "Pyramid",
    "dz_level_count",
    "max_extra_levels",
    "level_coord",
    "sample_positions",
]

LAYOUTS = tuple(_LAYOUTS)
TILE_FORMATS = ("jpeg", "webp", "png")
DEFAULT_TILE = {name: lay.default_tile for name, lay in _LAYOUTS.items()}
DEFAULT_OVERLAP = {name: lay.default_overlap for name, lay in _LAYOUTS.items()}
MAX_TILE = 8192
DEFAULT_MAX_SIZE = 2048  # IIIF full/max: the whole image at most this wide and high
# Sizes past 2**53 are not exact in JavaScript numbers (the viewers) nor in float64.
MAX_VIRTUAL_SIDE = 2**53


def _ceil_shift(n: int, shift: int) -> int:
    """``ceil(n / 2**shift)`` for a shift >= 0, or ``n * 2**-shift`` for a negative one."""
    if shift <= 0:
        return n << -shift
    return -(-n >> shift)


def max_extra_levels(width: int, height: int, center_x: float, center_y: float, pitch: float,
                     margin_bits: int = 8) -> int:
    """How many levels past the base float64 can still resolve.

    A level ``e`` levels past the base has a pixel pitch of ``pitch / 2**e``;
    it must stay ``2**margin_bits`` float64 ulps of the largest coordinate on
    the canvas, so that neighbouring pixels get distinct, evenly spaced
    coordinates. Capped so that the advertised size stays below 2**53.
    """
    reach = max(abs(center_x), abs(center_y)) + max(width, height) / 2 * pitch
    ulp = math.ulp(max(reach, 1e-300))
    e = 0
    while pitch / 2 ** (e + 1) >= ulp * 2**margin_bits and (max(width, height) << (e + 1)) < MAX_VIRTUAL_SIDE:
        e += 1
    return e


@dataclass(frozen=True)
class Level:
    """One level of a pyramid: its number in the layout, size in pixels and scale."""

    index: int
    width: int
    height: int
    shift: int
    tile: int
    overlap: int = 0

    @property
    def cols(self) -> int:
        return -(-self.width // self.tile)

    @property
    def rows(self) -> int:
        return -(-self.height // self.tile)

    @property
    def tile_count(self) -> int:
        return self.cols * self.rows

    def core(self, col: int, row: int) -> tuple[int, int, int, int]:
        """The tile's own pixels (without overlap): x, y, width, height."""
        x, y = col * self.tile, row * self.tile
        return x, y, min(self.tile, self.width - x), min(self.tile, self.height - y)

    def rect(self, col: int, row: int) -> tuple[int, int, int, int]:
        """The pixels the tile image holds: its core grown by ``overlap`` where a neighbour is."""
        x, y, w, h = self.core(col, row)
        x0 = max(0, x - self.overlap)
        y0 = max(0, y - self.overlap)
        x1 = min(self.width, x + w + self.overlap)
        y1 = min(self.height, y + h + self.overlap)
        return x0, y0, x1 - x0, y1 - y0


@dataclass(frozen=True)
class LevelTile:
    """One tile: which level pixels it holds, the image size written, and its path."""

    level: int
    col: int
    row: int
    x: int
    y: int
    width: int
    height: int
    shift: int
    path: str
    # The written image: the same as width x height, except Google tiles padded to tile².
    image_width: int
    image_height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class Pyramid:
    """A deep-zoom pyramid of a ``width`` x ``height`` base canvas in one layout.

    ``name`` is the DeepZoom stem (``NAME.dzi``, ``NAME_files/``); ``extra``
    adds DeepZoom levels past the base (the live server), so the advertised
    image is ``width * 2**extra`` pixels wide.
    """

    width: int
    height: int
    layout: str = "dz"
    tile: int = 254
    overlap: int = 1
    suffix: str = "jpeg"
    name: str = "image"
    extra: int = 0
    # IIIF: the largest width and height served (maxWidth/maxHeight, the size of full/max);
    # 0: DEFAULT_MAX_SIZE, or the tile size when that is larger.
    max_size: int = 0

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ValueError(f"canvas must be at least 1x1 pixels, got {self.width}x{self.height}")
        if self.layout not in _LAYOUTS:
            raise ValueError(f"unknown layout '{self.layout}'; choose from {', '.join(_LAYOUTS)}")
        if self.suffix not in TILE_FORMATS:
            raise ValueError(f"unknown tile format '{self.suffix}'; choose from {', '.join(TILE_FORMATS)}")
        if not 1 <= self.tile <= MAX_TILE:
            raise ValueError(f"tile size must be between 1 and {MAX_TILE}, got {self.tile}")
        if self.scheme.overlap_allowed:
            if not 0 <= self.overlap < self.tile:
                raise ValueError(f"overlap must be between 0 and tile - 1, got {self.overlap}")
        elif self.overlap:
            raise ValueError(f"the {self.layout} layout has no overlap; got overlap {self.overlap}")
        if self.extra < 0:
            raise ValueError(f"extra levels must be >= 0, got {self.extra}")
        if self.extra and not self.scheme.levels_past_base:
            raise ValueError("levels past the base exist only in the dz layout")
        if max(self.width, self.height) << self.extra > MAX_VIRTUAL_SIDE:
            raise ValueError(f"{self.extra} extra levels make the image larger than 2**53 pixels")
        if self.max_size and self.max_size < self.tile:
            raise ValueError(f"max_size {self.max_size} is smaller than the tile ({self.tile})")
        if not self.name or "/" in self.name or "\\" in self.name or self.name in (".", ".."):
            raise ValueError(f"bad pyramid name '{self.name}'")

    # ------------------------------------------------------------------ levels

    @property
    def virtual_width(self) -> int:
        return self.width << self.extra

    @property
    def virtual_height(self) -> int:
        return self.height << self.extra

    @property
    def full_max(self) -> int:
        """The largest width and height of an image served (IIIF's maxWidth/maxHeight)."""
        return self.max_size or max(DEFAULT_MAX_SIZE, self.tile)

    @property
    def scheme(self) -> Layout:
        """The layout object: level numbering, tile names, metadata."""
        return _LAYOUTS[self.layout]

    @property
    def ext(self) -> str:
        return self.scheme.extensions[self.suffix]

    @functools.cached_property
    def levels(self) -> tuple[Level, ...]:
        """Every level, smallest first; ``levels[i].index == i``."""
        shifts = self.scheme.shifts(self)
        return tuple(
            Level(i, _ceil_shift(self.width, s), _ceil_shift(self.height, s), s, self.tile, self.overlap)
            for i, s in enumerate(shifts)
        )

    @property
    def base_level(self) -> Level:
        """The level whose pixels are the canvas' pixels (shift 0)."""
        return self.levels[len(self.levels) - 1 - self.extra]

    def level(self, index: int) -> Level:
        if not 0 <= index < len(self.levels):
            raise IndexError(f"level {index} out of range 0..{len(self.levels) - 1}")
        return self.levels[index]

    @functools.cached_property
    def tile_count(self) -> int:
        """Tiles written (every tile of every level, less aliases: only IIIF has them)."""
        return sum(lv.tile_count - self.aliased(lv.index, lv.cols - 1, lv.rows - 1) for lv in self.levels)

    # ------------------------------------------------------------------ tiles

    def tile_at(self, level: int, col: int, row: int) -> LevelTile:
        """The tile at (level, col, row); IndexError when there is none."""
        lv = self.level(level)
        if not (0 <= col < lv.cols and 0 <= row < lv.rows):
            raise IndexError(f"no tile {col},{row} on level {level} ({lv.cols}x{lv.rows} tiles)")
        x, y, w, h = lv.rect(col, row)
        iw, ih = self.scheme.image_size(self, w, h)
        return LevelTile(level, col, row, x, y, w, h, lv.shift, self.scheme.tile_path(self, lv, col, row), iw, ih)

    def tiles(self, level: int) -> Iterator[LevelTile]:
        """The tiles of a level, row by row (less IIIF aliases, see :meth:`aliased`)."""
        lv = self.level(level)
        for row in range(lv.rows):
            for col in range(lv.cols):
                if not self.aliased(level, col, row):
                    yield self.tile_at(level, col, row)

    def aliased(self, level: int, col: int, row: int) -> bool:
        """Whether another tile has this tile's name and stands for it (IIIF: see :meth:`IIIF3.aliased`)."""
        return self.scheme.aliased(self, level, col, row)

    def all_tiles(self) -> Iterator[LevelTile]:
        for lv in self.levels:
            yield from self.tiles(lv.index)

    @functools.cached_property
    def tiles_before(self) -> tuple[int, ...]:
        """How many tiles the levels below each level hold (Zoomify numbers its tile groups by it)."""
        out, n = [], 0
        for lv in self.levels:
            out.append(n)
            n += lv.tile_count
        return tuple(out)

    # ------------------------------------------------------------------ metadata

    @property
    def descriptor_path(self) -> str:
        """The metadata file, relative to the pyramid's root (Google has none)."""
        return self.scheme.descriptor_path(self)

    def descriptor(self, base_url: str = "") -> str:
        """The text of the layout's metadata file; ``base_url`` is the IIIF ``id``."""
        return self.scheme.descriptor(self, base_url)


# --------------------------------------------------------------------------- work lists


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
    """What is left of a pyramid: its base tiles to write, and its lower levels' jobs, finest first.

    Pure: it depends on the plan and on which tiles exist, nothing else, so any
    executor (threads here, a cluster elsewhere) can run it, and a run that
    stopped resumes with the same jobs less the finished tiles.
    """

    base: tuple[LevelTile, ...]
    jobs: tuple[LevelJob, ...]
    total: int

    @property
    def pending(self) -> int:
        return len(self.base) + sum(len(j.missing) for j in self.jobs)

    def samples(self, supersample: int) -> int:
        """Network samples the missing tiles take: one a base pixel, ``K²`` a pixel of a level below."""
        return tile_samples(self.base, supersample) + sum(tile_samples(j.missing, supersample) for j in self.jobs)


def tile_samples(tiles, supersample: int) -> int:
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
