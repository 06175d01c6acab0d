"""A pyramid's levels and tiles as values: the sizes, scales and rectangles the layouts name and the renderers fill.

Pure arithmetic. :class:`~bigcppn.pyramid.grid.Pyramid` builds them; the
layouts (:mod:`bigcppn.pyramid.layouts`) read them, and what
:class:`PyramidShape` says of the pyramid, to name its tiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..formats.tiles import TileCodec

__all__ = ["Level", "LevelTile", "PyramidShape"]


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


class PyramidShape(Protocol):
    """What a layout reads of a pyramid (:class:`bigcppn.pyramid.grid.Pyramid` is one)."""

    width: int
    height: int
    tile: int
    overlap: int
    name: str
    extra: int
    codec: TileCodec

    @property
    def virtual_width(self) -> int: ...
    @property
    def virtual_height(self) -> int: ...
    @property
    def full_max(self) -> int: ...
    @property
    def ext(self) -> str: ...
    @property
    def levels(self) -> tuple[Level, ...]: ...
    @property
    def tiles_before(self) -> tuple[int, ...]: ...
    @property
    def tile_count(self) -> int: ...
    def level(self, index: int) -> Level: ...
