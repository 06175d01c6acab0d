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

The pyramid holds its layout (DeepZoom, IIIF 3, Zoomify, Google: objects in
:mod:`bigcppn.pyramid.layouts`, which number its levels, name its tiles and
describe it) and its tile codec (:mod:`bigcppn.formats.tiles`). The work list
of the tiles still to render is :mod:`bigcppn.pyramid.worklist`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Iterator

from ..formats.tiles import TileCodec, tile_codec
from .layouts import LAYOUTS, Layout, layout_named
from .levels import Level, LevelTile

__all__ = ["MAX_TILE", "Pyramid", "max_extra_levels"]

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
class Pyramid:
    """A deep-zoom pyramid of a ``width`` x ``height`` base canvas in one layout.

    ``layout`` and ``codec`` may be given by name (``"dz"``, ``"jpeg"``); the
    pyramid holds the objects. ``name`` is the DeepZoom stem (``NAME.dzi``,
    ``NAME_files/``); ``extra`` adds DeepZoom levels past the base (the live
    server), so the advertised image is ``width * 2**extra`` pixels wide.
    """

    width: int
    height: int
    layout: Layout = LAYOUTS["dz"]
    tile: int = 254
    overlap: int = 1
    codec: TileCodec = tile_codec("jpeg")
    name: str = "image"
    extra: int = 0
    # IIIF: the largest width and height served (maxWidth/maxHeight, the size of full/max);
    # 0: DEFAULT_MAX_SIZE, or the tile size when that is larger.
    max_size: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.layout, str):
            object.__setattr__(self, "layout", layout_named(self.layout))
        if isinstance(self.codec, str):
            object.__setattr__(self, "codec", tile_codec(self.codec))
        if self.width < 1 or self.height < 1:
            raise ValueError(f"canvas must be at least 1x1 pixels, got {self.width}x{self.height}")
        if not 1 <= self.tile <= MAX_TILE:
            raise ValueError(f"tile size must be between 1 and {MAX_TILE}, got {self.tile}")
        if self.layout.overlap_allowed:
            if not 0 <= self.overlap < self.tile:
                raise ValueError(f"overlap must be between 0 and tile - 1, got {self.overlap}")
        elif self.overlap:
            raise ValueError(f"the {self.layout.name} layout has no overlap; got overlap {self.overlap}")
        if self.extra < 0:
            raise ValueError(f"extra levels must be >= 0, got {self.extra}")
        if self.extra and not self.layout.levels_past_base:
            raise ValueError("levels past the base exist only in the dz layout")
        if max(self.width, self.height) << self.extra > MAX_VIRTUAL_SIDE:
            raise ValueError(f"{self.extra} extra levels make the image larger than 2**53 pixels")
        if self.max_size and self.max_size < self.tile:
            raise ValueError(f"max_size {self.max_size} is smaller than the tile ({self.tile})")
        stem = self.name
        if not stem or "/" in stem or "\\" in stem or stem in (".", ".."):
            raise ValueError(f"bad pyramid name '{stem}'")

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
    def ext(self) -> str:
        """The tiles' file extension (``jpeg`` in DeepZoom, ``jpg`` elsewhere)."""
        return self.layout.extension(self.codec)

    @functools.cached_property
    def levels(self) -> tuple[Level, ...]:
        """Every level, smallest first; ``levels[i].index == i``."""
        shifts = self.layout.shifts(self)
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
        iw, ih = self.layout.image_size(self, w, h)
        return LevelTile(level, col, row, x, y, w, h, lv.shift, self.layout.tile_path(self, lv, col, row), iw, ih)

    def tiles(self, level: int) -> Iterator[LevelTile]:
        """The tiles of a level, row by row (less IIIF aliases, see :meth:`aliased`)."""
        lv = self.level(level)
        for row in range(lv.rows):
            for col in range(lv.cols):
                if not self.aliased(level, col, row):
                    yield self.tile_at(level, col, row)

    def aliased(self, level: int, col: int, row: int) -> bool:
        """Whether another tile has this tile's name and stands for it.

        Only IIIF has such tiles: see :meth:`bigcppn.pyramid.layouts.IIIF3.aliased`.
        """
        return self.layout.aliased(self, level, col, row)

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
        return self.layout.descriptor_path(self.name)

    def descriptor(self, base_url: str = "") -> str:
        """The text of the layout's metadata file; ``base_url`` is the IIIF ``id``."""
        return self.layout.descriptor(self, base_url)
