"""Tile codecs: how one tile image of a pyramid is encoded (JPEG, WebP, PNG), and what it is called and served as.

A :class:`TileCodec` owns, for one tile format: the bytes of a tile (its
:meth:`~TileCodec.encode`, without metadata, as libvips' ``dzsave`` writes
tiles), its file suffix, its MIME type and whether it is lossy (takes a
quality). Callers look a codec up by its name (``--format``,
``output.dz_suffix``) with :func:`tile_codec` and ask it; a new tile format is
one :func:`register_codec` call. A leaf: pyvips is imported only to encode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyvips

__all__ = ["TileCodec", "CODECS", "register_codec", "tile_codec"]


@dataclass(frozen=True)
class TileCodec:
    """One tile format.

    ``name`` is what ``--format`` and ``output.dz_suffix`` say, and the suffix
    DeepZoom pyramids give their tiles (``.jpeg``, as libvips' ``dzsave``);
    ``suffix`` is the usual file suffix, which the other layouts use
    (``.jpg``); ``saver`` the libvips saver (``jpegsave`` writes through
    ``jpegsave_buffer``) and ``options`` its settings; ``lossy``: whether it
    takes a quality (libvips' ``Q``).
    """

    name: str
    suffix: str
    mime: str
    saver: str
    lossy: bool
    options: tuple[tuple[str, object], ...] = ()

    def encode(self, img: "pyvips.Image", quality: int) -> bytes:
        """The image as this format's bytes, without metadata (``quality``: lossy formats only)."""
        quality_option = {"Q": quality} if self.lossy else {}
        return getattr(img, f"{self.saver}_buffer")(**quality_option, **dict(self.options), keep="none")


CODECS: dict[str, TileCodec] = {}


def register_codec(codec: TileCodec) -> TileCodec:
    """Make ``codec`` a tile format (``--format NAME``); returns it."""
    CODECS[codec.name] = codec
    return codec


def tile_codec(name: str) -> TileCodec:
    """The codec called ``name``; ValueError naming the known ones when there is none."""
    try:
        return CODECS[name]
    except KeyError:
        raise ValueError(f"unknown tile format '{name}'; choose from {', '.join(CODECS)}") from None


register_codec(TileCodec("jpeg", "jpg", "image/jpeg", "jpegsave", lossy=True))
register_codec(TileCodec("webp", "webp", "image/webp", "webpsave", lossy=True))
register_codec(TileCodec("png", "png", "image/png", "pngsave", lossy=False, options=(("compression", 6),)))
