"""Output formats: what each extension means, and what each format can hold.

Pure knowledge, no pyvips: the command line checks a canvas against these
limits before anything is rendered, and the sink reads the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .limits import check_output_name

__all__ = ["Format", "FORMATS", "format_for", "check_canvas", "estimate_output_bytes", "TIFF_COMPRESSIONS"]

TIFF_COMPRESSIONS = ("none", "lzw", "deflate", "jpeg")

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


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("tiff", (".tif", ".tiff"), 2**31 - 1, (8, 16), pyramid=True, encode_mpix_s=30.0),
        Format("png", (".png",), 2**31 - 1, (8, 16), encode_mpix_s=60.0),
        Format("jpeg", (".jpg", ".jpeg"), 65535, (8,), encode_mpix_s=100.0),
        Format("webp", (".webp",), 16383, (8,), encode_mpix_s=10.0),
        Format("dz", (".dzi",), 2**31 - 1, (8,), pyramid=True, encode_mpix_s=60.0),
        Format("szi", (".szi",), 2**31 - 1, (8,), pyramid=True, encode_mpix_s=60.0),
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


def estimate_output_bytes(fmt: Format, width: int, height: int, bands: int, depth: int, lossy: bool,
                          uncompressed: bool = False) -> int:
    """A rough size of the written file (pyramid levels included); ``uncompressed`` for TIFF without compression."""
    raw = width * height * bands * (depth // 8)
    ratio = 1.02 if uncompressed else fmt.ratio_lossy if lossy else fmt.ratio_lossless
    pyramid = 4 / 3 if fmt.pyramid else 1.0
    return int(raw * ratio * pyramid) + 64 * 1024
