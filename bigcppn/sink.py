"""The sink: stream strips into libvips and write the output file atomically.

pyvips has no "generate pixels by callback" API, so strips reach libvips as an
uncompressed PNG stream: a PNG header, then each strip as IDAT chunks holding
stored (level 0) deflate blocks, then IEND. libvips loads it with
``access="sequential"`` and pulls rows as its saver needs them, so only a few
strips are ever in memory, whatever the canvas size. ``fail_on="truncated"``
turns a stream that ends early (a render error, Ctrl-C) into a libvips error
instead of a silently padded picture.

Tiled TIFF with deflate, LZW or JPEG tiles, and DeepZoom pyramids of JPEG
tiles (``.dzi`` or ``.szi``), skip libvips and its one-threaded PNG decoder: the strips go to
:class:`bigcppn.tiffwriter.TiledTiffWriter` or
:class:`bigcppn.dzwriter.DeepZoomWriter`, which encode tiles on every core
(libvips compresses deflate and LZW TIFF on one) and write what libvips would
(same pixels, levels and tags). Uncompressed TIFF and PNG/WebP DeepZoom tiles
stay with libvips.

The saver writes to a hidden temporary sibling of the output, which is renamed
over the final name only when everything succeeded.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pyvips

try:
    import fcntl
except ImportError:  # not POSIX: no lock, the PID alone decides
    fcntl = None

from .config import Config, OutputConfig
from .errors import RenderError
from .formats import Format
from .icc import profile_for, profile_name, srgb_profile  # noqa: F401 (srgb_profile: sink's API before icc.py)
from .metadata import add_to_szi, config_text, embed, sidecar_json, sidecar_path, write_sidecar, xmp_packet
from .dzwriter import DeepZoomWriter
from .tiffres import halve_reduced_resolutions
from .tiffwriter import TiffTags, TiledTiffWriter

__all__ = ["png_stream", "StripSource", "OutputTarget", "write_image", "vips_save", "save_strips", "own_writer",
           "write_own"]

# The lock a running save holds inside its temporary folder, and the open ones of this process.
LOCK_NAME = ".lock"
_LOCKS: dict[Path, int] = {}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# IDAT payloads up to this size; libvips reads the stream in small pieces anyway.
IDAT_MAX = 1 << 20
STORED_MAX = 65535  # the most a stored deflate block holds


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def png_stream(strips: Iterable[np.ndarray], width: int, height: int, bands: int, depth: int) -> Iterator[bytes]:
    """An uncompressed PNG of (rows, width, bands) uint8/uint16 strips, as a sequence of byte pieces.

    Each strip is framed a few rows at a time (about IDAT_MAX bytes, plus a
    filter byte per row): the zlib stream is written by hand as stored deflate
    blocks, and the pieces (chunk headers, block headers, views of the rows,
    checksums) are handed out without joining them, so each pixel is copied
    once here. The stream holds about one megabyte beyond the strip itself,
    however wide.
    """
    color_type = {1: 0, 3: 2, 4: 6}[bands]
    yield PNG_SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0))
    row_bytes = width * bands * (depth // 8)
    group = max(1, IDAT_MAX // (row_bytes + 1))
    adler = 1
    head = b"\x78\x01"  # the zlib header, in the first IDAT
    for strip in checked(strips, width, height, bands):
        h = strip.shape[0]
        for y in range(0, h, group):
            part = strip[y : y + group]
            n = part.shape[0]
            buf = np.empty((n, 1 + row_bytes), dtype=np.uint8)
            buf[:, 0] = 0  # filter byte 0: None
            raw = part.astype(">u2", copy=False) if depth == 16 else part
            buf[:, 1:] = raw.reshape(n, -1).view(np.uint8)
            data = memoryview(buf).cast("B")
            adler = zlib.adler32(data, adler)
            pieces: list = [head] if head else []
            head = b""
            for i in range(0, len(data), STORED_MAX):
                block = data[i : i + STORED_MAX]
                pieces += [struct.pack("<BHH", 0, len(block), len(block) ^ 0xFFFF), block]
            yield from _chunk_pieces(b"IDAT", pieces)
    final = [struct.pack("<BHH", 1, 0, 0xFFFF), struct.pack(">I", adler)]  # last, empty block; adler32
    if head:  # a canvas of no rows at all
        final.insert(0, head)
    yield from _chunk_pieces(b"IDAT", final)
    yield _chunk(b"IEND", b"")


def checked(strips: Iterable[np.ndarray], width: int, height: int, bands: int) -> Iterator[np.ndarray]:
    """``strips``, checked to tile a width × height × bands canvas exactly, top to bottom."""
    rows = 0
    for strip in strips:
        if strip.shape[1:] != (width, bands):
            raise RenderError(f"strip of shape {strip.shape} does not fit a {width}x{height}x{bands} canvas")
        rows += strip.shape[0]
        if rows > height:
            raise RenderError(f"renderer produced {rows} rows for a canvas {height} rows high")
        yield strip
    if rows != height:
        raise RenderError(f"renderer produced {rows} rows for a canvas {height} rows high")


def _chunk_pieces(kind: bytes, pieces: list) -> Iterator[bytes]:
    """A PNG chunk whose data is ``pieces`` (bytes-like), without joining them."""
    crc = zlib.crc32(kind)
    for p in pieces:
        crc = zlib.crc32(p, crc)
    yield struct.pack(">I", sum(len(p) for p in pieces)) + kind
    yield from pieces
    yield struct.pack(">I", crc)


class StripSource:
    """A ``pyvips.SourceCustom`` that reads from a chunk iterator.

    If the iterator raises, the error is kept and the stream ends early, which
    libvips (with ``fail_on="truncated"``) reports as a failed load.
    """

    def __init__(self, chunks: Iterator[bytes], on_rows: Callable[[int], None] | None = None) -> None:
        self._chunks = chunks
        self._buf = memoryview(b"")
        self.error: BaseException | None = None
        self.finished = False
        self.source = pyvips.SourceCustom()
        self.source.on_read(self._read)

    def _read(self, size: int) -> bytes:
        while not self._buf:  # (an empty read would mean the end to libvips)
            if self.finished or self.error is not None:
                return b""
            try:
                self._buf = memoryview(next(self._chunks)).cast("B")
            except StopIteration:
                self.finished = True
                return b""
            except BaseException as exc:  # the render failed or was cancelled
                self.error = exc
                return b""
        out = self._buf[:size]
        self._buf = self._buf[size:]
        return out  # pyvips copies it into libvips' buffer at once

    def image(self) -> pyvips.Image:
        return pyvips.Image.new_from_source(self.source, "", access="sequential", fail_on="truncated")


@dataclass(frozen=True)
class OutputTarget:
    """The final output path, and the hidden temporary folder beside it that is written first.

    The saver writes ``.NAME.partial-PID/NAME`` (a DeepZoom pyramid also its
    ``STEM_files/``); only a complete save is moved over the final name, and
    the temporary folder is removed whatever happens.
    """

    path: Path
    fmt: Format

    @property
    def temp_dir(self) -> Path:
        return self.path.with_name(f".{self.path.name}.partial-{os.getpid()}")

    @property
    def temp(self) -> Path:
        return self.temp_dir / self.path.name

    def produced(self, p: Path) -> list[Path]:
        """The paths a save to ``p`` creates, the one that marks completion last.

        A DeepZoom pyramid has its tile folder and a config sidecar besides the
        ``.dzi``; a ``.szi`` carries its config inside.
        """
        if self.fmt.name == "dz":
            return [p.with_name(p.stem + "_files"), sidecar_path(p), p]
        return [p]

    def probe(self) -> None:
        """Check that the directory exists and is writable, by creating the temporary folder."""
        parent = self.path.parent
        if not parent.is_dir():
            raise OSError(f"output directory '{parent}' does not exist; create it first")
        final = self.produced(self.path)
        for p in final:
            wants_dir = p.name.endswith("_files")
            if p.exists() and p.is_dir() != wants_dir:
                what = "a directory" if p.is_dir() else "a file"
                raise OSError(f"'{p}' is {what} in the way of the output; move it or choose another -o")
        try:
            self.temp_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise OSError(f"cannot write in output directory '{parent}': {exc.strerror}; choose another -o") from None
        finally:
            self.cleanup()

    def prepare(self) -> None:
        """Create the temporary folder, holding a lock in it until :meth:`cleanup`."""
        self.sweep()
        self.temp_dir.mkdir(exist_ok=True)
        if fcntl is not None and self.temp_dir not in _LOCKS:
            fd = os.open(self.temp_dir / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _LOCKS[self.temp_dir] = fd

    def sweep(self) -> list[Path]:
        """Remove this output's temporary folders left by killed runs; return them.

        A folder is stale when its process is gone from this machine and nobody
        holds its lock (a render on another host sharing the folder holds it).
        Anything that cannot be removed is left: this is housekeeping.
        """
        prefix = f".{self.path.name}.partial-"
        gone = []
        for p in self.path.parent.glob(f"{glob.escape(prefix)}*"):
            pid = p.name[len(prefix):]
            if not re.fullmatch(r"[0-9]{1,9}", pid) or int(pid) == os.getpid() or _alive(int(pid)):
                continue
            if not _unlocked(p):
                continue
            try:
                _remove(p)
            except OSError:
                continue
            gone.append(p)
        return gone

    def cleanup(self) -> None:
        fd = _LOCKS.pop(self.temp_dir, None)
        if fd is not None:
            os.close(fd)
        _remove(self.temp_dir)

    def commit(self) -> None:
        """Move the finished output over the final name (a .dzi after its tiles)."""
        for src, dst in zip(self.produced(self.temp), self.produced(self.path)):
            if src == sidecar_path(self.temp) and not src.exists():
                continue  # saved without a config: no sidecar
            if dst.is_dir() and not dst.is_symlink():  # an old pyramid's tiles: aside, removed with the temp
                os.replace(dst, self.temp_dir / f".old-{dst.name}")
            os.replace(src, dst)
        self.cleanup()


def _unlocked(folder: Path) -> bool:
    """Whether no process holds the lock in ``folder`` (true for folders without one)."""
    if fcntl is None:
        return True
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _remove(p: Path) -> None:
    try:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    except FileNotFoundError:
        pass


def _bigtiff_needed(width: int, height: int, bands: int, depth: int) -> bool:
    from .formats import CLASSIC_TIFF_LIMIT

    return width * height * bands * (depth // 8) * 4 // 3 > CLASSIC_TIFF_LIMIT


def own_writer(fmt: Format, out: OutputConfig) -> bool:
    """Whether bigcppn's own writer, not libvips, writes this output (the format table decides)."""
    return fmt.writer(out) != "vips"


