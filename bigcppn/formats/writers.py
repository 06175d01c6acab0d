"""Writers: every output path behind one small protocol, chosen by the format table.

A :class:`Writer` takes full-width rows top to bottom (``write``), then either
finishes the file (``close``) or gives it up (``abort``, after which the caller
removes what was written). Three implement it:

* :class:`~bigcppn.formats.tiff.writer.TiledTiffWriter`: tiled pyramidal TIFF with
  deflate, LZW or JPEG tiles, encoded on every core;
* :class:`~bigcppn.formats.deepzoom.writer.DeepZoomWriter`: DeepZoom (``.dzi``/``.szi``) with
  JPEG tiles, on every core;
* :class:`VipsWriter`: everything else, through libvips: the rows become an
  uncompressed PNG stream (:func:`bigcppn.formats.target.png_stream`) that a libvips
  saver pulls on its own thread.

:func:`open_writer` asks the format's row in :data:`bigcppn.formats.registry.FORMATS`
who writes it (:meth:`~bigcppn.formats.registry.Format.writer`) and which libvips saver
(:attr:`~bigcppn.formats.registry.Format.saver`); a new format is a row there and, when
libvips writes it, a saver function here. Pyramid tiles go through
:class:`~bigcppn.pyramid.store.TileStore` instead (one file a tile).
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np
import pyvips

from ..config import Config, OutputConfig
from .deepzoom.writer import DeepZoomWriter
from .registry import CLASSIC_TIFF_LIMIT, Format
from .icc import cmyk_profile, icc_description, profile_for, profile_name
from .provenance import add_to_szi, config_text, embed, sidecar_json, sidecar_path, write_sidecar, xmp_packet
from .tiff.res import halve_reduced_resolutions
from .tiff.writer import TiffTags, TiledTiffWriter

__all__ = ["Writer", "StreamWriter", "VipsWriter", "open_writer", "vips_save", "write_image", "finish_metadata"]


class Writer(Protocol):
    """Rows in, a file out."""

    def write(self, rows: np.ndarray) -> None:
        """The next (rows, width, bands) rows, top to bottom."""

    def close(self) -> None:
        """Finish the file (raises if it could not be written)."""

    def abort(self) -> None:
        """Give up: stop any work in flight; what was written is the caller's to remove."""


