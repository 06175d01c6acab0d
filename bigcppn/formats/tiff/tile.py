"""One TIFF tile as :class:`~bigcppn.formats.tiff.writer.TiledTiffWriter` writes it: predictor, codec, 2×2 mean.

Shared by the writer and by the band encoder a cluster worker runs
(:mod:`bigcppn.formats.tiff.blocks`), so both make the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .jpeg import tile_encoder

__all__ = ["CODECS", "TiffCodec", "tiff_codec", "DEFLATE_LEVEL", "pyramid_sizes", "tile_codec", "encode_tile"]

# zlib-ng level 1, the codec and level libvips uses (same sizes): 9 ms per MPix of
# 8-bit RGB here; libdeflate level 1 makes files 45% smaller but takes 15.6 ms.
DEFLATE_LEVEL = 1


def _raw(quality: int, bands: int) -> Callable[[np.ndarray], bytes]:
    return lambda a: a.tobytes()


def _deflate(quality: int, bands: int) -> Callable[[np.ndarray], bytes]:
    import imagecodecs

    return lambda a: imagecodecs.zlibng_encode(a, level=DEFLATE_LEVEL)


def _lzw(quality: int, bands: int) -> Callable[[np.ndarray], bytes]:
    import imagecodecs

    return imagecodecs.lzw_encode


@dataclass(frozen=True)
class TiffCodec:
    """One TIFF compression as bigcppn writes it: the Compression tag, the predictor, the tile encoder.

    ``jpeg``: abbreviated JPEG streams whose tables go in JPEGTables, as libvips writes them (8 bits, no CMYK).
    """

    name: str
    tag: int
    predictor: bool
    make: Callable[[int, int], Callable[[np.ndarray], bytes]]  # (quality, bands) -> encode(tile) -> bytes
    jpeg: bool = False


CODECS = {c.name: c for c in (
    TiffCodec("none", 1, False, _raw),
    TiffCodec("lzw", 5, True, _lzw),
    TiffCodec("deflate", 8, True, _deflate),
    TiffCodec("jpeg", 7, False, tile_encoder, jpeg=True),
)}


def tiff_codec(name: str) -> TiffCodec:
    try:
        return CODECS[name]
    except KeyError:
        raise ValueError(f"no parallel TIFF codec {name!r}; use one of {', '.join(CODECS)}") from None


def pyramid_sizes(width: int, height: int, tile: int) -> list[tuple[int, int]]:
    """The (width, height) of each level, as libvips makes them."""
    sizes = [(width, height)]
    while (width > tile or height > tile) and width >= 2 and height >= 2:
        width, height = width // 2, height // 2
        sizes.append((width, height))
    return sizes


def tile_codec(codec: str, quality: int, bands: int) -> Callable[[np.ndarray], bytes]:
    """The encoder of one tile of ``codec`` (ValueError for a compression this writer does not take)."""
    return tiff_codec(codec).make(quality, bands)


def encode_tile(tile: np.ndarray, encode, predictor: bool, target: np.ndarray | None, xe: int, ye: int) -> bytes:
    """Compress one tile; if a level follows, write its 2×2 mean into ``target`` (run in the pool).

    ``target`` is this tile's quarter of a tile of the next level; its columns
    from ``xe`` and rows from ``ye`` on lie past that level's edges and are
    zeroed, as libvips leaves them (a JPEG block straddling the edge sees them).
    """
    if predictor:  # TIFF predictor 2: each sample minus the same sample of the pixel to its left
        d = np.empty_like(tile)
        d[:, 0] = tile[:, 0]
        np.subtract(tile[:, 1:], tile[:, :-1], out=d[:, 1:])
    else:
        d = tile
    data = encode(d)
    if target is not None:
        h, w, c = tile.shape
        q = tile.reshape(h // 2, 2, w // 2, 2, c)
        s = np.add(q[:, 0], q[:, 1], dtype=np.uint16 if tile.dtype == np.uint8 else np.uint32)  # row pairs
        s = np.add(s[:, :, 0], s[:, :, 1])  # then column pairs
        s += 2
        s >>= 2
        target[...] = s
        target[:, max(xe, 0) :] = 0
        target[max(ye, 0) :] = 0
    return data