def write_own(strips: Iterable[np.ndarray], path: Path, fmt: Format, width: int, height: int, bands: int,
               out: OutputConfig, dpi: float | None, description: str | None, config: Config | None = None) -> None:
    if fmt.name == "tiff":
        write_tiff_strips(strips, path, width, height, bands, out, dpi=dpi, description=description)
    else:
        write_dz_strips(strips, path, width, height, bands, out, config=config)


def write_dz_strips(strips: Iterable[np.ndarray], path: Path, width: int, height: int, bands: int,
                    out: OutputConfig, config: Config | None = None) -> None:
    """A DeepZoom pyramid (``path`` a .dzi, or a .szi zip carrying ``config``) from strips, on all cores."""
    extra = {}
    if config is not None and path.suffix.lower() == ".szi":
        extra[f"{path.stem}.bigcppn.json"] = sidecar_json(config).encode()
    with DeepZoomWriter(path, width, height, bands, tile=out.dz_tile, overlap=out.dz_overlap,
                        quality=out.quality, extra=extra) as writer:
        for strip in strips:
            writer.write(strip)


def write_tiff_strips(strips: Iterable[np.ndarray], path: Path, width: int, height: int, bands: int,
                      out: OutputConfig, dpi: float | None = None, description: str | None = None) -> None:
    """A tiled pyramidal TIFF from strips, tiles compressed on all cores (deflate, LZW or JPEG)."""
    tags = TiffTags(dpi=dpi, description=description,
                    xmp=xmp_packet(description) if description else None,
                    icc=profile_for(bands))
    with TiledTiffWriter(path, width, height, bands, out.depth, tile=out.tiff_tile,
                         compression=out.compression, quality=out.quality, tags=tags) as writer:
        for strip in strips:
            writer.write(strip)


