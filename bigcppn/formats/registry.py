"""The output formats, found by extension: one :class:`~bigcppn.formats.base.Format` a format.

Pure knowledge, no pyvips: the command line checks a canvas against these
limits before anything is rendered, and the writers ask the same objects.
A new format is a :class:`~bigcppn.formats.base.Format` subclass in a module
of its own, registered here (or by a plug-in) with :func:`register_format`,
as Pillow's ``register_save`` and xarray's backend entry points do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..core.limits import check_output_name
from ..errors import UserError
from .base import Format
from .deepzoom.format import DZI, SZI
from .pdf.format import PDF
from .raster import JPEG, PNG, WEBP
from .tiff.format import TIFF

if TYPE_CHECKING:
    from ..config import Config, OutputConfig

__all__ = ["Format", "FORMATS", "register_format", "format_for", "is_folder", "check_canvas", "check_output",
           "estimate_output_bytes", "read_config_from"]

FORMATS: dict[str, Format] = {}
_BY_EXTENSION: dict[str, Format] = {}


def register_format(fmt: Format) -> Format:
    """Make ``fmt`` the format of its extensions (a later registration of an extension wins)."""
    FORMATS[fmt.name] = fmt
    for ext in fmt.extensions:
        _BY_EXTENSION[ext] = fmt
    return fmt


for _fmt in (TIFF, PNG, JPEG, WEBP, DZI, SZI, PDF):
    register_format(_fmt)


def format_for(path: str | Path) -> Format:
    """The output format named by a path's extension; UserError for a name the file system cannot encode."""
    check_output_name(path)
    if is_folder(path):
        raise UserError(f"output '{path}' is a folder; give a file name in it, e.g. "
                        f"-o {Path(path) / 'poster.tif'} (the extension picks the format)")
    ext = Path(path).suffix.lower()
    try:
        return _BY_EXTENSION[ext]
    except KeyError:
        from .video.registry import clip_format

        known = ", ".join(sorted(_BY_EXTENSION))
        what = f"extension '{ext}'" if ext else "no extension"
        if clip_format(path) is not None:  # .mp4, .webm, .gif: a clip, not a still
            raise UserError(f"output '{path}' is a clip: bigcppn animate writes it (bigcppn plan with "
                            f"--seconds and --fps plans it); a still "
                            f"is one of {known}") from None
        raise UserError(f"output '{path}' has {what}; use one of {known}") from None


def is_folder(path: str | Path) -> bool:
    """Whether ``path`` is an existing folder (False for a name the file system cannot even look up)."""
    try:
        return Path(path).is_dir()
    except (OSError, ValueError):
        return False


def check_output(fmt: Format, out: OutputConfig, width: int, height: int, dpi: float) -> None:
    """Refuse, before rendering, a canvas, page or setting the format cannot hold."""
    check_canvas(fmt, width, height, out.depth)
    why = fmt.refusal(out)
    if why:
        raise UserError(why)
    if fmt.max_inches and max(width, height) / dpi > fmt.max_inches:
        raise UserError(
            f"{fmt.label} pages are at most {fmt.max_inches:g} in ({fmt.max_inches * 25.4:g} mm) a side; "
            f"{max(width, height)} px at {dpi:g} dpi is {max(width, height) / dpi:.1f} in: raise --dpi or write .tif"
        )


def check_canvas(fmt: Format, width: int, height: int, depth: int) -> None:
    """Refuse, before rendering, a canvas or bit depth the format cannot hold."""
    if max(width, height) > fmt.max_side:
        raise UserError(
            f"{fmt.label} holds at most {fmt.max_side} px a side, the canvas is {width}x{height}; "
            f"choose a smaller size or write .tif / .dzi"
        )
    if depth not in fmt.depths:
        raise UserError(
            f"{fmt.label} cannot hold {depth}-bit samples; use --depth 8, or write .tif / .png for 16 bits"
        )


def estimate_output_bytes(fmt: Format, width: int, height: int, bands: int, out: OutputConfig) -> int:
    """A rough size of the written file (pyramid levels included)."""
    return fmt.estimate_bytes(width, height, bands, out)


def read_config_from(path: str | Path) -> Config:
    """The config an earlier bigcppn output was made with, read where its format keeps it (``--from``)."""
    from .provenance import read_with

    fmt = _BY_EXTENSION.get(Path(path).suffix.lower())
    return read_with(path, fmt.provenance if fmt else None)
