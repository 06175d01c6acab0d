"""A DeepZoom writer that encodes tiles and builds the pyramid on every core.

``render -o NAME.dzi`` with JPEG tiles used to reach libvips' ``dzsave``
through the PNG stream, whose decoder runs on one thread. This writer takes
the strips directly: each level keeps one tile row (plus its overlap) at a
time; a thread pool encodes each tile with libjpeg-turbo (imagecodecs) and
writes its file, and halves each chunk of rows for the next level. The
feeding thread only copies rows into tile rows and hands reduced rows on, in
order.

The pyramid is the one libvips writes (measured): levels from the full size
down to 1×1, each ``ceil`` half the one above, each pixel the rounded mean of
its 2×2 parents with the last row and column repeated at odd sizes; tiles of
``tile`` pixels plus ``overlap`` on every side that has a neighbour, named
``NAME_files/LEVEL/COL_ROW.jpeg``; JPEG at the same quality, without chroma
subsampling from quality 90 up and 4:2:0 below, as libvips chooses; tiles
decode to libvips' own pixels. A ``.szi`` path writes the same inside a zip
(stored, as libvips: ``NAME/NAME.dzi``, ``NAME/NAME_files/...``,
``NAME/scan-properties.xml``), the feeding thread adding each finished tile;
each entry a Unix regular file, mode 0644 (:func:`szi_entry`; libvips writes
0664, and no directory entries), so ``unzip`` makes readable files.
libvips' informational ``vips-properties.xml`` is not written.

Memory: one tile row (plus overlap) per level, about two of the full level in
all, and the jobs in flight: at most ``max_pending`` after each ``write``, though
one write queues all the tile rows it completes (the renderer's strips are one
tile row or less).
"""

from __future__ import annotations

import collections
import os
import time
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ...core.geometry import tile_positions
from ...core.system import available_cores

__all__ = ["DeepZoomWriter", "dz_sizes", "szi_entry", "encode_tile", "halve", "fed_level"]

SZI_FILE_MODE = 0o100644  # a regular file, rw-r--r--


def szi_entry(name: str) -> zipfile.ZipInfo:
    """A .szi member: dated 1980-01-01 as libvips dates them, a Unix regular file of mode 0644.

    (A bare ``ZipInfo`` has no file type and no permissions; ``writestr`` with
    a name gives 0600: unzipped, neither is readable by a web server.)
    """
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.create_system = 3  # Unix: external_attr's high 16 bits are st_mode
    info.external_attr = SZI_FILE_MODE << 16
    return info


def dz_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """(width, height) of every level, the full size first, down to 1×1."""
    sizes = [(width, height)]
    while width > 1 or height > 1:
        width, height = (width + 1) // 2, (height + 1) // 2
        sizes.append((width, height))
    return sizes


def fed_level(encoded: int, tile: int, levels: int) -> int:
    """The level whose rows come with a band of encoded tiles (levels ``0 .. encoded - 1`` encoded).

    The first level the writer builds, ``encoded``, when a band's rows there
    are whole rows (even tiles: a band's rows on the last encoded level start
    and end on even rows); else the last encoded level, which the writer
    halves itself (odd tiles; or when no level is left to build).
    """
    return encoded if tile % 2 == 0 and encoded < levels else encoded - 1


