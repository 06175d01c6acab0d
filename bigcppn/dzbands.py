"""A DeepZoom pyramid (``.dzi``/``.szi``) cut into horizontal bands that are encoded apart, for a cluster.

The DeepZoom counterpart of :mod:`bigcppn.tiffbands`. A band is
``tile * 2**k`` rows of the image; on level ``m <= k`` (levels numbered from
the full size, each the rounded 2×2 mean of the one above, the last row and
column repeated at odd sizes, as :class:`~bigcppn.dzwriter.DeepZoomWriter`
makes them) it owns exactly ``2**(k - m)`` tile rows. A DeepZoom tile also
carries ``overlap`` pixels of its neighbours on every side, so a worker
renders its band plus a margin of ``overlap * 2**k`` rows above and below:
that margin starts and ends on multiples of ``2**k``, so every level down to
``k`` computed from it is, row for row, the whole picture's level (the one
place a level repeats its last row is the picture's bottom, which a margin
reaches only where the picture ends). The worker encodes every tile of levels
``0 .. k`` it owns (:func:`encode_dz_band`) and hands back those bytes and
its own rows of level ``k + 1`` (of level ``k`` where tiles are odd, for the
driver to halve); the driver writes the bytes under their names
(:meth:`DeepZoomWriter.write_encoded`) and builds the small levels above from
the rows. Tiles are the writer's own encoding of the same pixels, so every
tile file is the local render's, byte for byte.

Pure numpy and the writer's codec: no torch, no Ray.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .dzwriter import _encode, _halve, dz_sizes, fed_level

__all__ = ["DzBandPlan", "EncodedDzBand", "encode_dz_band"]


@dataclass(frozen=True)
class DzBandPlan:
    """A ``width`` x ``height`` DeepZoom pyramid of ``tile``-pixel tiles and ``overlap``, in bands of ``tile * 2**k`` rows."""

    width: int
    height: int
    tile: int
    overlap: int
    k: int

    @property
    def rows(self) -> int:
        return self.tile << self.k

    @property
    def count(self) -> int:
        return -(-self.height // self.rows)

    @property
    def levels(self) -> list[tuple[int, int]]:
        """(width, height) of every level, the full size first (DeepZoom numbers them the other way)."""
        return dz_sizes(self.width, self.height)

    @property
    def inside(self) -> int:
        """How many levels (0, 1, … from the full size) are encoded inside the bands; the writer builds the rest."""
        return min(self.k + 1, len(self.levels))

    @property
    def fed(self) -> int:
        """The level whose rows a band hands the writer (:func:`~bigcppn.dzwriter.fed_level`): ``k + 1`` for even tiles."""
        return fed_level(self.inside, self.tile, len(self.levels))

    def band(self, j: int) -> tuple[int, int]:
        """First row and row count of band ``j`` on level 0."""
        y = j * self.rows
        return y, min(self.rows, self.height - y)

    def region(self, j: int) -> tuple[int, int]:
        """First row and row count of what band ``j``'s worker renders: the band and its margins."""
        margin = self.overlap << (self.inside - 1)
        y, n = self.band(j)
        top = max(0, y - margin)
        return top, min(self.height, y + n + margin) - top

    def tile_rows(self, m: int, j: int) -> range:
        """The tile rows of level ``m`` (``m < inside``) that band ``j`` owns."""
        per = 1 << (self.k - m)
        down = -(-self.levels[m][1] // self.tile)
        return range(min(j * per, down), min((j + 1) * per, down))


@dataclass
class EncodedDzBand:
    """A band's encoded tiles, level by level (each level's in row-major order), and its own rows of level ``plan.fed``."""

    tiles: list[list[bytes]]
    rows: np.ndarray

    @property
    def nbytes(self) -> int:
        return sum(len(t) for lv in self.tiles for t in lv) + self.rows.nbytes


def encode_dz_band(region: np.ndarray, plan: DzBandPlan, j: int, quality: int, workers: int = 1) -> EncodedDzBand:
    """Every tile of levels ``0 .. plan.inside - 1`` that band ``j`` owns, from ``region`` (:meth:`DzBandPlan.region`).

    Returns the JPEG tiles, level by level, and the band's own rows of level
    ``plan.fed``, from which the driver builds the levels above.
    """
    if region.ndim == 2:
        region = region[:, :, None]
    top, n = plan.region(j)
    if region.shape[:2] != (n, plan.width):
        raise ValueError(f"band {j} renders {n}x{plan.width} pixels, got {region.shape[0]}x{region.shape[1]}")
    t, ov = plan.tile, plan.overlap
    out: list[list[bytes]] = []
    pixels = region
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="bigcppn-dzband") as pool:
        for m in range(plan.inside):
            w, h = plan.levels[m]
            y0 = top >> m  # the level's row that pixels[0] is
            crops = []
            for r in plan.tile_rows(m, j):
                a, b = max(0, r * t - ov) - y0, min(h, (r + 1) * t + ov) - y0
                for c in range(-(-w // t)):
                    crops.append(pixels[a:b, max(0, c * t - ov) : min(w, (c + 1) * t + ov)])
            out.append(list(pool.map(lambda p: _encode(p, quality), crops)))
            if m + 1 < plan.inside:
                pixels = _halve(pixels)
        own = plan.tile_rows(plan.inside - 1, j)
        y0 = top >> (plan.inside - 1)
        h = plan.levels[plan.inside - 1][1]
        rows = pixels[own.start * t - y0 : min(h, own.stop * t) - y0]
        rows = _halve(rows) if plan.fed == plan.inside else rows.copy()  # (even tiles: own rows start on even rows)
    return EncodedDzBand(out, rows)
