"""The single-image formats libvips writes from the row stream: PNG, JPEG and WebP."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import Format
from .provenance import PNG_TEXT, XMP

if TYPE_CHECKING:
    import pyvips

    from ..config import OutputConfig

__all__ = ["PngFormat", "JpegFormat", "WebpFormat", "PNG", "JPEG", "WEBP"]


@dataclass(frozen=True)
class PngFormat(Format):
    def vips_save(self, image: pyvips.Image, path: Path, out: OutputConfig, icc: dict[str, Any]) -> None:
        image.pngsave(str(path), compression=6, bitdepth=out.depth, **icc)


@dataclass(frozen=True)
class JpegFormat(Format):
    def lossy(self, out: OutputConfig) -> bool:
        return True

    def vips_save(self, image: pyvips.Image, path: Path, out: OutputConfig, icc: dict[str, Any]) -> None:
        image.jpegsave(str(path), Q=out.quality, optimize_coding=True, **icc)


@dataclass(frozen=True)
class WebpFormat(Format):
    def lossy(self, out: OutputConfig) -> bool:
        return True

    def vips_save(self, image: pyvips.Image, path: Path, out: OutputConfig, icc: dict[str, Any]) -> None:
        image.webpsave(str(path), Q=out.quality, **icc)


PNG = PngFormat("png", (".png",), depths=(8, 16), encode_mpix_s=60.0, provenance=PNG_TEXT)
JPEG = JpegFormat("jpeg", (".jpg", ".jpeg"), max_side=65535, encode_mpix_s=100.0, provenance=XMP, cmyk=True)
WEBP = WebpFormat("webp", (".webp",), max_side=16383, encode_mpix_s=10.0, provenance=XMP, grey_profile=False)
