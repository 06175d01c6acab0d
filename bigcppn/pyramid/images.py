"""A pyramid's images as files: tiles encoded by the pyramid's codec, and the whole picture at the layout's sizes.

Every runner writes through these (this machine's threads,
:mod:`bigcppn.pyramid.local`; Ray's actors, :mod:`bigcppn.cluster.tasks`),
so a tile is the same bytes whoever renders it. Each file is written
atomically (:class:`~bigcppn.pyramid.store.TileStore`).
"""

from __future__ import annotations

import numpy as np
import pyvips

from ..formats.tiles import TileCodec
from ..network.backend import Backend
from .grid import Pyramid
from .levels import LevelTile
from .store import TileStore

__all__ = ["encode_tile", "write_tile", "write_full_images"]


def encode_tile(arr: np.ndarray, codec: TileCodec, quality: int, pad: tuple[int, int] | None = None) -> bytes:
    """One tile's pixels as ``codec``'s bytes (no metadata, as dzsave writes them).

    ``pad`` grows the image to that size with white, as Google tiles are.
    """
    bands = arr.shape[2]
    img = pyvips.Image.new_from_array(np.ascontiguousarray(arr), interpretation="srgb" if bands >= 3 else "b-w")
    if pad is not None and (pad[0] != img.width or pad[1] != img.height):
        img = img.embed(0, 0, pad[0], pad[1], extend="background", background=[255] * bands)
    return codec.encode(img, quality)


def write_tile(store: TileStore, t: LevelTile, arr: np.ndarray, codec: TileCodec, quality: int) -> None:
    """Encode one tile's pixels and write it atomically (Google tiles padded to their image size)."""
    pad = (t.image_width, t.image_height) if (t.image_width, t.image_height) != (t.width, t.height) else None
    store.write(t.path, encode_tile(arr, codec, quality, pad), codec.mime)


def write_full_images(p: Pyramid, backend: Backend, store: TileStore, *, supersample: int, quality: int) -> None:
    """The whole picture at the sizes the layout names besides its tiles (IIIF: full/max, each of ``sizes``).

    Each size is rendered once, straight from the network at that size (``supersample``²
    samples a pixel; the base size is the render's own pixels), streamed in bands of
    rows into the encoder, so memory follows the band, not the size. A name that
    already exists (a tile of the same size, or an earlier run) is copied, not rendered.
    """
    by_size: dict[tuple[int, int], list[str]] = {}
    for path, w, h in p.layout.full_images(p):
        by_size.setdefault((w, h), []).append(path)
    store.flush()  # the tiles still uploading to a bucket count as there
    there = {q for paths in by_size.values() for q in paths if store.exists(q)}  # one check a name
    for (w, h), paths in by_size.items():
        missing = [q for q in paths if q not in there]
        if not missing:
            continue
        have = next((q for q in paths if q in there), None)
        data = store.read(have) if have else None
        data = data if data is not None else _render_full(p, backend, w, h, supersample, quality)
        for q in missing:
            store.write(q, data, p.codec.mime)


def _render_full(p: Pyramid, backend: Backend, width: int, height: int, supersample: int, quality: int) -> bytes:
    from ..formats.vips import StripSource, png_stream

    k = 1 if (width, height) == (p.width, p.height) else supersample
    rows = max(1, backend.job_samples(1 << 22) // (width * k * k))
    strips = (backend.render_scaled(width, height, y, min(rows, height - y), k) for y in range(0, height, rows))
    source = StripSource(png_stream(strips, width, height, backend.bands, 8))
    try:
        return p.codec.encode(source.image(), quality)
    except pyvips.Error:
        if source.error is not None:
            raise source.error from None
        raise
