"""Opening a writer: the format decides which (:meth:`bigcppn.formats.base.Format.open`).

A :class:`~bigcppn.formats.base.Writer` takes full-width rows top to bottom
(``write``), then either finishes the file (``close``) or gives it up
(``abort``, after which the caller removes what was written). Four implement it:

* :class:`~bigcppn.formats.tiff.writer.TiledTiffWriter`: tiled pyramidal TIFF
  with deflate, LZW or JPEG tiles, encoded on every core;
* :class:`~bigcppn.formats.deepzoom.writer.DeepZoomWriter`: DeepZoom
  (``.dzi``/``.szi``) with JPEG tiles, on every core;
* :class:`~bigcppn.formats.pdf.writer.PdfWriter`: a one-page PDF;
* :class:`~bigcppn.formats.vips.StreamWriter`: everything else, through
  libvips, which pulls the rows as an uncompressed PNG stream on its own thread.

With ``--cmyk`` a :class:`~bigcppn.formats.cmyk.CmykWriter` in front of the
writer converts the rows. Pyramid tiles go through
:class:`~bigcppn.pyramid.store.TileStore` instead (one file a tile).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .base import Format, Writer, WriterSpec
from .provenance import config_text

if TYPE_CHECKING:
    import pyvips

    from ..config import Config, OutputConfig

__all__ = ["open_writer", "write_image", "finish_metadata"]


def open_writer(path: Path, fmt: Format, width: int, height: int, bands: int, out: OutputConfig,
                config: Config | None = None, dpi: float | None = None, description: str | None = None,
                bleed: int | None = None, encoded_levels: int = 0) -> Writer:
    """The writer ``fmt`` takes for these output settings, writing ``path`` and the config's metadata.

    ``dpi``, ``description`` and ``bleed`` (a PDF's trim box) default to the
    config's. With ``out.cmyk`` the writer takes CMYK samples, and a
    :class:`~bigcppn.formats.cmyk.CmykWriter` in front of it converts the rows.
    ``encoded_levels`` (bigcppn's TIFF and DeepZoom writers, on Ray): the first
    levels come encoded, block by block; a CMYK TIFF's blocks come converted.
    """
    dpi = dpi if dpi is not None else config.canvas.dpi if config else None
    description = description if description is not None else config_text(config) if config else None
    spec = WriterSpec(path, fmt, width, height, 4 if out.cmyk else bands, out, config, dpi, description,
                      bleed if bleed is not None else config.canvas.bleed if config else 0)
    if encoded_levels:
        return fmt.open_encoded(spec, encoded_levels)
    if not out.cmyk:
        return fmt.open(spec)
    from .cmyk import CmykWriter

    return CmykWriter(fmt.open(spec), bands, out)


def finish_metadata(path: Path, fmt: Format, out: OutputConfig, config: Config | None) -> None:
    """The config where a finished output keeps it outside its pixels: a sidecar, or a zip entry libvips left out."""
    fmt.finish(path, out, config)


def write_image(image: pyvips.Image, path: Path, fmt: Format, out: OutputConfig,
                dpi: float | None = None, description: str | None = None) -> None:
    """Save ``image`` (in memory) as ``fmt``, by the writer a render of it would take."""
    if not fmt.own_writer(out):
        fmt.save(image, path, out, dpi=dpi, description=description)
        return
    from .vips import image_strips

    writer = open_writer(path, fmt, image.width, image.height, image.bands, out, dpi=dpi, description=description)
    try:
        for rows in image_strips(image):
            writer.write(rows)
    except BaseException:
        writer.abort()
        raise
    writer.close()