def _image_strips(image: pyvips.Image, rows: int = 256) -> Iterator[np.ndarray]:
    for y in range(0, image.height, rows):
        part = image.crop(0, y, image.width, min(rows, image.height - y)).numpy()
        yield part.reshape(part.shape[0], image.width, image.bands)


def write_image(image: pyvips.Image, path: Path, fmt: Format, out: OutputConfig,
                dpi: float | None = None, description: str | None = None) -> None:
    """Save ``image`` (in memory or streamed) as ``fmt``, by the same path a render takes."""
    if own_writer(fmt, out):
        write_own(_image_strips(image), path, fmt, image.width, image.height, image.bands, out,
                   dpi=dpi, description=description)
    else:
        vips_save(image, path, fmt, out, dpi=dpi, description=description)


def vips_save(image: pyvips.Image, path: Path, fmt: Format, out: OutputConfig,
              dpi: float | None = None, description: str | None = None) -> None:
    """Save ``image`` with the libvips saver and options for ``fmt``.

    ``dpi`` goes into the resolution tags (a TIFF's reduced levels then say
    their own, halved per level), ``description`` (the config) into the
    format's metadata; colour images embed libvips' sRGB profile, grey ones its
    sGrey (:mod:`bigcppn.icc`).
    """
    name = str(path)
    if dpi:
        image = image.copy(xres=dpi / 25.4, yres=dpi / 25.4)
    if description:
        image = embed(image, fmt.name, description)
    profile = profile_name(image.bands, fmt.name)
    icc = {"profile": profile} if profile else {}
    if fmt.name == "tiff":
        opts = dict(tile=True, pyramid=True, tile_width=out.tiff_tile, tile_height=out.tiff_tile, resunit="inch",
                    compression=out.compression,
                    bigtiff=_bigtiff_needed(image.width, image.height, image.bands, out.depth))
        if out.compression in ("deflate", "lzw"):
            opts["predictor"] = "horizontal"
        if out.compression == "deflate":
            opts["level"] = 1  # about twice as fast as the default level, a few % larger
        if out.compression == "jpeg":
            opts["Q"] = out.quality
        image.tiffsave(name, **opts, **icc)
        halve_reduced_resolutions(name)
    elif fmt.name == "png":
        image.pngsave(name, compression=6, bitdepth=out.depth, **icc)
    elif fmt.name == "jpeg":
        image.jpegsave(name, Q=out.quality, optimize_coding=True, **icc)
    elif fmt.name == "webp":
        image.webpsave(name, Q=out.quality, **icc)
    elif fmt.name in ("dz", "szi"):
        opts = dict(tile_size=out.dz_tile, overlap=out.dz_overlap, layout="dz")
        if out.dz_suffix == "jpeg":
            opts["Q"] = out.quality
        else:
            opts["suffix"] = f".{out.dz_suffix}"
        if fmt.name == "szi":
            opts["container"] = "szi"
        if fmt.name == "dz":
            name = str(path.with_suffix(""))  # dzsave adds .dzi and _files itself
        image.dzsave(name, **opts)
    else:  # pragma: no cover - the format table and this function go together
        raise RenderError(f"no saver for format {fmt.name}")


