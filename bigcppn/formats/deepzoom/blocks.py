"""A DeepZoom pyramid (``.dzi``/``.szi``) cut into blocks that are encoded apart, for a cluster.

The DeepZoom counterpart of :mod:`bigcppn.formats.tiff.blocks`, with the same blocks
(:class:`~bigcppn.formats.tiff.blocks.BlockGrid`: ``tile * 2**k`` rows, full width or
square). On level ``m <= k`` (levels numbered from the full size, each the
rounded 2×2 mean of the one above, the last row and column repeated at odd
sizes, as :class:`~bigcppn.formats.deepzoom.writer.DeepZoomWriter` makes them) a block owns
exactly ``2**(k - m)`` tile rows (and, square, tile columns). A DeepZoom tile
also carries ``overlap`` pixels of its neighbours on every side, so a worker
renders its block plus a margin of ``overlap * 2**k`` pixels on every side
that has a neighbour: the margin starts and ends on multiples of ``2**k``, so
every level down to ``k`` computed from it is, pixel for pixel, the whole
picture's level (the one place a level repeats its last row or column is the
picture's edge, which a margin reaches only where the picture ends). The worker encodes every tile of levels
``0 .. k`` it owns (:func:`encode_dz_block`) and hands back those bytes and
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

from .writer import encode_tile, halve, dz_sizes, fed_level
from ..tiff.blocks import BlockGrid

__all__ = ["DZ_BLOCKS", "DzBlocks", "DzBlockGrid", "EncodedDzBlock", "encode_dz_block"]


@dataclass(frozen=True)
class DzBlockGrid(BlockGrid):
    """A ``width`` x ``height`` DeepZoom pyramid of ``tile``-pixel tiles and ``overlap``, in blocks of ``tile * 2**k`` rows."""

    width: int
    height: int
    tile: int
    overlap: int
    k: int
    split: bool = False

    @property
    def levels(self) -> list[tuple[int, int]]:
        """(width, height) of every level, the full size first (DeepZoom numbers them the other way)."""
        return dz_sizes(self.width, self.height)

    @property
    def fed(self) -> int:
        """The level whose pixels a block hands the writer (:func:`~bigcppn.formats.deepzoom.writer.fed_level`): ``k + 1`` for even tiles."""
        return fed_level(self.inside, self.tile, len(self.levels))

    def region(self, b: int) -> tuple[int, int, int, int]:
        """``(x, y, width, height)`` of what block ``b``'s worker renders: the block and its margins."""
        margin = self.overlap << (self.inside - 1)
        x, y, w, h = self.block(b)
        left, top = max(0, x - margin), max(0, y - margin)
        return left, top, min(self.width, x + w + margin) - left, min(self.height, y + h + margin) - top


@dataclass
class EncodedDzBlock:
    """A block's encoded tiles, level by level (each level's row-major in the block), and its pixels of level ``plan.fed``."""

    tiles: list[list[bytes]]
    rows: np.ndarray

    @property
    def nbytes(self) -> int:
        return sum(len(t) for lv in self.tiles for t in lv) + self.rows.nbytes


def encode_dz_block(region: np.ndarray, plan: DzBlockGrid, b: int, quality: int, workers: int = 1) -> EncodedDzBlock:
    """Every tile of levels ``0 .. plan.inside - 1`` that block ``b`` owns, from ``region`` (:meth:`DzBlockGrid.region`).

    Returns the JPEG tiles, level by level, and the block's own pixels of
    level ``plan.fed``, from which the driver builds the levels above.
    """
    if region.ndim == 2:
        region = region[:, :, None]
    left, top, rw, rh = plan.region(b)
    if region.shape[:2] != (rh, rw):
        raise ValueError(f"block {b} renders {rw}x{rh} pixels, got {region.shape[1]}x{region.shape[0]}")
    t, ov = plan.tile, plan.overlap
    out: list[list[bytes]] = []
    pixels = region
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="bigcppn-dzband") as pool:
        for m in range(plan.inside):
            w, h = plan.levels[m]
            y0, x0 = top >> m, left >> m  # the level's row and column that pixels[0, 0] is
            crops = []
            for r in plan.tile_rows(m, b):
                ya, yb = max(0, r * t - ov) - y0, min(h, (r + 1) * t + ov) - y0
                for c in plan.tile_cols(m, b):
                    crops.append(pixels[ya:yb, max(0, c * t - ov) - x0 : min(w, (c + 1) * t + ov) - x0])
            out.append(list(pool.map(lambda p: encode_tile(p, quality), crops)))
            if m + 1 < plan.inside:
                pixels = halve(pixels)
        m = plan.inside - 1
        w, h = plan.levels[m]
        rows, cols = plan.tile_rows(m, b), plan.tile_cols(m, b)
        y0, x0 = top >> m, left >> m
        own = pixels[rows.start * t - y0 : min(h, rows.stop * t) - y0, cols.start * t - x0 : min(w, cols.stop * t) - x0]
        own = halve(own) if plan.fed == plan.inside else own.copy()  # (even tiles: own pixels start on even rows)
    return EncodedDzBlock(out, own)


class DzBlocks:
    """How a DeepZoom file is cut into blocks for Ray: blocks plus the margins their overlapping tiles need."""

    def grid(self, width: int, height: int, out, pyramid: bool, workers: int) -> DzBlockGrid:
        from ..tiff.blocks import choose_blocks

        return DzBlockGrid(width, height, out.dz_tile, out.dz_overlap,
                          *choose_blocks(width, height, out.dz_tile, workers, overlap=out.dz_overlap))


DZ_BLOCKS = DzBlocks()
