"""The libvips bridge: rows in, a streamed libvips image out, saved on its own thread.

pyvips has no "generate pixels by callback" API, so rows reach libvips as an
uncompressed PNG stream: a PNG header, then each strip as IDAT chunks holding
stored (level 0) deflate blocks, then IEND. libvips loads it with
``access="sequential"`` and pulls rows as its saver needs them, so only a few
strips are ever in memory, whatever the canvas size. ``fail_on="truncated"``
turns a stream that ends early (a render error, Ctrl-C) into a libvips error
instead of a silently padded picture.

A leaf: it knows pyvips and numpy, not formats; a format hands
:class:`StreamWriter` the save it wants (:meth:`bigcppn.formats.base.Format.open`).
"""

from __future__ import annotations

import queue
import struct
import threading
import zlib
from typing import Callable, Iterable, Iterator

import numpy as np
import pyvips

from ..errors import RenderError

__all__ = ["png_stream", "checked", "StripSource", "StreamWriter", "image_strips"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# IDAT payloads up to this size; libvips reads the stream in small pieces anyway.
IDAT_MAX = 1 << 20
STORED_MAX = 65535  # the most a stored deflate block holds


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def png_stream(strips: Iterable[np.ndarray], width: int, height: int, bands: int, depth: int) -> Iterator[bytes]:
    """An uncompressed PNG of (rows, width, bands) uint8/uint16 strips, as a sequence of byte pieces.

    Each strip is framed a few rows at a time (about IDAT_MAX bytes, plus a
    filter byte per row): the zlib stream is written by hand as stored deflate
    blocks, and the pieces (chunk headers, block headers, views of the rows,
    checksums) are handed out without joining them, so each pixel is copied
    once here. The stream holds about one megabyte beyond the strip itself,
    however wide.
    """
    color_type = {1: 0, 3: 2, 4: 6}[bands]
    yield PNG_SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0))
    row_bytes = width * bands * (depth // 8)
    group = max(1, IDAT_MAX // (row_bytes + 1))
    adler = 1
    head = b"\x78\x01"  # the zlib header, in the first IDAT
    for strip in checked(strips, width, height, bands):
        h = strip.shape[0]
        for y in range(0, h, group):
            part = strip[y : y + group]
            n = part.shape[0]
            buf = np.empty((n, 1 + row_bytes), dtype=np.uint8)
            buf[:, 0] = 0  # filter byte 0: None
            raw = part.astype(">u2", copy=False) if depth == 16 else part
            buf[:, 1:] = raw.reshape(n, -1).view(np.uint8)
            data = memoryview(buf).cast("B")
            adler = zlib.adler32(data, adler)
            pieces: list = [head] if head else []
            head = b""
            for i in range(0, len(data), STORED_MAX):
                block = data[i : i + STORED_MAX]
                pieces += [struct.pack("<BHH", 0, len(block), len(block) ^ 0xFFFF), block]
            yield from _chunk_pieces(b"IDAT", pieces)
    final = [struct.pack("<BHH", 1, 0, 0xFFFF), struct.pack(">I", adler)]  # last, empty block; adler32
    if head:  # a canvas of no rows at all
        final.insert(0, head)
    yield from _chunk_pieces(b"IDAT", final)
    yield _chunk(b"IEND", b"")


def checked(strips: Iterable[np.ndarray], width: int, height: int, bands: int) -> Iterator[np.ndarray]:
    """``strips``, checked to tile a width × height × bands canvas exactly, top to bottom."""
    rows = 0
    for strip in strips:
        if strip.shape[1:] != (width, bands):
            raise RenderError(f"strip of shape {strip.shape} does not fit a {width}x{height}x{bands} canvas")
        rows += strip.shape[0]
        if rows > height:
            raise RenderError(f"renderer produced {rows} rows for a canvas {height} rows high")
        yield strip
    if rows != height:
        raise RenderError(f"renderer produced {rows} rows for a canvas {height} rows high")


def _chunk_pieces(kind: bytes, pieces: list) -> Iterator[bytes]:
    """A PNG chunk whose data is ``pieces`` (bytes-like), without joining them."""
    crc = zlib.crc32(kind)
    for p in pieces:
        crc = zlib.crc32(p, crc)
    yield struct.pack(">I", sum(len(p) for p in pieces)) + kind
    yield from pieces
    yield struct.pack(">I", crc)


class StripSource:
    """A ``pyvips.SourceCustom`` that reads from a chunk iterator.

    If the iterator raises, the error is kept and the stream ends early, which
    libvips (with ``fail_on="truncated"``) reports as a failed load.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = memoryview(b"")
        self.error: BaseException | None = None
        self.finished = False
        self.source = pyvips.SourceCustom()
        self.source.on_read(self._read)

    def _read(self, size: int) -> bytes:
        while not self._buf:  # (an empty read would mean the end to libvips)
            if self.finished or self.error is not None:
                return b""
            try:
                self._buf = memoryview(next(self._chunks)).cast("B")
            except StopIteration:
                self.finished = True
                return b""
            except BaseException as exc:  # the render failed or was cancelled
                self.error = exc
                return b""
        out = self._buf[:size]
        self._buf = self._buf[size:]
        return out  # pyvips copies it into libvips' buffer at once

    def image(self) -> pyvips.Image:
        return pyvips.Image.new_from_source(self.source, "", access="sequential", fail_on="truncated")


_END = object()


class StreamWriter:
    """A :class:`Writer` whose rows become a streamed libvips image that ``save(image)`` consumes on its own thread.

    Rows go into a short queue; the image reads them as an uncompressed PNG
    stream (``access="sequential"``, so only a few rows are in libvips at once),
    tagged with ``interpretation`` (``cmyk`` for 4 bands, ``rgb16``/``grey16``
    for 16 bits). ``save`` may write it once, anywhere (a file, a target).
    """

    def __init__(self, width: int, height: int, bands: int, bits: int, save: Callable[[pyvips.Image], None],
                 queue_size: int = 2) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._source = StripSource(png_stream(self._rows(), width, height, bands, bits))
        interpretation = "cmyk" if bands == 4 else ("rgb16" if bands >= 3 else "grey16") if bits == 16 else None

        def run() -> None:
            try:
                image = self._source.image()
                if interpretation:
                    image = image.copy(interpretation=interpretation)
                save(image)
            except BaseException as exc:
                self.error = exc

        self._thread = threading.Thread(target=run, name="bigcppn-save", daemon=True)
        self._thread.start()

    def _rows(self) -> Iterator[np.ndarray]:
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    raise RuntimeError("the render stopped before the picture was complete")
                continue
            if item is _END:
                return
            yield item

    def write(self, rows: np.ndarray) -> None:
        while True:
            self._raise_if_failed()
            try:
                self._queue.put(rows, timeout=0.1)
                return
            except queue.Full:
                continue

    def _raise_if_failed(self) -> None:
        if not self._thread.is_alive() and self.error is not None:
            raise self.error

    def close(self) -> None:
        while True:  # the end marker, unless the saver already gave up
            self._raise_if_failed()
            try:
                self._queue.put(_END, timeout=0.1)
                break
            except queue.Full:
                continue
        while self._thread.is_alive():
            self._thread.join(0.1)
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        self._stop.set()  # the stream ends short: libvips (fail_on="truncated") gives up
        self._thread.join()


def image_strips(image: pyvips.Image, rows: int = 256) -> Iterator[np.ndarray]:
    """``image`` (in memory) as strips of ``rows`` full-width rows, for a writer that takes rows."""
    for y in range(0, image.height, rows):
        part = image.crop(0, y, image.width, min(rows, image.height - y)).numpy()
        yield part.reshape(part.shape[0], image.width, image.bands)
