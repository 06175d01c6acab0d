"""A tiled pyramidal TIFF cut into horizontal bands that are encoded apart, for a cluster.

A band is ``tile * 2**k`` rows of the image. Level ``m`` of the pyramid
(each pixel the rounded 2×2 mean of the level above, as
:class:`~bigcppn.tiffwriter.TiledTiffWriter` makes it) then has exactly
``2**(k - m)`` tile rows in each band for ``m <= k``, made from that band's
pixels alone. So a worker holding a band encodes every tile of levels
``0 .. k`` inside it (:func:`encode_band`), and hands back those bytes and the
band's rows of level ``k + 1`` (half a tile row); the driver places the bytes
in order (:meth:`TiledTiffWriter.write_encoded`) and builds only the levels
from ``k + 1`` up. Tiles, padding and 2×2 means are computed as the writer
computes them, so the file is the same, byte for byte.

Pure numpy and the writer's codecs: no torch, no Ray.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .tifftile import encode_tile, pyramid_sizes, tile_codec

__all__ = ["BandPlan", "EncodedBand", "encode_band", "choose_band_shift", "reduce2x2"]

# A band holds at most this many pixels of level 0 (unless one tile row is already more).
MAX_BAND_PIXELS = 1 << 25


def choose_band_shift(width: int, height: int, tile: int, workers: int, max_pixels: int = MAX_BAND_PIXELS) -> int:
    """``k`` for bands of ``tile * 2**k`` rows: as tall as memory allows, with about four bands per worker."""
    k = 0
    while (tile << (k + 1)) * width <= max_pixels and -(-height // (tile << (k + 1))) >= 4 * workers:
        k += 1
    return k


@dataclass(frozen=True)
class BandPlan:
    """A ``width`` x ``height`` image in bands of ``tile * 2**k`` rows, and its pyramid's levels."""

    width: int
    height: int
    tile: int
    k: int
    pyramid: bool = True  # False: a flat TIFF, the full level only

    @property
    def rows(self) -> int:
        return self.tile << self.k

    @property
    def count(self) -> int:
        return -(-self.height // self.rows)

    @property
    def levels(self) -> list[tuple[int, int]]:
        return pyramid_sizes(self.width, self.height, self.tile) if self.pyramid else [(self.width, self.height)]

    @property
    def inside(self) -> int:
        """How many levels (0, 1, …) are encoded inside the bands; the writer builds the rest."""
        return min(self.k + 1, len(self.levels))

    def band(self, j: int) -> tuple[int, int]:
        """First row and row count of band ``j`` on level 0."""
        y = j * self.rows
        return y, min(self.rows, self.height - y)

    def tile_rows(self, m: int, j: int) -> range:
        """The tile rows of level ``m`` (``m <= k``) that band ``j`` holds."""
        per = 1 << (self.k - m)
        down = -(-self.levels[m][1] // self.tile)
        return range(min(j * per, down), min((j + 1) * per, down))


@dataclass
class EncodedBand:
    """A band's encoded tiles, level by level (each level's in row-major order), and its rows of the next level."""

    tiles: list[list[bytes]]
    reduced: np.ndarray | None

    @property
    def rows(self) -> np.ndarray | None:
        """The rows the writer takes after the tiles (its first level it builds itself)."""
        return self.reduced

    @property
    def nbytes(self) -> int:
        return sum(len(t) for lv in self.tiles for t in lv) + (0 if self.reduced is None else self.reduced.nbytes)


def reduce2x2(a: np.ndarray) -> np.ndarray:
    """Each 2×2 block's rounded mean, ``(a + b + c + d + 2) >> 2``, as the writer and libvips make it."""
    wide = np.uint16 if a.dtype == np.uint8 else np.uint32
    h, w = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
    s = np.add(a[0:h:2, :w], a[1:h:2, :w], dtype=wide)
    s = np.add(s[:, 0::2], s[:, 1::2])
    s += 2
    s >>= 2
    return s.astype(a.dtype)


def _padded(plan: BandPlan, m: int, j: int, pixels: np.ndarray) -> np.ndarray:
    """Level ``m``'s tile rows of band ``j``, zero past the level's edges (the writer's padding)."""
    t = plan.tile
    w, h = plan.levels[m]
    rows = plan.tile_rows(m, j)
    across = -(-w // t)
    out = np.zeros((len(rows) * t, across * t, pixels.shape[2]), pixels.dtype)
    y0 = rows.start * t
    n = max(0, min(pixels.shape[0], h - y0))
    out[:n, :w] = pixels[:n, :w]
    return out


def encode_band(rows: np.ndarray, plan: BandPlan, j: int, compression: str, quality: int,
                workers: int = 1) -> EncodedBand:
    """Every tile of levels ``0 .. plan.inside - 1`` in band ``j`` (``rows``: its level-0 pixels), encoded.

    Returns the tiles, level by level, and the band's rows of level
    ``plan.inside`` (None when the pyramid has no more levels).
    """
    if rows.ndim == 2:
        rows = rows[:, :, None]
    y, n = plan.band(j)
    if rows.shape[:2] != (n, plan.width):
        raise ValueError(f"band {j} is {n}x{plan.width} pixels, got {rows.shape[1]}x{rows.shape[0]}")
    encode = tile_codec(compression, quality, rows.shape[2])
    predictor = compression in ("lzw", "deflate")
    t = plan.tile
    out: list[list[bytes]] = []
    pixels = rows
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="bigcppn-band") as pool:
        for m in range(plan.inside):
            level = _padded(plan, m, j, pixels)
            tiles = [level[r * t : (r + 1) * t, c * t : (c + 1) * t]
                     for r in range(level.shape[0] // t) for c in range(level.shape[1] // t)]
            out.append(list(pool.map(lambda a: encode_tile(a, encode, predictor, None, 0, 0), tiles)))
            if m + 1 < len(plan.levels):
                w2, h2 = plan.levels[m + 1]
                y2 = plan.tile_rows(m, j).start * t // 2  # this band's first row on level m + 1
                pixels = reduce2x2(level)[: max(0, min(level.shape[0] // 2, h2 - y2)), :w2]
            else:
                pixels = None
    return EncodedBand(out, pixels if plan.inside < len(plan.levels) else None)