def save_strips(
    strips: Iterable[np.ndarray],
    target: OutputTarget,
    width: int,
    height: int,
    bands: int,
    out: OutputConfig,
    poll: Callable[[], None] | None = None,
    cancel: Callable[[], None] | None = None,
    config: Config | None = None,
) -> None:
    """Stream ``strips`` into ``target`` (through libvips, or the parallel TIFF writer); atomic.

    The save runs on a worker thread; the calling thread waits, calling ``poll``
    about ten times a second (progress), so Ctrl-C reaches it promptly. On any
    failure, KeyboardInterrupt included, ``cancel`` stops the producer of
    ``strips``, the temporary output is removed, and the exception propagates.
    """
    source_error: list[BaseException] = []
    failure: list[BaseException] = []
    dpi = config.canvas.dpi if config else None
    description = config_text(config) if config else None

    def guarded() -> Iterator[np.ndarray]:
        try:
            yield from checked(strips, width, height, bands)
        except GeneratorExit:  # closed by its consumer: not the source's failure
            raise
        except BaseException as exc:  # the render failed or was cancelled
            source_error.append(exc)
            raise

    def run() -> None:
        try:
            if own_writer(target.fmt, out):
                write_own(guarded(), target.temp, target.fmt, width, height, bands, out, dpi, description, config)
            else:
                src = StripSource(png_stream(guarded(), width, height, bands, out.depth))
                image = src.image()
                if out.depth == 16:
                    image = image.copy(interpretation="rgb16" if bands >= 3 else "grey16")
                vips_save(image, target.temp, target.fmt, out, dpi=dpi, description=description)
                if config is not None and target.fmt.name == "szi":
                    add_to_szi(target.temp, config)
            if config is not None and target.fmt.name == "dz":
                write_sidecar(sidecar_path(target.temp), config)
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run, name="bigcppn-save", daemon=True)
    try:
        target.prepare()
        worker.start()
        while worker.is_alive():
            worker.join(0.1)
            if poll is not None:
                poll()
        if source_error:
            raise source_error[0]
        if failure:
            exc = failure[0]
            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
            raise RenderError(f"writing {target.path} failed: {lines[-1] if lines else repr(exc)}") from exc
        target.commit()
    except BaseException:
        # Ctrl-C or failure: stop the producer (the caller's strip iterator sees
        # the exception through src), wait for libvips to give up, remove the temp.
        if cancel is not None:
            cancel()
        if worker.is_alive():
            worker.join()
        target.cleanup()
        raise
