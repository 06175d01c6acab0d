"""A tiled pyramidal TIFF cut into blocks that are encoded apart, for a cluster.

A block is ``tile * 2**k`` rows of the image, full width (a *band*), or, where
full-width bands would be too large or too few, ``tile * 2**k`` square
(``split``). Level ``m`` of the pyramid (each pixel the rounded 2×2 mean of
the level above, as :class:`~bigcppn.formats.tiff.writer.TiledTiffWriter` makes it)
then has exactly ``2**(k - m)`` tile rows (and, split, tile columns) in each
block for ``m <= k``, made from that block's pixels alone. So a worker holding
a block encodes every tile of levels ``0 .. k`` inside it (:func:`encode_block`),
and hands back those bytes and the block's pixels of level ``k + 1``; the
driver places the bytes (:meth:`TiledTiffWriter.write_encoded`) and builds only
the levels from ``k + 1`` up. Tiles, padding and 2×2 means are computed as the
writer computes them, so every tile is the writer's, byte for byte; with
full-width bands the tiles also lie in the file in the writer's order, so the
file is the same byte for byte (split blocks: in block order, the offsets
differ).

Pure numpy and the writer's codecs: no torch, no Ray.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .tile import encode_tile, pyramid_sizes, tiff_codec

__all__ = ["TIFF_BLOCKS", "TiffBlocks", "TiffBlockGrid", "EncodedBlock", "encode_block", "choose_blocks", "reduce2x2", "BlockGrid", "RowJoiner"]

# A block holds at most this many pixels of level 0, margins included (unless one tile row is already more).
MAX_BLOCK_PIXELS = 1 << 25
# Full-width bands while they allow this many levels below the full size (or as many as square blocks would):
# the driver then builds at most 1/4**(GOOD_K + 1) x 4/3 of the pixels (2 %) and the file is the row writer's
# byte for byte.
GOOD_K = 2


def choose_blocks(width: int, height: int, tile: int, workers: int, max_pixels: int = MAX_BLOCK_PIXELS,
                  overlap: int = 0) -> tuple[int, bool]:
    """``(k, split)``: blocks of ``tile * 2**k`` rows, full width or square, about four per worker within memory.

    Full-width bands are kept while they fit the budget and reach
    ``k >= GOOD_K`` (or the ``k`` of square blocks); a wide image (a tile row
    alone over the budget) or many workers get square blocks, so the driver
    never builds a large share of the pyramid itself. Where four blocks per
    worker would leave ``k`` below ``GOOD_K``, one block per worker is
    enough (up to ``GOOD_K``): a short, very wide picture on many actors. ``overlap``: a DeepZoom
    block is rendered with margins of ``overlap * 2**k`` pixels, counted in
    its area.
    """
    def deepest(area, count, per: int = 4) -> int:
        k = 0
        while area(k + 1) <= max_pixels and count(tile << (k + 1)) >= per * workers:
            k += 1
        return k

    def down(s: int) -> int:
        return -(-height // s)

    def side(k: int) -> int:  # a block's side with its margins
        return (tile << k) + 2 * (overlap << k)

    def square_area(k: int) -> int:
        return min(side(k), height) * min(side(k), width)

    def square_count(s: int) -> int:
        return down(s) * -(-width // s)

    full = deepest(lambda k: min(side(k), height) * width, down)
    square = deepest(square_area, square_count)
    if square < GOOD_K:  # few blocks: rather one per actor than the driver building a quarter of the pixels
        square = max(square, min(GOOD_K, deepest(square_area, square_count, per=1)))
    if min(side(full), height) * width <= max_pixels and full >= min(GOOD_K, square):
        return full, False
    return square, True


class BlockGrid:
    """Blocks of ``tile * 2**k`` rows, full width or (``split``) square, numbered row by row; the tiles they own.

    Mixed into a frozen dataclass with ``width``, ``height``, ``tile``, ``k``,
    ``split`` and ``levels`` ((width, height) of every level, the full size first).
    """

    @property
    def rows(self) -> int:
        """A block's height (and, split, width) on level 0."""
        return self.tile << self.k

    @property
    def down(self) -> int:
        return -(-self.height // self.rows)

    @property
    def across(self) -> int:
        return -(-self.width // self.rows) if self.split else 1

    @property
    def count(self) -> int:
        return self.down * self.across

    @property
    def inside(self) -> int:
        """How many levels (0, 1, …) are encoded inside the blocks; the writer builds the rest."""
        return min(self.k + 1, len(self.levels))

    def block(self, b: int) -> tuple[int, int, int, int]:
        """``(x, y, width, height)`` of block ``b`` on level 0."""
        j, i = divmod(b, self.across)
        x, y = (i * self.rows, j * self.rows)
        w = min(self.rows, self.width - x) if self.split else self.width
        return x, y, w, min(self.rows, self.height - y)

    def band_end(self, b: int) -> bool:
        """Block ``b`` is the last of its row of blocks."""
        return b % self.across == self.across - 1

    def _owned(self, m: int, start: int, size: int) -> range:
        per = 1 << (self.k - m)
        n = -(-size // self.tile)
        return range(min(start * per, n), min((start + 1) * per, n))

    def tile_rows(self, m: int, b: int) -> range:
        """The tile rows of level ``m`` (``m <= k``) that block ``b`` owns."""
        return self._owned(m, b // self.across, self.levels[m][1])

    def tile_cols(self, m: int, b: int) -> range:
        """The tile columns of level ``m`` (``m <= k``) that block ``b`` owns."""
        if not self.split:
            return range(-(-self.levels[m][0] // self.tile))
        return self._owned(m, b % self.across, self.levels[m][0])

    def where(self, b: int) -> list[tuple[range, range]]:
        """(tile rows, tile columns) of block ``b`` on each level encoded inside it."""
        return [(self.tile_rows(m, b), self.tile_cols(m, b)) for m in range(self.inside)]


@dataclass(frozen=True)
class TiffBlockGrid(BlockGrid):
    """A ``width`` x ``height`` TIFF in blocks of ``tile * 2**k`` rows (full width, or square if ``split``)."""

    width: int
    height: int
    tile: int
    k: int
    pyramid: bool = True  # False: a flat TIFF, the full level only
    split: bool = False

    @property
    def levels(self) -> list[tuple[int, int]]:
        return pyramid_sizes(self.width, self.height, self.tile) if self.pyramid else [(self.width, self.height)]

    @property
    def fed(self) -> int:
        """The level whose pixels a block hands the writer: the first it builds itself."""
        return self.inside


@dataclass
class EncodedBlock:
    """A block's encoded tiles, level by level (each level's row-major in the block), and its pixels of the next level."""

    tiles: list[list[bytes]]
    reduced: np.ndarray | None

    @property
    def rows(self) -> np.ndarray | None:
        """The rows the writer takes after the tiles (its first level it builds itself)."""
        return self.reduced

    @property
    def nbytes(self) -> int:
        return sum(len(t) for lv in self.tiles for t in lv) + (0 if self.reduced is None else self.reduced.nbytes)


class RowJoiner:
    """The blocks' pixels of the writer's first level, joined side by side into full-width rows at each band's end."""

    def __init__(self, plan: BlockGrid) -> None:
        self.plan = plan
        self.parts: list[np.ndarray] = []

    def add(self, b: int, pixels: np.ndarray | None) -> np.ndarray | None:
        """Block ``b``'s pixels (blocks come in order); the band's rows after its last block, else None."""
        if pixels is not None:
            self.parts.append(pixels)
        if not self.plan.band_end(b) or not self.parts:
            return None
        parts, self.parts = self.parts, []
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def reduce2x2(a: np.ndarray) -> np.ndarray:
    """Each 2×2 block's rounded mean, ``(a + b + c + d + 2) >> 2``, as the writer and libvips make it."""
    wide = np.uint16 if a.dtype == np.uint8 else np.uint32
    h, w = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
    s = np.add(a[0:h:2, :w], a[1:h:2, :w], dtype=wide)
    s = np.add(s[:, 0::2], s[:, 1::2])
    s += 2
    s >>= 2
    return s.astype(a.dtype)


def _padded(plan: TiffBlockGrid, m: int, b: int, pixels: np.ndarray) -> np.ndarray:
    """Level ``m``'s tiles of block ``b``, zero past the level's edges (the writer's padding)."""
    t = plan.tile
    w, h = plan.levels[m]
    rows, cols = plan.tile_rows(m, b), plan.tile_cols(m, b)
    out = np.zeros((len(rows) * t, len(cols) * t, pixels.shape[2]), pixels.dtype)
    y0, x0 = rows.start * t, cols.start * t
    n, k = max(0, min(pixels.shape[0], h - y0)), max(0, min(pixels.shape[1], w - x0))
    out[:n, :k] = pixels[:n, :k]
    return out


def encode_block(pixels: np.ndarray, plan: TiffBlockGrid, b: int, compression: str, quality: int,
                workers: int = 1) -> EncodedBlock:
    """Every tile of levels ``0 .. plan.inside - 1`` in block ``b`` (``pixels``: its level-0 pixels), encoded.

    Returns the tiles, level by level (row-major inside the block), and the
    block's pixels of level ``plan.inside`` (None when the pyramid has no more levels).
    """
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    _, _, w, h = plan.block(b)
    if pixels.shape[:2] != (h, w):
        raise ValueError(f"block {b} is {w}x{h} pixels, got {pixels.shape[1]}x{pixels.shape[0]}")
    codec = tiff_codec(compression)
    encode, predictor = codec.make(quality, pixels.shape[2]), codec.predictor
    t = plan.tile
    out: list[list[bytes]] = []
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="bigcppn-band") as pool:
        for m in range(plan.inside):
            level = _padded(plan, m, b, pixels)
            tiles = [level[r * t : (r + 1) * t, c * t : (c + 1) * t]
                     for r in range(level.shape[0] // t) for c in range(level.shape[1] // t)]
            out.append(list(pool.map(lambda a: encode_tile(a, encode, predictor, None, 0, 0), tiles)))
            if m + 1 < len(plan.levels):
                w2, h2 = plan.levels[m + 1]
                y2 = plan.tile_rows(m, b).start * t // 2  # this block's first row and column on level m + 1
                x2 = plan.tile_cols(m, b).start * t // 2
                half = reduce2x2(level)
                pixels = half[: max(0, min(half.shape[0], h2 - y2)), : max(0, min(half.shape[1], w2 - x2))]
            else:
                pixels = None
    return EncodedBlock(out, pixels if plan.inside < len(plan.levels) else None)


class TiffBlocks:
    """How a TIFF is cut into blocks for Ray: tile rows of ``tile * 2**k`` (:func:`choose_blocks`)."""

    def grid(self, width: int, height: int, out, pyramid: bool, workers: int) -> TiffBlockGrid:
        k, split = choose_blocks(width, height, out.tiff_tile, workers)
        return TiffBlockGrid(width, height, out.tiff_tile, k, pyramid, split)


TIFF_BLOCKS = TiffBlocks()
