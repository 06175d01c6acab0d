"""Deep-zoom pyramids: levels, tiles, file names and metadata. Pure arithmetic.

No torch, no pyvips: a :class:`Pyramid` is a small frozen value that knows,
for one base canvas and one layout, every level's size, every tile's
rectangle of level pixels and the path the layout gives it, and the text of
the layout's metadata file. The renderer (:mod:`bigcppn.pyramid`) and the
live server (:mod:`bigcppn.serve`) only fill these rectangles with pixels.

Scale. Every level has a ``shift``: one of its pixels spans ``2**shift`` base
pixels, so level pixel ``i`` covers base pixels ``[i * 2**shift, (i + 1) *
2**shift)``. The base level has shift 0, the levels below it shift 1, 2, …;
the live server's levels past the base have negative shifts. A level is
``ceil(W / 2**shift)`` pixels wide (DeepZoom's rule, and libvips'): the last
pixel of a level may reach past the canvas, which costs nothing here because
the network is defined everywhere.

Layouts, as libvips ``dzsave`` writes them and OpenSeadragon reads them:

* ``dz`` (DeepZoom): ``NAME.dzi`` and ``NAME_files/LEVEL/COL_ROW.jpeg``; level 0 is
  1×1, the last level is the base; tiles of ``tile`` pixels, each grown by
  ``overlap`` pixels on every side that has a neighbour.
* ``iiif3`` (IIIF Image API 3, level 0, static): ``info.json`` and
  ``{region}/{size}/0/default.jpg`` with the region in base pixels; scale
  factors 1, 2, 4, … down to the first level that fits one tile; URIs in the
  canonical form (``full`` for the whole image, ``max`` for full size), which
  is also what OpenSeadragon asks for.
* ``zoomify``: ``ImageProperties.xml`` and ``TileGroupN/TIER-COL-ROW.jpg``, tier 0
  fitting one tile, tiers halved rounding up (as Zoomify and libvips do), and
  ``N`` the tile's number counted from tier 0, divided by 256.
* ``google``: ``Z/ROW/COL.jpg``, every tile ``tile``² (padded with white past the
  image), level 0 one tile; tiles wholly outside the image are not written
  (``blank.png`` stands in for them).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Iterator

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

LAYOUTS = ("dz", "iiif3", "zoomify", "google")
TILE_FORMATS = ("jpeg", "webp", "png")
DEFAULT_TILE = {"dz": 254, "iiif3": 256, "zoomify": 256, "google": 256}
DEFAULT_OVERLAP = {"dz": 1, "iiif3": 0, "zoomify": 0, "google": 0}
MAX_TILE = 8192
# Sizes past 2**53 are not exact in JavaScript numbers (the viewers) nor in float64.
MAX_VIRTUAL_SIDE = 2**53
ZOOMIFY_GROUP = 256

# File extension of a tile format in each layout (DeepZoom says "jpeg", the others "jpg").
_EXT = {
    "dz": {"jpeg": "jpeg", "webp": "webp", "png": "png"},
    "iiif3": {"jpeg": "jpg", "webp": "webp", "png": "png"},
    "zoomify": {"jpeg": "jpg", "webp": "webp", "png": "png"},
    "google": {"jpeg": "jpg", "webp": "webp", "png": "png"},
}


def _ceil_shift(n: int, shift: int) -> int:
    """``ceil(n / 2**shift)`` for a shift >= 0, or ``n * 2**-shift`` for a negative one."""
    if shift <= 0:
        return n << -shift
    return -(-n >> shift)


def dz_level_count(width: int, height: int) -> int:
    """DeepZoom's level count: ``ceil(log2(max(W, H))) + 1``, down to 1×1."""
    return (max(width, height) - 1).bit_length() + 1


def sample_positions(index: int, shift: int, k: int, size: int) -> list[float]:
    """Base positions of the ``k`` sub-pixel samples of level pixel ``index`` along one axis.

    The pixel covers base pixels ``[a, b)`` with ``a = index * 2**shift`` and
    ``b = a + 2**shift``, cut at the canvas edge ``size`` on levels below the
    base (so the last pixel of a level averages only what is on the canvas);
    its samples sit at ``a + (j + 0.5) / k * (b - a)``. At shift 0 with k = 1
    that is ``index + 0.5``, exactly the pixel centre the renderer samples.
    """
    a = math.ldexp(index, shift)
    b = a + math.ldexp(1.0, shift)
    if shift > 0:
        b = min(b, float(size))
    return [a + (j + 0.5) / k * (b - a) for j in range(k)]


