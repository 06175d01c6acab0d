"""Canvas planning: pixels → coordinates, canvas → strips → tiles → batches.

Pure arithmetic: no torch, no pyvips. Everything here is a small frozen value
or a function of such values, so it can be property-tested on its own.

The coordinate contract that makes a CPPN picture independent of resolution:
pixel ``i`` of an axis of ``size`` pixels samples the point

    c + (i + 0.5 - size / 2) * pitch,        pitch = (1 / zoom) / min(W, H)

so pixel centres are sampled, both axes share one pitch (a non-square canvas
keeps its aspect and simply shows more of the plane), and the shorter side
always spans ``1 / zoom`` units around the centre. Print bleed (pixels added on
every side) does not count in ``min(W, H)``, so the trimmed picture stays the
same. Coordinates depend only on the global integer pixel index, never on the
tile, so tiles agree to the bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

from .geometry import Canvas, Window

__all__ = [
    "RenderTile",
    "Strip",
    "Tiling",
    "make_tiling",
    "split_row",
]


@dataclass(frozen=True)
class RenderTile(Window):
    """A render tile of the canvas (not a TIFF or pyramid tile), with its column and row in the tile grid."""

    col: int = 0
    row: int = 0


@dataclass(frozen=True)
class Strip:
    """A full-width band of tiles; strips are rendered and written top to bottom."""

    index: int
    y: int
    height: int
    tiles: tuple[RenderTile, ...]
    batches: tuple[Window, ...]

    @property
    def window(self) -> Window:
        return Window(0, self.y, sum(t.width for t in self.tiles), self.height)


def split_row(length: int, step: int) -> list[tuple[int, int]]:
    """Split ``range(length)`` into (start, size) runs of ``step`` (the last may be shorter)."""
    if step < 1:
        raise ValueError(f"step must be at least 1, got {step}")
    return [(s, min(step, length - s)) for s in range(0, length, step)]


@dataclass(frozen=True)
class Tiling:
    """A canvas cut into strips of tiles, and the tiles grouped into device batches.

    Strips are ``rows`` high: the tile size, or fewer rows on a canvas so wide
    that a strip of tile rows would pass the strip budget (memory stays bounded
    by the strip, whatever the width). A batch is a run of neighbouring tiles of
    one strip, so it is itself a rectangle: the renderer evaluates it in one go.
    """

    canvas: Canvas
    tile: int
    batch_pixels: int
    rows: int = 0  # strip height; 0 means the tile size

    @property
    def strip_height(self) -> int:
        return min(self.rows or self.tile, self.canvas.height)

    @property
    def strip_count(self) -> int:
        return math.ceil(self.canvas.height / self.strip_height)

    @property
    def cols(self) -> int:
        return math.ceil(self.canvas.width / self.tile)

    @property
    def tile_count(self) -> int:
        return self.strip_count * self.cols

    @property
    def tiles_per_batch(self) -> int:
        return max(1, self.batch_pixels // (self.tile * self.strip_height))

    @property
    def batch_count(self) -> int:
        return self.strip_count * math.ceil(self.cols / self.tiles_per_batch)

    def strip(self, index: int) -> Strip:
        if not 0 <= index < self.strip_count:
            raise IndexError(f"strip {index} out of range 0..{self.strip_count - 1}")
        y = index * self.strip_height
        height = min(self.strip_height, self.canvas.height - y)
        tiles = tuple(
            RenderTile(x, y, w, height, col=c, row=index)
            for c, (x, w) in enumerate(split_row(self.canvas.width, self.tile))
        )
        per = self.tiles_per_batch
        batches = []
        for i in range(0, len(tiles), per):
            group = tiles[i : i + per]
            batches.append(Window(group[0].x, y, sum(t.width for t in group), height))
        return Strip(index, y, height, tiles, tuple(batches))

    def strips(self) -> Iterator[Strip]:
        for i in range(self.strip_count):
            yield self.strip(i)


# Pixels in one strip at most (24 MB of RGB8): the tile size in rows up to 32768 px wide.
STRIP_PIXELS = 8 * 1024**2


def make_tiling(canvas: Canvas, tile: int, batch_pixels: int, strip_pixels: int = STRIP_PIXELS) -> Tiling:
    """Tiling ``canvas`` as full-width strips of ``tile``-sized tiles, batched by ``batch_pixels``.

    A strip has ``tile`` rows, or fewer where that would exceed ``strip_pixels``.
    """
    if tile < 1:
        raise ValueError(f"tile size must be at least 1, got {tile}")
    if batch_pixels < 1:
        raise ValueError(f"batch size must be at least 1 pixel, got {batch_pixels}")
    if strip_pixels < 1:
        raise ValueError(f"strip budget must be at least 1 pixel, got {strip_pixels}")
    rows = min(tile, max(1, strip_pixels // canvas.width))
    return Tiling(canvas, tile, batch_pixels, rows)


# The resident size of a Python process with torch, numpy and pyvips loaded (measured on a CPU).
BASE_PROCESS_BYTES = 260 * 1024**2


# A strip converted to CMYK (libvips' transform through float Lab, the 4-band result, its copies): measured
# +23 MB at 4096 px wide and +43 MB at 8192 (256-row strips, 8-bit), about 21 bytes per strip pixel.
CMYK_BYTES_PER_STRIP_PIXEL = 21


def estimate_peak_bytes(plan: Tiling, bands: int, depth: int, queue: int, max_width: int, cmyk: bool = False) -> int:
    """A rough peak resident size of a render: bounded by strips and batches, not by the canvas.

    Strips in flight: those queued, the one being rendered, and the one being
    streamed (with its PNG copy); libvips keeps about two tile rows per pyramid
    level. A batch holds float64 coordinates and two float32 activations per pixel.
    A CMYK output adds the conversion of one strip.
    """
    strip = plan.canvas.width * plan.strip_height * bands * (depth // 8)
    strips = (queue + 3) * strip + 3 * strip
    batch = min(plan.batch_pixels, plan.canvas.pixels) * (8 * 5 + 4 * (2 * max(max_width, 3) + 4))
    convert = CMYK_BYTES_PER_STRIP_PIXEL * (depth // 8) * plan.canvas.width * plan.strip_height if cmyk else 0
    return BASE_PROCESS_BYTES + strips + batch + convert