def halve(rows: np.ndarray) -> np.ndarray:
    """The rounded 2×2 mean of ``rows``, the last row and column repeated at odd sizes (run in the pool)."""
    h, w, c = rows.shape
    if h % 2:
        rows = np.concatenate([rows, rows[-1:]])
    if w % 2:
        rows = np.concatenate([rows, rows[:, -1:]], axis=1)
    q = rows.reshape(rows.shape[0] // 2, 2, rows.shape[1] // 2, 2, c)
    s = np.add(q[:, 0], q[:, 1], dtype=np.uint16)
    s = np.add(s[:, :, 0], s[:, :, 1])
    s += 2
    s >>= 2
    return s.astype(np.uint8)


def encode_tile(pixels: np.ndarray, quality: int) -> bytes:
    """One tile as libvips encodes it (run in the pool)."""
    import imagecodecs

    pixels = np.ascontiguousarray(pixels)
    if pixels.shape[2] == 1:
        return imagecodecs.jpeg8_encode(pixels[:, :, 0], level=quality)
    return imagecodecs.jpeg8_encode(pixels, level=quality, subsampling="444" if quality >= 90 else "420")


def _tile(pixels: np.ndarray, quality: int, path: Path | None) -> bytes | None:
    """Encode one tile and write its file; without a path, return the bytes (for a zip) (run in the pool)."""
    data = encode_tile(pixels, quality)
    if path is None:
        return data
    _write(path, data)
    return None


def _write(path: Path, data: bytes) -> None:
    """Write one tile's file (run in the pool)."""
    with open(path, "wb") as f:
        f.write(data)


def _stamp() -> str:
    """Now in UTC to the second, or ``SOURCE_DATE_EPOCH`` where it is set (the same bytes run to run, as PDF/X
    dates)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch) if epoch.isdigit() else None))


def _scan_properties(width: int, height: int) -> bytes:
    """The ``scan-properties.xml`` a .szi carries (the Smart Zoom Image format's)."""
    return (
        '<?xml version="1.0"?>\n'
        f'<image xmlns="http://www.pathozoom.com/szi" date="{_stamp()}"'
        ' version="1.0">\n'
        "  <properties>\n"
        "    <property>\n"
        "      <name>ImageWidth</name>\n"
        f'      <value type="gint">{width}</value>\n'
        "    </property>\n"
        "    <property>\n"
        "      <name>ImageHeight</name>\n"
        f'      <value type="gint">{height}</value>\n'
        "    </property>\n"
        "  </properties>\n"
        "</image>\n"
    ).encode()


class _Level:
    def __init__(self, number: int, width: int, height: int, tile: int, overlap: int, bands: int,
                 folder: str, tiles: bool = True) -> None:
        self.number, self.width, self.height = number, width, height
        self.tile, self.overlap, self.bands = tile, overlap, bands
        self.cols = -(-width // tile)
        self.rows = -(-height // tile)
        self.folder = folder
        self.row = 0  # the tile row being filled
        self.top = 0  # the image row that band[0] holds
        self.filled = 0  # rows in band
        self.received = 0  # rows received in all
        self.carry: np.ndarray | None = None  # an odd row waiting for its pair, to halve
        self.tiles = tiles  # False: its tiles arrive encoded, its rows only feed the next level
        self.band = np.empty((tile + 2 * overlap, width, bands) if tiles else (0, 0, bands), np.uint8)
        self.placed = bytearray(0 if tiles else self.rows * self.cols)  # encoded tiles written, by index

    @property
    def end(self) -> int:
        """One past the last image row of the current tile row, overlap included."""
        return min(self.height, (self.row + 1) * self.tile + self.overlap)


class DeepZoomWriter:
    """Write ``NAME.dzi`` and ``NAME_files/`` (or ``NAME.szi``) from rows given top to bottom.

    ``write(rows)`` takes rows of shape (n, width, bands), uint8, that the caller
    does not change afterwards; ``close()`` finishes, ``abort()`` gives up (the
    caller removes the files). One thread feeds it.
    """

    def __init__(self, path: str | Path, width: int, height: int, bands: int, *, tile: int = 254,
                 overlap: int = 1, quality: int = 90, workers: int | None = None,
                 max_pending: int | None = None, extra: dict[str, bytes] | None = None,
                 encoded_levels: int = 0) -> None:
        if bands not in (1, 3):
            raise ValueError(f"the DeepZoom writer takes 1 or 3 bands, not {bands}")
        if not 0 <= overlap < tile:
            raise ValueError(f"overlap {overlap} must be at least 0 and less than the tile {tile}")
        self.path = Path(path)
        self.extra = extra or {}  # more files for a .szi's NAME/ folder, written at the end
        self.width, self.height, self.bands = width, height, bands
        self.tile, self.overlap, self.quality = tile, overlap, quality
        self.szi = self.path.suffix.lower() == ".szi"
        stem = self.path.stem
        # a .szi zip holds NAME/NAME.dzi and NAME/NAME_files/..., as libvips writes it
        self.prefix = f"{stem}/" if self.szi else ""
        sizes = dz_sizes(width, height)
        top = len(sizes) - 1
        if not 0 <= encoded_levels <= len(sizes):
            raise ValueError(f"{encoded_levels} encoded levels for a pyramid of {len(sizes)}")
        # Levels 0 .. encoded_levels - 1 arrive encoded (write_encoded), with rows of level `fed`.
        self.encoded = encoded_levels
        self.fed = fed_level(encoded_levels, tile, len(sizes)) if encoded_levels else 0
        self.levels = []
        for i, (w, h) in enumerate(sizes):
            folder = f"{self.prefix}{stem}_files/{top - i}"
            if not self.szi:
                (self.path.parent / folder).mkdir(parents=True, exist_ok=True)
            self.levels.append(_Level(top - i, w, h, tile, overlap, bands, folder, i >= encoded_levels))
        self._zip = zipfile.ZipFile(self.path, "w", zipfile.ZIP_STORED, allowZip64=True) if self.szi else None
        self.workers = workers or available_cores()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="bigcppn-dz")
        # (level to feed, or -1 for a tile; the job; the tile's name)
        self._pending: collections.deque[tuple[int, Future, str]] = collections.deque()
        self.max_pending = max_pending or max(4 * self.workers, self.levels[0].cols)
        self._draining = False
        self._closed = False

    # ------------------------------------------------------------------ feeding
    def write(self, rows: np.ndarray) -> None:
        if self.encoded:
            raise ValueError("this writer takes encoded tiles: write_encoded")
        if rows.ndim == 2:
            rows = rows[:, :, None]
        if rows.shape[1:] != (self.width, self.bands):
            raise ValueError(f"rows of shape {rows.shape} do not fit a {self.width}x{self.height}x{self.bands} image")
        if rows.dtype != np.uint8:
            raise ValueError(f"DeepZoom tiles take uint8 rows, not {rows.dtype}")
        if self.levels[0].received + rows.shape[0] > self.height:
            raise ValueError(f"{self.levels[0].received + rows.shape[0]} rows written to an image "
                             f"{self.height} rows high")
        self._feed(0, rows)
        if not self._draining:
            self._drain(self.max_pending)

    def _feed(self, index: int, rows: np.ndarray) -> None:
        lv = self.levels[index]
        last = lv.received + rows.shape[0] == lv.height
        if index + 1 < len(self.levels):  # halve for the next level, in the pool, in pairs of rows
            pairs = rows if lv.carry is None else np.concatenate([lv.carry, rows])
            lv.carry = None
            if pairs.shape[0] % 2 and not last:
                lv.carry = pairs[-1:].copy()
                pairs = pairs[:-1]
            if pairs.shape[0]:
                self._pending.append((index + 1, self._pool.submit(halve, pairs), ""))
        y = 0 if lv.tiles else rows.shape[0]
        while y < rows.shape[0]:
            n = min(rows.shape[0] - y, lv.end - lv.top - lv.filled)
            lv.band[lv.filled : lv.filled + n] = rows[y : y + n]
            lv.filled += n
            y += n
            self._emit(lv)
        lv.received += rows.shape[0]

    def write_encoded(self, tiles: list[list[bytes]], rows: np.ndarray | None = None,
                      where: list[tuple[range, range]] | None = None) -> None:
        """A block's encoded tiles (:func:`bigcppn.formats.deepzoom.blocks.encode_dz_block`), then rows of level :func:`fed_level`.

        ``tiles[m]`` are level ``m``'s tiles, row-major over ``where[m]`` (tile
        rows, tile columns; default: the next whole tile rows); they are
        written under their names as they are, as this writer would have
        written the same tiles encoded here. ``rows`` (n, width, bands; may
        come with a later block) are the next rows of the level ``self.fed``,
        from which the writer builds the levels above.
        """
        if len(tiles) != self.encoded:
            raise ValueError(f"{len(tiles)} levels of encoded tiles for a writer expecting {self.encoded}")
        for m, (lv, datas) in enumerate(zip(self.levels, tiles)):
            where_m = None if where is None else where[m]
            places = tile_positions(len(datas), where_m, lv.cols, lv.rows, lv.row, f"level {lv.number}")
            for (r, c), data in zip(places, datas):
                if lv.placed[r * lv.cols + c]:
                    raise ValueError(f"tile {c}_{r} of level {lv.number} is placed twice")
                lv.placed[r * lv.cols + c] = 1
                name = f"{lv.folder}/{c}_{r}.jpeg"
                if self.szi:
                    self._add(name, data)
                else:
                    self._pending.append((-1, self._pool.submit(_write, self.path.parent / name, data), name))
            lv.row += len(datas)  # (an encoded level counts its tiles here)
        if rows is not None:
            fed = self.levels[self.fed]
            if rows.ndim == 2:
                rows = rows[:, :, None]
            if rows.shape[1:] != (fed.width, self.bands) or fed.received + rows.shape[0] > fed.height:
                raise ValueError(f"rows of shape {rows.shape} do not fit level {fed.number} "
                                 f"({fed.width}x{fed.height}, {fed.received} rows written)")
            self._feed(self.fed, rows)
        if not self._draining:
            self._drain(self.max_pending)

    def _emit(self, lv: _Level) -> None:
        """Queue the tiles of the current tile row, then start the next one with its overlap rows.

        The next one may be complete already (its overlap reaches the bottom): then it goes too.
        """
        t, ov = self.tile, self.overlap
        while lv.top + lv.filled == lv.end and lv.row < lv.rows:
            band = lv.band[: lv.filled]
            for c in range(lv.cols):
                x0 = max(0, c * t - ov)
                x1 = min(lv.width, (c + 1) * t + ov)
                name = f"{lv.folder}/{c}_{lv.row}.jpeg"
                path = None if self.szi else self.path.parent / name
                job = self._pool.submit(_tile, band[:, x0:x1], self.quality, path)
                self._pending.append((-1, job, name))
            end = lv.end
            lv.row += 1
            if lv.row == lv.rows:
                return
            top = lv.row * t - ov
            keep = lv.band[top - lv.top : end - lv.top]  # the rows the next tile row shares with this one
            lv.band = np.empty_like(lv.band)  # the queued tiles are views of the old one
            lv.band[: keep.shape[0]] = keep
            lv.top, lv.filled = top, keep.shape[0]

    def _drain(self, keep: int) -> None:
        """Finish jobs in order until at most ``keep`` are in flight, feeding halved rows on."""
        self._draining = True
        try:
            while self._pending and (len(self._pending) > keep or self._pending[0][1].done()):
                index, fut, name = self._pending.popleft()
                result = fut.result()
                if index >= 0:
                    self._feed(index, result)
                elif self._zip is not None:
                    self._add(name, result)
        finally:
            self._draining = False

    # ------------------------------------------------------------------ finishing
    def close(self) -> None:
        try:
            fed = self.levels[self.fed]
            if fed.received != fed.height:
                raise ValueError(f"{fed.received} rows written to an image {fed.height} rows high")
            self._drain(0)
            for lv in self.levels[self.fed:]:
                if lv.received != lv.height:  # pragma: no cover - the pipeline's own invariant
                    raise RuntimeError(f"level {lv.number} got {lv.received} of {lv.height} rows")
            for lv in self.levels[: self.encoded]:
                if lv.row != lv.rows * lv.cols:
                    raise ValueError(f"level {lv.number} got {lv.row} of its {lv.rows * lv.cols} tiles")
            self._pool.shutdown()
            dzi = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                '<Image xmlns="http://schemas.microsoft.com/deepzoom/2008"\n'
                '  Format="jpeg"\n'
                f'  Overlap="{self.overlap}"\n'
                f'  TileSize="{self.tile}"\n'
                "  >\n"
                "  <Size \n"
                f'    Height="{self.height}"\n'
                f'    Width="{self.width}"\n'
                "  />\n"
                "</Image>\n")
            if self._zip is None:
                self.path.write_text(dzi, encoding="utf-8")
            else:
                self._add(f"{self.prefix}{self.path.stem}.dzi", dzi.encode())
                self._add(f"{self.prefix}scan-properties.xml", _scan_properties(self.width, self.height))
                for name, data in self.extra.items():
                    self._add(f"{self.prefix}{name}", data)
                self._zip.close()
            self._closed = True
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Stop: cancel queued work and wait for running jobs (the caller removes the files)."""
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._zip is not None:
            try:
                self._zip.close()
            except OSError:
                pass  # a full disk: the zip is given up anyway, and the error path must not fail

    def _add(self, name: str, data: bytes) -> None:
        self._zip.writestr(szi_entry(name), data)

    def __enter__(self) -> DeepZoomWriter:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def write_dz(path: str | Path, image: np.ndarray, **kw) -> None:
    """A whole in-memory picture (h, w, bands) as a DeepZoom pyramid; for tests and small pictures."""
    h, w = image.shape[:2]
    with DeepZoomWriter(path, w, h, image.shape[2] if image.ndim == 3 else 1, **kw) as dz:
        for y in range(0, h, 256):
            dz.write(image[y : y + 256])

