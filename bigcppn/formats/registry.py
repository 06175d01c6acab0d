"""Output formats: what each extension means, and what each format can hold.

Pure knowledge, no pyvips: the command line checks a canvas against these
limits before anything is rendered, and the sink reads the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError
from ..core.limits import check_output_name

if TYPE_CHECKING:
    from ..config import OutputConfig

__all__ = ["Format", "FORMATS", "format_for", "check_canvas", "check_output", "estimate_output_bytes", "TIFF_COMPRESSIONS",
           "PARALLEL_TIFF", "PARALLEL_DZ"]

TIFF_COMPRESSIONS = ("none", "lzw", "deflate", "jpeg")
# Outputs bigcppn writes itself, on all cores, instead of libvips (measured faster, same pixels):
PARALLEL_TIFF = ("deflate", "lzw", "jpeg")  # TIFF compressions: the TIFF writer
PARALLEL_DZ = ("jpeg",)  # DeepZoom tile formats, .dzi or .szi: the DeepZoom writer

# libvips' icc_transform sRGB -> CMYK, MPix/s a core (measured 5.4 MPix/s on this loaded 2-core CPU).
CMYK_MPIX_S = 2.7
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
    # "always" (JPEG, WebP), "never" (PNG), "compression" (lossy with output.compression=jpeg: TIFF, PDF)
    # or "tiles" (lossy unless the DeepZoom tiles are PNG).
    lossy_rule: str = "never"
    # The libvips saver that writes it when libvips does (bigcppn.formats.writers.SAVERS).
    saver: str = ""
    # The output.compression values it takes (empty: it has no such choice and ignores the key).
    compressions: tuple[str, ...] = ()
    # Whether output.pyramid=false (--flat) can make it one image instead of a pyramid.
    flat: bool = False
    # Whether it holds CMYK (--cmyk), and crop marks (--crop-marks).
    cmyk: bool = False
    crop_marks: bool = False
    # A writer that always writes it, whatever the settings ("" : see writer()).
    always_writer: str = ""
    # The largest page side in inches (PDF: 14400 units of 1/72 in), 0 for none.
    max_inches: float = 0.0

    def lossy(self, out: "OutputConfig") -> bool:
        """Whether the pixels written differ from the rendered ones."""
        if self.lossy_rule == "compression":
            return out.compression == "jpeg"
        if self.lossy_rule == "tiles":
            return out.dz_suffix != "png"
        return self.lossy_rule == "always"

    def writer(self, out: "OutputConfig") -> str:
        """Who writes it: "tiff", "dz" or "pdf" (bigcppn's writers) or "vips" (libvips via the PNG stream).

        Measured: deflate, LZW and JPEG TIFF tiles and JPEG DeepZoom tiles are
        faster on all cores than through libvips; uncompressed TIFF, PNG and WebP
        DeepZoom tiles and the single-image formats are not. CMYK TIFF always
        takes bigcppn's TIFF writer (Photometric Separated, InkSet CMYK).
        """
        if self.always_writer:
            return self.always_writer
        if self.name == "tiff" and (out.compression in PARALLEL_TIFF or out.cmyk):
            return "tiff"
        if self.pyramid and self.name != "tiff" and out.dz_suffix in PARALLEL_DZ:
            return "dz"
        return "vips"

    def is_pyramid(self, out: "OutputConfig") -> bool:
        """Whether the output holds reduced levels too."""
        return self.pyramid and (out.pyramid or not self.flat)

    def refusal(self, out: "OutputConfig") -> str | None:
        """Why these output settings cannot be written as this format (one line), or None."""
        name = self.name.upper()
        if self.compressions and out.compression not in self.compressions:
            return (f"{name} takes output.compression {', '.join(self.compressions[:-1])} or "
                    f"{self.compressions[-1]}, not {out.compression}")
        if self.compressions and out.compression == "jpeg" and out.depth == 16:
            return f"JPEG-compressed {name} holds 8 bits; use --set output.compression=deflate for 16 bits"
        if not out.pyramid and self.pyramid and not self.flat:
            return f"--flat (output.pyramid=false) makes a one-page TIFF; a {name} is always a pyramid"
        if out.cmyk and not self.cmyk:
            return f"{name} cannot hold CMYK; write .tif, .jpg or .pdf for --cmyk"
        if out.cmyk and self.name == "tiff" and out.compression == "jpeg":
            return "CMYK TIFF takes deflate, lzw or no compression; leave out output.compression=jpeg, or write .jpg"
        if out.crop_marks and not self.crop_marks:
            return f"--crop-marks are for PDF; {name} has no room for them (write .pdf)"
        return None

    def produced(self, path: Path) -> list[Path]:
        """The paths a save to ``path`` creates, the one that marks it complete last."""
        if self.layout == "folder":
            return [path.with_name(path.stem + "_files"), path.with_name(path.stem + ".bigcppn.json"), path]
        return [path]

    def _encode_rate(self, out: "OutputConfig", cores: int) -> float:
        """Rough encoding speed of the writer that writes it, MPix/s (measured on a CPU of this class)."""
        if self.name == "tiff":  # deflate, LZW, JPEG: bigcppn's TIFF writer on all cores
            return {"none": 150.0, "lzw": 20.0 * cores, "deflate": 39.0 * cores,
                    "jpeg": 55.0 * cores}[out.compression]
        if self.writer(out) == "dz":
            return 50.0 * cores  # bigcppn's DeepZoom writer, per core
        if self.writer(out) == "pdf":  # zlib level 1 on every core; libjpeg on one
            return {"none": 300.0, "deflate": 11.0 * cores, "jpeg": 100.0}[out.compression]
        return self.encode_mpix_s

    def encode_rate(self, out: "OutputConfig", cores: int) -> float:
        """Rough speed of writing it, MPix/s: the writer, and the CMYK conversion before it (measured)."""
        rate = self._encode_rate(out, cores)
        return 1 / (1 / rate + 1 / (CMYK_MPIX_S * cores)) if out.cmyk else rate

    def writer_text(self, out: "OutputConfig", cores: int) -> str:
        """Who writes it, in words (for ``plan``)."""
        if out.cmyk:
            profile = "libvips' built-in CMYK profile" if out.cmyk == "cmyk" else out.cmyk
            return f"{self._writer_text(out, cores)}, in CMYK through {profile} ({out.intent})"
        return self._writer_text(out, cores)

    def _writer_text(self, out: "OutputConfig", cores: int) -> str:
        who = self.writer(out)
        if who == "pdf":
            return f"bigcppn's PDF writer, {out.compression} image"
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
               metadata="tiff", lossy_rule="compression", saver="tiffsave", compressions=TIFF_COMPRESSIONS,
               flat=True, cmyk=True),
        Format("png", (".png",), 2**31 - 1, (8, 16), encode_mpix_s=60.0, metadata="png", saver="pngsave"),
        Format("jpeg", (".jpg", ".jpeg"), 65535, (8,), encode_mpix_s=100.0, lossy_rule="always",
               saver="jpegsave", cmyk=True),
        Format("webp", (".webp",), 16383, (8,), encode_mpix_s=10.0, lossy_rule="always", saver="webpsave"),
        Format("dz", (".dzi",), 2**31 - 1, (8,), pyramid=True, encode_mpix_s=60.0, layout="folder",
               metadata="sidecar", lossy_rule="tiles", saver="dzsave"),
        Format("szi", (".szi",), 2**31 - 1, (8,), pyramid=True, encode_mpix_s=60.0, layout="zip",
               metadata="zip", lossy_rule="tiles", saver="dzsave"),
        # One page, the picture as one image XObject (bigcppn.formats.pdf.writer); Flate, or DCT with compression=jpeg.
        Format("pdf", (".pdf",), 2**31 - 1, (8, 16), metadata="pdf", lossy_rule="compression",
               compressions=("deflate", "jpeg", "none"), cmyk=True, crop_marks=True, always_writer="pdf",
               max_inches=200.0),
    )
}

_BY_EXTENSION = {ext: f for f in FORMATS.values() for ext in f.extensions}


def format_for(path: str | Path) -> Format:
    """The output format named by a path's extension; UserError for a name the file system cannot encode."""
    check_output_name(path)
    ext = Path(path).suffix.lower()
    try:
        return _BY_EXTENSION[ext]
    except KeyError:
        known = ", ".join(sorted(_BY_EXTENSION))
        what = f"extension '{ext}'" if ext else "no extension"
        raise UserError(f"output '{path}' has {what}; use one of {known}") from None


def check_output(fmt: Format, out: "OutputConfig", width: int, height: int, dpi: float) -> None:
    """Refuse, before rendering, a canvas, page or setting the format cannot hold."""
    check_canvas(fmt, width, height, out.depth)
    why = fmt.refusal(out)
    if why:
        raise UserError(why)
    if fmt.max_inches and max(width, height) / dpi > fmt.max_inches:
        raise UserError(
            f"{fmt.name.upper()} pages are at most {fmt.max_inches:g} in ({fmt.max_inches * 25.4:g} mm) a side; "
            f"{max(width, height)} px at {dpi:g} dpi is {max(width, height) / dpi:.1f} in: raise --dpi or write .tif"
        )


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
    raw = width * height * (4 if out.cmyk else bands) * (out.depth // 8)
    ratio = 1.02 if fmt.uncompressed(out) else fmt.ratio_lossy if fmt.lossy(out) else fmt.ratio_lossless
    pyramid = 4 / 3 if fmt.is_pyramid(out) else 1.0
    return int(raw * ratio * pyramid) + 64 * 1024
