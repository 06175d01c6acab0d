"""Geometry: the canvas, the view, windows of pixels, and the one rule from pixel to plane.

Pure arithmetic: no torch, no pyvips. The coordinate contract that makes a
CPPN picture independent of resolution: pixel ``i`` of an axis of ``size``
pixels samples the point

    c + (i + 0.5 - size / 2) * pitch,        pitch = (1 / zoom) / min(W, H)

(pixel centres, one pitch for both axes, the shorter trimmed side spanning
``1 / zoom``). On a pyramid level of ``shift`` (one level pixel spans
``2**shift`` base pixels) with ``k`` x ``k`` samples per pixel, level pixel
``i`` covers base positions ``[i * 2**shift, (i + 1) * 2**shift)`` (cut at the
canvas edge below the base), and its samples sit at the sub-pixel centres of
that span. :func:`axis_coords` is that rule for arrays (numpy or torch, in
float64), and every path that samples the network (strips, pyramid levels, the
live server, the fused kernel's parameters, the contact sheet) goes through
it; :func:`pixel_coord` and :func:`sample_positions` are the same rule for one
number, for the planner and the tests. Coordinates depend only on global
integer indices, never on a tile, so tiles agree to the bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator

__all__ = ["Canvas", "View", "Window", "pixel_coord", "level_coord", "sample_positions", "axis_coords",
           "axis_offset", "tile_positions"]


@dataclass(frozen=True)
class Canvas:
    """A canvas in pixels; ``bleed`` pixels on each side lie outside the trimmed picture."""

    width: int
    height: int
    bleed: int = 0

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ValueError(f"canvas must be at least 1x1 pixels, got {self.width}x{self.height}")
        if not 0 <= 2 * self.bleed < min(self.width, self.height):
            raise ValueError(f"bleed {self.bleed} leaves no picture on a {self.width}x{self.height} canvas")

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class View:
    """Which part of the plane the canvas shows: a centre and a zoom.

    At zoom 1 the shorter side of the canvas spans [-0.5, 0.5] around the centre
    (the article's ``X / size - 0.5``).
    """

    center_x: float = 0.0
    center_y: float = 0.0
    zoom: float = 1.0

    def __post_init__(self) -> None:
        if not (self.zoom > 0 and math.isfinite(self.zoom)):
            raise ValueError(f"zoom must be a positive finite number, got {self.zoom}")

    def pitch(self, canvas: Canvas) -> float:
        """Distance in the plane between neighbouring pixel centres: the shorter trimmed side spans 1/zoom."""
        return (1.0 / self.zoom) / (min(canvas.width, canvas.height) - 2 * canvas.bleed)


@dataclass(frozen=True)
class Window:
    """A rectangle of pixels: left, top, width, height."""

    x: int
    y: int
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def intersection(self, other: "Window") -> "Window | None":
        """The pixels both windows hold, or None when they do not overlap."""
        x0, y0 = max(self.x, other.x), max(self.y, other.y)
        x1 = min(self.x + self.width, other.x + other.width)
        y1 = min(self.y + self.height, other.y + other.height)
        if x1 <= x0 or y1 <= y0:
            return None
        return Window(x0, y0, x1 - x0, y1 - y0)

    def subdivide(self, width: int, height: int) -> Iterator["Window"]:
        """Windows of at most ``width`` x ``height`` that cover this one exactly once, row by row."""
        if width < 1 or height < 1:
            raise ValueError(f"subdivide needs a size of at least 1x1, got {width}x{height}")
        for y in range(self.y, self.y + self.height, height):
            for x in range(self.x, self.x + self.width, width):
                yield Window(x, y, min(width, self.x + self.width - x), min(height, self.y + self.height - y))


def axis_offset(size: int) -> float:
    """The constant of the pixel-centre rule: plane = (index + axis_offset(size)) * pitch + center."""
    return 0.5 - size / 2


def pixel_coord(index: int, size: int, center: float, pitch: float) -> float:
    """Plane coordinate of the centre of pixel ``index`` on an axis of ``size`` pixels.

    The renderer evaluates exactly this expression, elementwise, in float64.
    """
    return center + (index + axis_offset(size)) * pitch


def level_coord(u: float, size: int, center: float, pitch: float) -> float:
    """Plane coordinate of base position ``u``: :func:`pixel_coord` for fractional positions.

    ``center + (u - size / 2) * pitch``; for ``u = i + 0.5`` it is pixel ``i``'s centre, to the bit.
    """
    return (u - size / 2) * pitch + center


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


def axis_coords(idx: Any, size: int, center: float, pitch: float, shift: int = 0, k: int = 1,
                sub: Any = None, step: float | None = None) -> Any:
    """Plane coordinates, float64, of the samples of level pixels ``idx`` along one axis.

    ``idx`` is a float64 array (numpy or torch) of level pixel indices. With
    ``shift`` 0 and ``k`` 1 (a canvas's own pixels) the result is
    ``(idx + (0.5 - size / 2)) * pitch + center``, one value per index. Otherwise
    each index gives ``k`` samples (``sub``: the float64 array ``(j + 0.5) / k``,
    j < k, made by the caller in its array library) at the positions of
    :func:`sample_positions`, flattened index-major, mapped by :func:`level_coord`.

    ``step`` replaces ``2**shift`` for a level of any size below the base (the
    whole canvas shrunk to ``n`` pixels has ``step = size / n``): pixel ``i``
    covers ``[i * step, (i + 1) * step)``, cut at the canvas edge.
    """
    if shift == 0 and k == 1 and step is None:
        return (idx + axis_offset(size)) * pitch + center
    below = shift > 0 or step is not None
    step = 2.0**shift if step is None else step
    a = idx * step
    if k == 1 and not below:
        u = a + 0.5 * step
    else:
        end = a + step
        if below:  # the last pixel of a level below the base stops at the canvas edge
            end = end - (end - size) * (end > size)
        width = end - a
        u = (a[:, None] + sub[None, :] * width[:, None]).reshape(-1)
    return (u - size / 2) * pitch + center


def tile_positions(n: int, rect: tuple[range, range] | None, across: int, down: int, done: int,
                   what: str) -> list[tuple[int, int]]:
    """(row, column) of ``n`` tiles given row-major over ``rect`` (tile rows, tile columns) of a grid of
    ``across`` x ``down`` tiles; without ``rect``, the next whole tile rows after ``done`` tiles.

    ValueError (naming ``what``) when they are not whole rows or do not fill ``rect`` inside the grid.
    """
    if rect is None:
        if n % across:
            raise ValueError(f"{n} tiles are not whole tile rows of {what}")
        first = done // across
        rect = (range(first, first + n // across), range(across))
    rows, cols = rect
    if n != len(rows) * len(cols) or rows.stop > down or cols.stop > across:
        raise ValueError(f"{n} tiles do not fill tile rows {rows} and columns {cols} of {what}")
    return [(r, c) for r in rows for c in cols]
