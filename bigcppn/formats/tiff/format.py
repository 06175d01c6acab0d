"""TIFF: a tiled pyramidal (Big)TIFF, or one flat tiled page; 8 or 16 bits; grey, RGB or CMYK.

Who writes it: bigcppn's :class:`~bigcppn.formats.tiff.writer.TiledTiffWriter` for deflate, LZW and JPEG tiles
and for CMYK (measured faster on every core than libvips' one-threaded tiffsave, same pixels and tags);
libvips for uncompressed tiles. On Ray the same writer takes blocks whose lower levels the actors encoded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...config import COMPRESSIONS, LOSSY_COMPRESSIONS
from ..base import Format, Writer, WriterSpec
from ..provenance import TIFF_TAGS

if TYPE_CHECKING:
    import pyvips

    from ...config import Config, OutputConfig

__all__ = ["TiffFormat", "TIFF", "PARALLEL_TIFF", "CLASSIC_TIFF_LIMIT", "fitted_tiff_tile"]

# TIFF compressions bigcppn's writer encodes on all cores instead of libvips (measured faster, same pixels).
PARALLEL_TIFF = ("deflate", "lzw", "jpeg")
UNCOMPRESSED = ("none",)
# Classic TIFF addresses 4 GiB; leave room for the directory and pyramid overhead.
CLASSIC_TIFF_LIMIT = 4 * 1024**3 - 64 * 1024**2
# Rough speed of each compression's writer, MPix/s: uncompressed through libvips, the rest a core each.
_RATE = {"none": (150.0, 0.0), "lzw": (0.0, 20.0), "deflate": (0.0, 39.0), "jpeg": (0.0, 55.0)}
# libvips tiffsave's options for each compression (deflate level 1: about twice as fast, a few % larger).
_TIFFSAVE = {"none": {}, "lzw": {"predictor": "horizontal"}, "deflate": {"predictor": "horizontal", "level": 1},
             "jpeg": {}}


def fitted_tiff_tile(tile: int, width: int, height: int) -> int:
    """``tile``, or a smaller one where it is far larger than the picture: at most 256 or the longest side
    (rounded up to 16). libvips 8.18 refuses to open a TIFF whose tiles are much larger than the picture
    ("tiff2vips: tile size out of range"; measured: 272-pixel tiles on 8×8 or 100×100, 784 on 300×300)."""
    longest = -(-max(width, height) // 16) * 16
    return min(tile, max(256, longest))


def bigtiff_needed(width: int, height: int, bands: int, depth: int) -> bool:
    return width * height * bands * (depth // 8) * 4 // 3 > CLASSIC_TIFF_LIMIT


@dataclass(frozen=True)
class TiffFormat(Format):
    def lossy(self, out: OutputConfig) -> bool:
        return out.compression in LOSSY_COMPRESSIONS

    def is_pyramid(self, out: OutputConfig) -> bool:
        return out.pyramid

    def own_writer(self, out: OutputConfig) -> bool:
        return out.compression in PARALLEL_TIFF or bool(out.cmyk)

    def uncompressed(self, out: OutputConfig) -> bool:
        return out.compression in UNCOMPRESSED

    def own_refusal(self, out: OutputConfig) -> str | None:
        if out.cmyk and self.lossy(out):
            return "CMYK TIFF takes deflate, lzw or no compression; leave out output.compression=jpeg, or write .jpg"
        return None

    def fitted(self, cfg: Config) -> Config:
        tile = fitted_tiff_tile(cfg.output.tiff_tile, cfg.canvas.width, cfg.canvas.height)
        return replace(cfg, output=replace(cfg.output, tiff_tile=tile))

    def writer_rate(self, out: OutputConfig, cores: int) -> float:
        fixed, per_core = _RATE[out.compression]
        return fixed + per_core * cores

    def writer_words(self, out: OutputConfig, cores: int) -> str:
        if self.own_writer(out):
            return f"bigcppn's TIFF writer, {out.compression} tiles on {cores} cores"
        return f"libvips, {'uncompressed' if self.uncompressed(out) else out.compression} tiles"

    def disk_for(self, estimated: int, out: OutputConfig) -> int:
        if self.is_pyramid(out) and self.own_writer(out):
            return estimated * 5 // 4  # lower pyramid levels spool beside the output until they are appended
        return estimated

    def level_sizes(self, width: int, height: int, out: OutputConfig) -> list[tuple[int, int]]:
        from .tile import pyramid_sizes

        return pyramid_sizes(width, height, out.tiff_tile) if out.pyramid else [(width, height)]

    def one_level(self, out: OutputConfig) -> OutputConfig:
        return replace(out, pyramid=False)

    def described(self, out: OutputConfig) -> str:
        return f".tif with {out.compression} tiles"

    def open(self, spec: WriterSpec) -> Writer:
        return self._writer(spec) if self.own_writer(spec.out) else super().open(spec)

    def open_encoded(self, spec: WriterSpec, levels: int) -> Writer:
        return self._writer(spec, levels)

    @staticmethod
    def _writer(s: WriterSpec, encoded_levels: int = 0) -> Writer:
        from .writer import TiffTags, TiledTiffWriter

        tags = TiffTags(dpi=s.dpi, description=s.description, xmp=s.xmp, icc=s.icc)
        return TiledTiffWriter(s.path, s.width, s.height, s.bands, s.out.depth, tile=s.out.tiff_tile,
                               compression=s.out.compression, quality=s.out.quality, tags=tags,
                               pyramid=s.out.pyramid, encoded_levels=encoded_levels)

    def vips_save(self, image: pyvips.Image, path: Path, out: OutputConfig, icc: dict[str, Any]) -> None:
        from .res import halve_reduced_resolutions

        opts = dict(tile=True, pyramid=out.pyramid, tile_width=out.tiff_tile, tile_height=out.tiff_tile,
                    resunit="inch", compression=out.compression,
                    bigtiff=bigtiff_needed(image.width, image.height, image.bands, out.depth),
                    **_TIFFSAVE[out.compression])
        if self.lossy(out):
            opts["Q"] = out.quality
        image.tiffsave(str(path), **opts, **icc)
        halve_reduced_resolutions(str(path))

    def blocks(self, out: OutputConfig):
        from .blocks import TIFF_BLOCKS

        return TIFF_BLOCKS if self.own_writer(out) else None


TIFF = TiffFormat("tiff", (".tif", ".tiff"), depths=(8, 16), encode_mpix_s=30.0, provenance=TIFF_TAGS,
                  compressions=COMPRESSIONS, cmyk=True,
                  appends=False)  # the header's first-IFD offset (and classic or BigTIFF) is written at the end
