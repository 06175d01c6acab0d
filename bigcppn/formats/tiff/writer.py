"""A tiled, pyramidal TIFF writer that compresses tiles on every core.

libvips compresses deflate and LZW TIFF tiles on one thread (measured: 73 and
30 MPix/s here, the same on a 16-core machine), which is the whole cost of a
render once a GPU makes the pixels. This writer takes the rendered strips
directly, cuts them into tiles and hands each tile to a thread pool that
applies the horizontal predictor, compresses it (imagecodecs: zlib-ng,
LZW or libjpeg-turbo, all releasing the GIL) and box-filters it 2×2 for the next pyramid level.
The calling thread only copies rows into tiles and writes finished tiles out
in order.

The file has the same structure as libvips' ``tiffsave(tile=True,
pyramid=True)``: one IFD per level in a chain, levels after the first marked
``NewSubfileType = 1``, each level ``floor`` half the one above, made while a
level is wider or taller than a tile, each pixel the rounded mean of its 2×2
parents (``(a + b + c + d + 2) >> 2``, as libvips). Each directory owns its
metadata, as libvips writes it: its own copy of the description, XMP, ICC
profile and JPEGTables (tools that edit metadata, exiftool for one, refuse
directories that point at another's XMP), and its real resolution, halved
per level (:mod:`bigcppn.formats.tiff.res`; libvips repeats the full one). JPEG tiles
are libvips' own, byte for byte (:mod:`bigcppn.formats.tiff.jpeg`: YCbCr 4:2:0 below
quality 90, shared tables). Level 0's tiles go straight into the file; lower
levels spool to unnamed temporary files beside it and are appended at the
end, followed by the directories. Classic TIFF or BigTIFF is chosen at the
end from the real size.

Four bands are CMYK (Photometric Separated, InkSet CMYK; not JPEG). Memory: the tile row being filled on each level (about one tile row of level
0 in all) and at most ``max_pending`` tiles in flight (by default four per
worker or one tile row of level 0, whichever is more), whatever the canvas
height.

A cluster (:mod:`bigcppn.formats.tiff.blocks`) encodes the first levels block by block on its
workers; ``encoded_levels`` and :meth:`TiledTiffWriter.write_encoded` place those
tiles as they come and build only the levels above from rows: the same tiles,
and the same bytes when the blocks are full-width bands (square blocks place
their tiles block by block, so only the tile offsets differ).
"""

from __future__ import annotations

import collections
import os
import shutil
import struct
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ...core.geometry import tile_positions
from ...core.system import available_cores
from .ifd import TiffDirectories
from .tile import pyramid_sizes, tiff_codec
from .tile import encode_tile as _work

__all__ = ["TiledTiffWriter", "TiffTags"]

_HEADER = 16  # room for a BigTIFF header; a classic header uses the first 8 bytes