def _bigtiff_needed(width: int, height: int, bands: int, depth: int) -> bool:
    return width * height * bands * (depth // 8) * 4 // 3 > CLASSIC_TIFF_LIMIT


# --------------------------------------------------------------------------- libvips savers, one per format row


def _tiffsave(image: pyvips.Image, path: Path, out: OutputConfig, icc: dict) -> None:
    opts = dict(tile=True, pyramid=out.pyramid, tile_width=out.tiff_tile, tile_height=out.tiff_tile, resunit="inch",
                compression=out.compression, bigtiff=_bigtiff_needed(image.width, image.height, image.bands,
                                                                      out.depth))
    if out.compression in ("deflate", "lzw"):
        opts["predictor"] = "horizontal"
    if out.compression == "deflate":
        opts["level"] = 1  # about twice as fast as the default level, a few % larger
    if out.compression == "jpeg":
        opts["Q"] = out.quality
    image.tiffsave(str(path), **opts, **icc)
    halve_reduced_resolutions(str(path))


def _pngsave(image: pyvips.Image, path: Path, out: OutputConfig, icc: dict) -> None:
    image.pngsave(str(path), compression=6, bitdepth=out.depth, **icc)


def _jpegsave(image: pyvips.Image, path: Path, out: OutputConfig, icc: dict) -> None:
    image.jpegsave(str(path), Q=out.quality, optimize_coding=True, **icc)


def _webpsave(image: pyvips.Image, path: Path, out: OutputConfig, icc: dict) -> None:
    image.webpsave(str(path), Q=out.quality, **icc)


def _dzsave(image: pyvips.Image, path: Path, out: OutputConfig, icc: dict) -> None:
    opts = dict(tile_size=out.dz_tile, overlap=out.dz_overlap, layout="dz")
    if out.dz_suffix == "jpeg":
        opts["Q"] = out.quality
    else:
        opts["suffix"] = f".{out.dz_suffix}"
    if path.suffix.lower() == ".szi":
        image.dzsave(str(path), container="szi", **opts)
    else:
        image.dzsave(str(path.with_suffix("")), **opts)  # dzsave adds .dzi and _files itself


SAVERS: dict[str, Callable[[pyvips.Image, Path, OutputConfig, dict], None]] = {
    "tiffsave": _tiffsave, "pngsave": _pngsave, "jpegsave": _jpegsave, "webpsave": _webpsave, "dzsave": _dzsave,
}


def vips_save(image: pyvips.Image, path: Path, fmt: Format, out: OutputConfig,
              dpi: float | None = None, description: str | None = None) -> None:
    """Save ``image`` with the libvips saver and options of ``fmt``'s row.

    ``dpi`` goes into the resolution tags (a TIFF's reduced levels then say
    their own, halved per level), ``description`` (the config) into the
    format's metadata; colour images embed libvips' sRGB profile, grey ones its
    sGrey (:mod:`bigcppn.formats.icc`).
    """
    if dpi:
        image = image.copy(xres=dpi / 25.4, yres=dpi / 25.4)
    if description:
        image = embed(image, fmt.metadata, description)
    profile = profile_name(image.bands, fmt.name, out.cmyk)
    SAVERS[fmt.saver](image, path, out, {"profile": profile} if profile else {})


# --------------------------------------------------------------------------- the writers


_END = object()


class StreamWriter:
    """A :class:`Writer` whose rows become a streamed libvips image that ``save(image)`` consumes on its own thread.

    Rows go into a short queue; the image reads them as an uncompressed PNG
    stream (``access="sequential"``, so only a few rows are in libvips at once),
    tagged with ``interpretation`` (``cmyk`` for 4 bands, ``rgb16``/``grey16``
    for 16 bits). ``save`` may write it once, anywhere (a file, a target).
    """

    def __init__(self, width: int, height: int, bands: int, bits: int, save: Callable[[pyvips.Image], None],
                 queue_size: int = 2) -> None:
        from .target import StripSource, png_stream

        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._source = StripSource(png_stream(self._rows(), width, height, bands, bits))
        interpretation = "cmyk" if bands == 4 else ("rgb16" if bands >= 3 else "grey16") if bits == 16 else None

        def run() -> None:
            try:
                image = self._source.image()
                if interpretation:
                    image = image.copy(interpretation=interpretation)
                save(image)
            except BaseException as exc:
                self.error = exc

        self._thread = threading.Thread(target=run, name="bigcppn-save", daemon=True)
        self._thread.start()

    def _rows(self) -> Iterator[np.ndarray]:
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    raise RuntimeError("the render stopped before the picture was complete")
                continue
            if item is _END:
                return
            yield item

    def write(self, rows: np.ndarray) -> None:
        while True:
            self._raise_if_failed()
            try:
                self._queue.put(rows, timeout=0.1)
                return
            except queue.Full:
                continue

    def _raise_if_failed(self) -> None:
        if not self._thread.is_alive() and self.error is not None:
            raise self.error

    def close(self) -> None:
        while True:  # the end marker, unless the saver already gave up
            self._raise_if_failed()
            try:
                self._queue.put(_END, timeout=0.1)
                break
            except queue.Full:
                continue
        while self._thread.is_alive():
            self._thread.join(0.1)
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        self._stop.set()  # the stream ends short: libvips (fail_on="truncated") gives up
        self._thread.join()


class VipsWriter(StreamWriter):
    """A :class:`Writer` for libvips: the streamed image saved to ``path`` with ``fmt``'s saver."""

    def __init__(self, path: Path, fmt: Format, width: int, height: int, bands: int, out: OutputConfig,
                 dpi: float | None = None, description: str | None = None, queue_size: int = 2) -> None:
        super().__init__(width, height, bands, out.depth,
                         lambda image: vips_save(image, path, fmt, out, dpi=dpi, description=description), queue_size)


def open_writer(path: Path, fmt: Format, width: int, height: int, bands: int, out: OutputConfig,
                config: Config | None = None, dpi: float | None = None, description: str | None = None,
                bleed: int | None = None, encoded_levels: int = 0) -> Writer:
    """The writer ``fmt``'s row names for these output settings, writing ``path`` and the config's metadata.

    ``dpi``, ``description`` and ``bleed`` (a PDF's trim box) default to the
    config's. With ``out.cmyk`` the writer takes CMYK samples, and a
    :class:`~bigcppn.formats.cmyk.CmykWriter` in front of it converts the rows.
    ``encoded_levels`` (bigcppn's TIFF and DeepZoom writers): the first levels
    come encoded, band by band (:meth:`~bigcppn.formats.tiff.writer.TiledTiffWriter.write_encoded`,
    :meth:`~bigcppn.formats.deepzoom.writer.DeepZoomWriter.write_encoded`); a CMYK TIFF's bands come converted.
    """
    dpi = dpi if dpi is not None else config.canvas.dpi if config else None
    description = description if description is not None else config_text(config) if config else None
    spec = WriterSpec(path, fmt, width, height, bands, out, config, dpi, description,
                      bleed if bleed is not None else config.canvas.bleed if config else 0)
    if encoded_levels:
        who = fmt.writer(out)
        if who == "tiff":
            return _open_tiff(replace(spec, bands=4) if out.cmyk else spec, encoded_levels)
        if who == "dz" and not out.cmyk:
            return _open_dz(spec, encoded_levels)
        raise ValueError("only bigcppn's TIFF and DeepZoom writers take encoded levels")
    opener = OPENERS[fmt.writer(out)]
    if not out.cmyk:
        return opener(spec)
    from .cmyk import CmykWriter

    return CmykWriter(opener(replace(spec, bands=4)), bands, out)


@dataclass(frozen=True)
class WriterSpec:
    """What a writer is opened with: where, which format, the image's shape, the settings and the metadata."""

    path: Path
    fmt: Format
    width: int
    height: int
    bands: int  # of the samples the writer takes: 4 for CMYK
    out: OutputConfig
    config: Config | None
    dpi: float | None
    description: str | None
    bleed: int = 0

    @property
    def xmp(self) -> bytes | None:
        return xmp_packet(self.description) if self.description else None

    @property
    def icc(self) -> bytes:
        """The profile of the samples written: sRGB, sGrey, or the CMYK output profile."""
        return cmyk_profile(self.out.cmyk) if self.bands == 4 else profile_for(self.bands)


def _open_tiff(s: WriterSpec, encoded_levels: int = 0) -> Writer:
    tags = TiffTags(dpi=s.dpi, description=s.description, xmp=s.xmp, icc=s.icc)
    return TiledTiffWriter(s.path, s.width, s.height, s.bands, s.out.depth, tile=s.out.tiff_tile,
                           compression=s.out.compression, quality=s.out.quality, tags=tags, pyramid=s.out.pyramid,
                           encoded_levels=encoded_levels)


def _open_dz(s: WriterSpec, encoded_levels: int = 0) -> Writer:
    extra = {}
    if s.config is not None and s.fmt.metadata == "zip":
        extra[f"{s.path.stem}.bigcppn.json"] = sidecar_json(s.config).encode()
    return DeepZoomWriter(s.path, s.width, s.height, s.bands, tile=s.out.dz_tile, overlap=s.out.dz_overlap,
                          quality=s.out.quality, extra=extra, encoded_levels=encoded_levels)


def _open_pdf(s: WriterSpec) -> Writer:
    from .pdf.writer import PdfPage, PdfWriter

    page = PdfPage(s.width, s.height, s.bleed, s.dpi or 72.0, s.out.crop_marks)
    icc = s.icc
    name = icc_description(icc) if s.bands != 3 else "sRGB IEC61966-2.1"
    return PdfWriter(s.path, s.width, s.height, s.bands, s.out.depth, page=page, icc=icc, intent_name=name,
                     compression=s.out.compression, quality=s.out.quality, xmp=s.xmp, title=s.path.name)


def _open_vips(s: WriterSpec) -> Writer:
    return VipsWriter(s.path, s.fmt, s.width, s.height, s.bands, s.out, dpi=s.dpi, description=s.description)


# Who writes what: the format table's Format.writer(out) names one of these.
OPENERS: dict[str, Callable[[WriterSpec], Writer]] = {
    "tiff": _open_tiff, "dz": _open_dz, "pdf": _open_pdf, "vips": _open_vips,
}


def finish_metadata(path: Path, fmt: Format, out: OutputConfig, config: Config | None) -> None:
    """The config where a finished output keeps it outside its pixels: a sidecar, or a zip entry libvips left out."""
    if config is None:
        return
    if fmt.metadata == "sidecar":
        write_sidecar(sidecar_path(path), config)
    elif fmt.metadata == "zip" and fmt.writer(out) == "vips":
        add_to_szi(path, config)


def _image_strips(image: pyvips.Image, rows: int = 256) -> Iterator[np.ndarray]:
    for y in range(0, image.height, rows):
        part = image.crop(0, y, image.width, min(rows, image.height - y)).numpy()
        yield part.reshape(part.shape[0], image.width, image.bands)


def write_image(image: pyvips.Image, path: Path, fmt: Format, out: OutputConfig,
                dpi: float | None = None, description: str | None = None) -> None:
    """Save ``image`` (in memory) as ``fmt``, by the writer a render of it would take."""
    if fmt.writer(out) == "vips":
        vips_save(image, path, fmt, out, dpi=dpi, description=description)
        return
    writer = open_writer(path, fmt, image.width, image.height, image.bands, out, dpi=dpi, description=description)
    try:
        for rows in _image_strips(image):
            writer.write(rows)
    except BaseException:
        writer.abort()
        raise
    writer.close()
