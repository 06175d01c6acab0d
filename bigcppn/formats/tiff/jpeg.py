"""JPEG tiles as libvips' ``tiffsave`` (through libtiff) writes them: one JPEGTables, abbreviated tiles.

What libvips 8.18 writes for ``compression="jpeg"`` (measured with tifffile):

- ``JPEGTables`` (tag 347) in every directory: SOI, the luma and chroma
  quantisation tables at the quality, the four standard Huffman tables, EOI
  (574 bytes), whatever the bands and quality;
- each tile an abbreviated stream: SOI, SOF0, SOS, the entropy-coded data,
  EOI; no tables, no JFIF marker; the full tile size even at the edges;
- colour below quality 90: Photometric YCbCr (6) with 4:2:0 chroma
  subsampling, libjpeg converting the RGB samples (the subsampling is
  libtiff's default 2×2, so no ``YCbCrSubSampling`` tag is written, nor
  ``ReferenceBlackWhite``); from 90 up, RGB samples (Photometric RGB, an
  Adobe APP14 marker in each tile, no subsampling); grey: one component.

imagecodecs' libjpeg-turbo writes only complete streams, so each tile is
encoded whole and its table segments (and the JFIF marker) are cut out: the
tables depend only on the quality, and the entropy-coded data are those of
libtiff's own encoder, so tiles come out byte-identical to libvips' (checked
from quality 10 to 95, grey and colour).
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["ycbcr", "jpeg_tables", "abbreviate", "tile_encoder"]

SUBSAMPLE_BELOW = 90  # libvips subsamples chroma (YCbCr 4:2:0) below this quality
_SOS, _DQT, _DHT, _APP0 = 0xDA, 0xDB, 0xC4, 0xE0


def ycbcr(quality: int, bands: int) -> bool:
    """Whether tiles are YCbCr 4:2:0 (Photometric 6) rather than RGB or grey samples."""
    return bands == 3 and quality < SUBSAMPLE_BELOW


def _segments(stream: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """The marker segments of a JPEG stream's header, and where its SOS segment starts."""
    if stream[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG stream")
    out, i = [], 2
    while stream[i] == 0xFF:
        marker = stream[i + 1]
        if marker == _SOS:
            return out, i
        length = stream[i + 2] << 8 | stream[i + 3]
        out.append((marker, stream[i : i + 2 + length]))
        i += 2 + length
    raise ValueError("a JPEG stream without a scan")


def abbreviate(stream: bytes) -> bytes:
    """``stream`` without its tables and JFIF marker: a tile for a TIFF that has JPEGTables."""
    segments, sos = _segments(stream)
    keep = [seg for marker, seg in segments if marker not in (_DQT, _DHT, _APP0)]
    return b"".join([b"\xff\xd8", *keep, memoryview(stream)[sos:]])  # one copy of the scan


@functools.cache
def jpeg_tables(quality: int) -> bytes:
    """The JPEGTables libtiff writes at ``quality``: both quantisation tables, the four Huffman tables."""
    import imagecodecs

    probe = imagecodecs.jpeg8_encode(np.zeros((16, 16, 3), np.uint8), level=quality, subsampling="420")
    segments, _ = _segments(probe)
    return b"\xff\xd8" + b"".join(seg for marker, seg in segments if marker in (_DQT, _DHT)) + b"\xff\xd9"


def tile_encoder(quality: int, bands: int):
    """A function from one (tile, tile, bands) uint8 tile to its abbreviated JPEG stream (run in the pool)."""
    import imagecodecs

    if bands == 1:
        def encode(a: np.ndarray) -> bytes:
            return abbreviate(imagecodecs.jpeg8_encode(a[:, :, 0], level=quality))
    elif ycbcr(quality, bands):
        def encode(a: np.ndarray) -> bytes:
            return abbreviate(imagecodecs.jpeg8_encode(a, level=quality, subsampling="420"))
    else:
        def encode(a: np.ndarray) -> bytes:
            return abbreviate(imagecodecs.jpeg8_encode(a, level=quality, outcolorspace="RGB"))
    return encode
