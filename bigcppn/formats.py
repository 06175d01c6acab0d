"""Output formats: what each extension means, and what each format can hold.

Pure knowledge, no pyvips: the command line checks a canvas against these
limits before anything is rendered, and the sink reads the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UserError

if TYPE_CHECKING:
    from .config import OutputConfig

__all__ = ["Format", "FORMATS", "format_for", "check_canvas", "estimate_output_bytes", "TIFF_COMPRESSIONS",
           "PARALLEL_TIFF", "PARALLEL_DZ"]

TIFF_COMPRESSIONS = ("none", "lzw", "deflate", "jpeg")
# Outputs bigcppn writes itself, on all cores, instead of libvips (measured faster, same pixels):
PARALLEL_TIFF = ("deflate", "lzw", "jpeg")  # TIFF compressions: the TIFF writer
PARALLEL_DZ = ("jpeg",)  # DeepZoom tile formats, .dzi or .szi: the DeepZoom writer

# Classic TIFF addresses 4 GiB; leave room for the directory and pyramid overhead.
CLASSIC_TIFF_LIMIT = 4 * 1024**3 - 64 * 1024**2


@dataclass(frozen=True)
class Format:
    name: str
    extensions: tuple[str, ...]
    max_side: int
    depths: tuple[int, ...]
    pyramid: bool = False
    # Rough bytes written per byte of raw pixels, for the disk-space check and `plan`.
    ratio_lossless: float = 0.4  # measured 0.1 for a smooth 32768² deflate TIFF; busy pictures compress less
    ratio_lossy: float = 0.12
    # Rough libvips encoding speed on one core of this class of CPU, MPix/s (for `plan`).
    encode_mpix_s: float = 50.0
    # What the output is on disk: one "file", a DeepZoom "folder" (NAME.dzi, NAME_files/ and
    # a config sidecar), or a "zip" (.szi, the config inside).
    layout: str = "file"
    # Where the config goes: "tiff" (ImageDescription + XMP), "png" (a text chunk + XMP),
    # "xmp", "sidecar" (NAME.bigcppn.json beside it) or "zip" (an entry of the zip).
    metadata: str = "xmp"
    # "always" (JPEG, WebP), "never" (PNG), or "option": the TIFF compression / DeepZoom tile format decides.
    lossy_rule: str = "never"
    # The libvips saver that writes it when libvips does (bigcppn.writers.SAVERS).
    saver: str = ""

    def lossy(self, out: "OutputConfig") -> bool:
        """Whether the pixels written differ from the rendered ones."""
        if self.lossy_rule != "option":
            return self.lossy_rule == "always"
        return out.compression == "jpeg" if self.name == "tiff" else out.dz_suffix != "png"

    def writer(self, out: "OutputConfig") -> str:
        """Who writes it: "tiff" or "dz" (bigcppn's writers, on every core) or "vips" (libvips via the PNG stream).

        Measured: deflate, LZW and JPEG TIFF tiles and JPEG DeepZoom tiles are
        faster on all cores than through libvips; uncompressed TIFF, PNG and WebP
        DeepZoom tiles and the single-image formats are not.
        """
        if self.name == "tiff" and out.compression in PARALLEL_TIFF:
            return "tiff"
        if self.pyramid and self.name != "tiff" and out.dz_suffix in PARALLEL_DZ:
            return "dz"
        return "vips"

    def produced(self, path: Path) -> list[Path]:
        """The paths a save to ``path`` creates, the one that marks it complete last."""
        if self.layout == "folder":
            return [path.with_name(path.stem + "_files"), path.with_name(path.stem + ".bigcppn.json"), path]
        return [path]

    def encode_rate(self, out: "OutputConfig", cores: int) -> float:
        """Rough encoding speed of the writer that writes it, MPix/s (measured on a CPU of this class)."""
        if self.name == "tiff":  # deflate, LZW, JPEG: bigcppn's TIFF writer on all cores
            return {"none": 150.0, "lzw": 20.0 * cores, "deflate": 39.0 * cores,
                    "jpeg": 55.0 * cores}[out.compression]
        if self.writer(out) == "dz":
            return 50.0 * cores  # bigcppn's DeepZoom writer, per core
        return self.encode_mpix_s

    def writer_text(self, out: "OutputConfig", cores: int) -> str:
        """Who writes it, in words (for ``plan``)."""
        who = self.writer(out)
        if who != "vips":
            kind, tiles = ("TIFF", out.compression) if who == "tiff" else ("DeepZoom", out.dz_suffix)
            return f"bigcppn's {kind} writer, {tiles} tiles on {cores} cores"
        if self.name == "tiff":
            return f"libvips, {'uncompressed' if out.compression == 'none' else out.compression} tiles"
        return "libvips"

    def uncompressed(self, out: "OutputConfig") -> bool:
        return self.name == "tiff" and out.compression == "none"


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("tiff", (".tif", ".tiff"), 2**31 - 1, (8, 16), pyramid=True, encode_mpix_s=30.0,
               metadata="tiff", lossy_rule="option", saver="tiffsave"),
        Format("png", (".png",), 2**31 - 1, (8, 16), encode_mpix_s=60.0, metadata="png", saver="pngsave"),
        Format("jpeg", (".jpg", ".jpeg"), 65535, (8,), encode_mpix_s=100.0, lossy_rule="always",
               saver="jpegsave"),
        Format("webp", (".webp",), 16383, (8,), encode_mpix_s=10.0, lossy_rule="always", saver="webpsave"),
        Format("dz", (".dzi",), 2**31 - 1, (8,), pyramid=True, encode_mpix_s=60.0, layout="folder",
               metadata="sidecar", lossy_rule="option", saver="dzsave"),
        Format("szi", (".szi",), 2**31 - 1, (8,), pyramid=True, encode_mpix_s=60.0, layout="zip",
               metadata="zip", lossy_rule="option", saver="dzsave"),
    )
}

_BY_EXTENSION = {ext: f for f in FORMATS.values() for ext in f.extensions}


def format_for(path: str | Path) -> Format:
    """The output format named by a path's extension."""
    ext = Path(path).suffix.lower()
    try:
        return _BY_EXTENSION[ext]
    except KeyError:
        known = ", ".join(sorted(_BY_EXTENSION))
        what = f"extension '{ext}'" if ext else "no extension"
        raise UserError(f"output '{path}' has {what}; use one of {known}") from None


def check_canvas(fmt: Format, width: int, height: int, depth: int) -> None:
    """Refuse, before rendering, a canvas or bit depth the format cannot hold."""
    if max(width, height) > fmt.max_side:
        raise UserError(
            f"{fmt.name.upper()} holds at most {fmt.max_side} px a side, the canvas is {width}x{height}; "
            f"choose a smaller size or write .tif / .dzi"
        )
    if depth not in fmt.depths:
        raise UserError(
            f"{fmt.name.upper()} cannot hold {depth}-bit samples; use --depth 8, or write .tif / .png for 16 bits"
        )


def estimate_output_bytes(fmt: Format, width: int, height: int, bands: int, out: "OutputConfig") -> int:
    """A rough size of the written file (pyramid levels included)."""
    raw = width * height * bands * (out.depth // 8)
    ratio = 1.02 if fmt.uncompressed(out) else fmt.ratio_lossy if fmt.lossy(out) else fmt.ratio_lossless
    pyramid = 4 / 3 if fmt.pyramid else 1.0
    return int(raw * ratio * pyramid) + 64 * 1024