def level_coord(u: float, size: int, center: float, pitch: float) -> float:
    """Plane coordinate of base position ``u``: :func:`bigcppn.plan.pixel_coord` for fractional positions.

    ``center + (u - size / 2) * pitch``; for ``u = i + 0.5`` it is pixel ``i``'s centre, to the bit.
    """
    return (u - size / 2) * pitch + center


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

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ValueError(f"canvas must be at least 1x1 pixels, got {self.width}x{self.height}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown layout '{self.layout}'; choose from {', '.join(LAYOUTS)}")
        if self.suffix not in TILE_FORMATS:
            raise ValueError(f"unknown tile format '{self.suffix}'; choose from {', '.join(TILE_FORMATS)}")
        if not 1 <= self.tile <= MAX_TILE:
            raise ValueError(f"tile size must be between 1 and {MAX_TILE}, got {self.tile}")
        if self.layout == "dz":
            if not 0 <= self.overlap < self.tile:
                raise ValueError(f"overlap must be between 0 and tile - 1, got {self.overlap}")
        elif self.overlap:
            raise ValueError(f"the {self.layout} layout has no overlap; got overlap {self.overlap}")
        if self.extra < 0:
            raise ValueError(f"extra levels must be >= 0, got {self.extra}")
        if self.extra and self.layout != "dz":
            raise ValueError("levels past the base exist only in the dz layout")
        if max(self.width, self.height) << self.extra > MAX_VIRTUAL_SIDE:
            raise ValueError(f"{self.extra} extra levels make the image larger than 2**53 pixels")
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
    def ext(self) -> str:
        return _EXT[self.layout][self.suffix]

    @functools.cached_property
    def _top_shift(self) -> int:
        """Levels of iiif3, zoomify, google: down to the first that fits one tile."""
        return max(0, (-(-max(self.width, self.height) // self.tile) - 1).bit_length())

    @functools.cached_property
    def levels(self) -> tuple[Level, ...]:
        """Every level, smallest first; ``levels[i].index == i``."""
        if self.layout == "dz":
            n = dz_level_count(self.virtual_width, self.virtual_height)
            shifts = [n - 1 - i - self.extra for i in range(n)]
        else:
            m = self._top_shift
            shifts = [m - i for i in range(m + 1)]
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
        """Tiles written (every tile of every level, less IIIF aliases)."""
        if self.layout != "iiif3":
            return sum(lv.tile_count for lv in self.levels)
        return sum(lv.tile_count - self.aliased(lv.index, lv.cols - 1, lv.rows - 1) for lv in self.levels)

    # ------------------------------------------------------------------ tiles

    def tile_at(self, level: int, col: int, row: int) -> LevelTile:
        """The tile at (level, col, row); IndexError when there is none."""
        lv = self.level(level)
        if not (0 <= col < lv.cols and 0 <= row < lv.rows):
            raise IndexError(f"no tile {col},{row} on level {level} ({lv.cols}x{lv.rows} tiles)")
        x, y, w, h = lv.rect(col, row)
        iw, ih = (self.tile, self.tile) if self.layout == "google" else (w, h)
        return LevelTile(level, col, row, x, y, w, h, lv.shift, self._path(lv, col, row), iw, ih)

    def tiles(self, level: int) -> Iterator[LevelTile]:
        """The tiles of a level, row by row (less IIIF aliases, see :meth:`aliased`)."""
        lv = self.level(level)
        for row in range(lv.rows):
            for col in range(lv.cols):
                if not self.aliased(level, col, row):
                    yield self.tile_at(level, col, row)

    def aliased(self, level: int, col: int, row: int) -> bool:
        """Whether a finer level has a tile with the same IIIF name, which then stands for both.

        A IIIF name is a request (region at size), so a corner tile that shrinks to a
        single clipped level pixel can name the same request as a finer level's tile,
        e.g. region 512,512,1,1 at size 1,1 on a 513x513 image: the same picture.
        """
        if self.layout != "iiif3":
            return False
        lv = self.level(level)
        # only a tile clipped on both axes can shrink to a finer level's name: the last one
        if lv.shift == 0 or col != lv.cols - 1 or row != lv.rows - 1:
            return False
        x, y, w, h = lv.core(col, row)
        path = self._path(lv, col, row)
        for finer in self.levels[level + 1 :]:
            span = self.tile << finer.shift
            rx, ry = x << lv.shift, y << lv.shift
            if rx % span or ry % span:
                continue
            c, r = rx // span, ry // span
            if c < finer.cols and r < finer.rows and self._path(finer, c, r) == path:
                return True
        return False

    def all_tiles(self) -> Iterator[LevelTile]:
        for lv in self.levels:
            yield from self.tiles(lv.index)

    @functools.cached_property
    def _tiles_before(self) -> tuple[int, ...]:
        """Zoomify: how many tiles the tiers below each tier hold."""
        out, n = [], 0
        for lv in self.levels:
            out.append(n)
            n += lv.tile_count
        return tuple(out)

    def _path(self, lv: Level, col: int, row: int) -> str:
        ext = self.ext
        if self.layout == "dz":
            return f"{self.name}_files/{lv.index}/{col}_{row}.{ext}"
        if self.layout == "zoomify":
            group = (self._tiles_before[lv.index] + row * lv.cols + col) // ZOOMIFY_GROUP
            return f"TileGroup{group}/{lv.index}-{col}-{row}.{ext}"
        if self.layout == "google":
            return f"{lv.index}/{row}/{col}.{ext}"
        # IIIF 3: the region in base pixels, the size in level pixels, canonical forms.
        x, y, w, h = lv.core(col, row)
        s = 1 << lv.shift
        rx, ry = x * s, y * s
        rw, rh = min(w * s, self.width - rx), min(h * s, self.height - ry)
        region = "full" if (rx, ry, rw, rh) == (0, 0, self.width, self.height) else f"{rx},{ry},{rw},{rh}"
        size = "max" if (w, h) == (self.width, self.height) else f"{w},{h}"
        return f"{region}/{size}/0/default.{ext}"

    # ------------------------------------------------------------------ metadata

    @property
    def descriptor_path(self) -> str:
        """The metadata file, relative to the pyramid's root (Google has none)."""
        return {"dz": f"{self.name}.dzi", "iiif3": "info.json", "zoomify": "ImageProperties.xml",
                "google": ""}[self.layout]

    def descriptor(self, base_url: str = "") -> str:
        """The text of the layout's metadata file; ``base_url`` is the IIIF ``id``."""
        if self.layout == "dz":
            return (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                '<Image xmlns="http://schemas.microsoft.com/deepzoom/2008"\n'
                f'  Format="{self.ext}"\n  Overlap="{self.overlap}"\n  TileSize="{self.tile}"\n  >\n'
                f'  <Size\n    Height="{self.virtual_height}"\n    Width="{self.virtual_width}"\n  />\n'
                "</Image>\n"
            )
        if self.layout == "zoomify":
            return (
                f'<IMAGE_PROPERTIES WIDTH="{self.width}" HEIGHT="{self.height}" NUMTILES="{self.tile_count}" '
                f'NUMIMAGES="1" VERSION="1.8" TILESIZE="{self.tile}" />\n'
            )
        if self.layout == "iiif3":
            top = self.levels[0]
            info = {
                "@context": "http://iiif.io/api/image/3/context.json",
                "id": base_url.rstrip("/"),
                "type": "ImageService3",
                "protocol": "http://iiif.io/api/image",
                "profile": "level0",
                "width": self.width,
                "height": self.height,
                "sizes": [{"width": top.width, "height": top.height}],
                "tiles": [{"width": self.tile, "scaleFactors": [1 << lv.shift for lv in reversed(self.levels)]}],
            }
            if self.suffix != "jpeg":
                info["preferredFormats"] = [self.ext]
                info["extraFormats"] = [self.ext]
            return json.dumps(info, indent=2) + "\n"
        return ""