class _Level:
    def __init__(self, index: int, width: int, height: int, tile: int, bands: int, dtype, spool: BinaryIO,
                 fed: bool = False) -> None:
        self.index = index
        self.width, self.height = width, height
        self.across = -(-width // tile)
        self.down = -(-height // tile)
        self.tile, self.bands, self.dtype = tile, bands, dtype
        self.spool = spool
        self.start = 0  # where the spool's bytes begin in the final file
        self.offsets: list[int] = []
        self.counts: list[int] = []
        self.filled = 0  # rows received into the tile row being filled (the level fed with rows)
        self.band_index = 0  # that tile row (the level fed with rows)
        self.done = 0  # tiles written
        self.band = self._new_band() if fed else []
        self.pending_bands: dict[int, list[np.ndarray]] = {}  # tile rows being filled by the pool (lower levels)

    def _new_band(self) -> list[np.ndarray]:
        """The fed level's buffers for the next tile row; zeroed where rows will not cover them (the padding)."""
        t = self.tile
        whole_rows = self.band_index < self.down - 1 or self.height % t == 0
        return [
            (np.empty if whole_rows and (i < self.across - 1 or self.width % t == 0) else np.zeros)(
                (t, t, self.bands), self.dtype)
            for i in range(self.across)
        ]

    def band_for(self, j: int) -> list[np.ndarray]:
        """Tile row ``j`` of a lower level, allocated when the first of its parents is submitted."""
        if j not in self.pending_bands:
            self.pending_bands[j] = [np.zeros((self.tile, self.tile, self.bands), self.dtype)
                                     for _ in range(self.across)]
        return self.pending_bands[j]


@dataclass(frozen=True)
class TiffTags:
    """What goes into every directory besides the image structure."""

    dpi: float | None = None
    description: str | None = None
    xmp: bytes | None = None
    icc: bytes | None = None


class TiledTiffWriter(TiffDirectories):
    """Write a tiled pyramidal TIFF from rows given top to bottom.

    ``write(rows)`` takes any number of rows of shape (n, width, bands); the
    caller must not change them afterwards (tiles may be views of them until
    compressed);
    ``close()`` finishes the file, ``abort()`` gives up (the caller removes
    the file). ``pyramid=False`` writes the full level only: a flat tiled TIFF. Not thread-safe: one thread feeds it. The bytes written do not
    depend on how the rows are split into calls, nor on ``workers``.
    """

    def __init__(self, path: str | Path, width: int, height: int, bands: int, depth: int = 8, *,
                 tile: int = 256, compression: str = "deflate", quality: int = 90, tags: TiffTags = TiffTags(),
                 workers: int | None = None, max_pending: int | None = None,
                 bigtiff: bool | None = None, pyramid: bool = True,
                 encoded_levels: int = 0) -> None:
        codec = tiff_codec(compression)
        if bands not in (1, 3, 4) or (bands == 4 and codec.jpeg):
            raise ValueError(f"the TIFF writer takes 1, 3 or 4 (CMYK, not JPEG) bands, not {bands} {compression}")
        if depth not in (8, 16):
            raise ValueError(f"the TIFF writer takes 8- or 16-bit pixels, not {depth}")
        if tile % 16 or tile <= 0:
            raise ValueError(f"TIFF tiles must be a multiple of 16 pixels, not {tile}")
        self.path = Path(path)
        self.width, self.height, self.bands, self.depth = width, height, bands, depth
        self.tile, self.compression, self.tags = tile, compression, tags
        self.bigtiff = bigtiff  # None: BigTIFF only if the file needs it
        self.dtype = np.dtype(np.uint8 if depth == 8 else np.uint16)
        if codec.jpeg and depth != 8:
            raise ValueError("JPEG tiles hold 8-bit samples")
        self.quality = quality
        self._codec = codec
        self._encode = codec.make(quality, bands)
        self._predictor = codec.predictor
        self.workers = workers or available_cores()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="bigcppn-tiff")
        self._file = open(self.path, "wb")
        self.levels: list[_Level] = []
        try:
            self._file.write(b"\0" * _HEADER)
            sizes = pyramid_sizes(width, height, tile) if pyramid else [(width, height)]
            for i, (w, h) in enumerate(sizes):
                spool = self._file if i == 0 else tempfile.TemporaryFile(dir=self.path.parent)
                self.levels.append(_Level(i, w, h, tile, bands, self.dtype, spool, fed=i == encoded_levels))
        except BaseException:
            for lv in self.levels:
                lv.spool.close()
            self._file.close()
            self._pool.shutdown()
            raise
        self._pending: collections.deque[tuple[_Level, Future]] = collections.deque()
        self.max_pending = max_pending or max(4 * self.workers, self.levels[0].across)
        # Levels 0 .. encoded_levels - 1 come encoded (write_encoded); rows feed the next one.
        self.fed = encoded_levels
        self.rows = 0
        self._closed = False
        self._draining = False

    # ------------------------------------------------------------------ feeding
    def write(self, rows: np.ndarray) -> None:
        if rows.ndim == 2:
            rows = rows[:, :, None]
        if self.fed >= len(self.levels):
            raise ValueError("every level of this TIFF comes encoded; it takes no rows")
        top = self.levels[self.fed]
        if rows.shape[1:] != (top.width, self.bands):
            raise ValueError(f"rows of shape {rows.shape} do not fit a {top.width}x{top.height}x{self.bands} image")
        if self.rows + rows.shape[0] > top.height:
            raise ValueError(f"{self.rows + rows.shape[0]} rows written to an image {top.height} rows high")
        if rows.dtype != self.dtype:
            raise ValueError(f"a {self.depth}-bit TIFF takes {self.dtype} rows, not {rows.dtype}")
        t = self.tile
        y = 0
        while y < rows.shape[0]:
            n = min(rows.shape[0] - y, t - top.filled)
            whole = n == t  # a whole tile row: interior tiles are views of ``rows``, not copies
            for i, buf in enumerate(top.band):
                x0 = i * t
                x1 = min(x0 + t, top.width)
                if whole and x1 - x0 == t:
                    top.band[i] = rows[y : y + t, x0:x1]
                else:
                    buf[top.filled : top.filled + n, : x1 - x0] = rows[y : y + n, x0:x1]
            top.filled += n
            y += n
            self.rows += n
            if top.filled == t or self.rows == top.height:
                self._submit_band(top, top.band_index, top.band)
                top.band_index += 1
                top.filled = 0
                if top.band_index < top.down:
                    top.band = top._new_band()

    def write_encoded(self, tiles: list[list[bytes]], rows: np.ndarray | None = None,
                      where: list[tuple[range, range]] | None = None) -> None:
        """A block's encoded tiles (:func:`bigcppn.formats.tiff.blocks.encode_block`), then rows of the fed level.

        ``tiles[m]`` are level ``m``'s tiles, for the ``encoded_levels``
        levels, row-major over ``where[m]`` (tile rows, tile columns; default:
        the next whole tile rows); they are placed as they are, in the order
        given, as ``write`` would have placed the same tiles encoded here.
        ``rows`` (full width; may come with a later block) feed the next level.
        """
        if len(tiles) != self.fed:
            raise ValueError(f"{len(tiles)} levels of encoded tiles for a writer expecting {self.fed}")
        for m, (level, datas) in enumerate(zip(self.levels, tiles)):
            if not level.offsets:  # an encoded level: its tiles may come in any order
                level.offsets = [0] * (level.across * level.down)
                level.counts = [0] * (level.across * level.down)
            places = tile_positions(len(datas), None if where is None else where[m], level.across, level.down,
                                    level.done, f"level {level.index}")
            for (r, c), data in zip(places, datas):
                index = r * level.across + c
                if level.counts[index]:
                    raise ValueError(f"tile {index} of level {level.index} is placed twice")
                level.offsets[index] = level.spool.tell()
                level.counts[index] = len(data)
                level.spool.write(data)
            level.done += len(datas)
        if rows is not None and rows.shape[0]:
            self.write(rows)

    def _submit_band(self, level: _Level, by: int, tiles: list[np.ndarray]) -> None:
        """Queue tile row ``by`` of ``level``: each tile compressed, its 2×2 mean put into the next level."""
        nxt = self.levels[level.index + 1] if level.index + 1 < len(self.levels) else None
        j = by // 2
        if nxt is not None and j < nxt.down:
            parents = nxt.band_for(j)
        else:
            parents = None
        half = self.tile // 2
        y0 = (by % 2) * half
        for i, tile in enumerate(tiles):
            target, xe, ye = None, 0, 0
            if parents is not None and i // 2 < nxt.across:
                x0 = (i % 2) * half
                target = parents[i // 2][y0 : y0 + half, x0 : x0 + half]
                xe = nxt.width - (i // 2) * self.tile - x0  # where the next level's edge falls in target
                ye = nxt.height - j * self.tile - y0
            fut = self._pool.submit(_work, tile, self._encode, self._predictor, target, xe, ye)
            self._pending.append((level, fut))
        if not self._draining:  # a _drain up the stack keeps going; don't nest
            self._drain(self.max_pending)

    def _drain(self, keep: int) -> None:
        """Write finished tiles in order until at most ``keep`` are in flight."""
        self._draining = True
        try:
            self._drain_loop(keep)
        finally:
            self._draining = False

    def _drain_loop(self, keep: int) -> None:
        while self._pending and (len(self._pending) > keep or self._pending[0][1].done()):
            level, fut = self._pending.popleft()
            data = fut.result()
            level.offsets.append(level.spool.tell())
            level.counts.append(len(data))
            level.spool.write(data)
            by, bx = divmod(level.done, level.across)
            level.done += 1
            if bx == level.across - 1 and level.index + 1 < len(self.levels):
                # the end of a tile row: the next level's row is complete after an odd row or the last one
                nxt = self.levels[level.index + 1]
                j = by // 2
                if (by % 2 == 1 or by == level.down - 1) and j < nxt.down:
                    self._submit_band(nxt, j, nxt.pending_bands.pop(j))

    # ------------------------------------------------------------------ finishing
    def close(self) -> None:
        fed = self.levels[self.fed].height if self.fed < len(self.levels) else 0
        if self.rows != fed:
            raise ValueError(f"{self.rows} rows written to an image {fed} rows high")
        self._drain(0)
        for lv in self.levels:
            if lv.done != lv.across * lv.down:
                raise ValueError(f"level {lv.index} got {lv.done} of its {lv.across * lv.down} tiles")
        self._pool.shutdown()
        f = self._file
        for lv in self.levels[1:]:
            lv.start = f.tell()
            lv.spool.seek(0)
            shutil.copyfileobj(lv.spool, f, 8 << 20)
            lv.spool.close()
        end = f.tell()
        big = self.bigtiff
        if big is None:
            big = end + self._directories_size(big=False) >= 2**32 - 1
        f.seek(0, os.SEEK_END)
        first = self._write_directories(f, big)
        f.seek(0)
        if big:
            f.write(b"II" + struct.pack("<HHHQ", 43, 8, 0, first))
        else:
            f.write(b"II" + struct.pack("<HI", 42, first))
        f.close()
        self._closed = True

    def abort(self) -> None:
        """Stop: cancel queued work, close files (the caller removes the output)."""
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        for lv in self.levels[1:]:
            lv.spool.close()
        self._file.close()

    def __enter__(self) -> TiledTiffWriter:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            try:
                self.close()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()
