"""A print-ready PDF: one page, the picture as one image, written as the rows arrive.

The page is the picture with its bleed, at the render's DPI, placed so that the
``TrimBox`` is the paper to a hundredth of a point (:class:`PdfPage`):
``MediaBox`` and ``BleedBox`` hold the whole picture, ``TrimBox`` the picture
less the bleed on every side. With crop marks the
``MediaBox`` grows by a margin on every side, and the marks are vector lines in
the content stream, on the trim lines, outside the bleed. The catalog carries a
``GTS_PDFX`` output intent with the ICC profile embedded (sRGB, sGrey, or the
CMYK output profile), the image names the same profile as its colour space
(``ICCBased``; CMYK images are ``DeviceCMYK``, already separated for that
intent), and the config goes in an XMP metadata stream, with the Info
dictionary's twins (:mod:`~bigcppn.formats.pdf.pdfx`; PDF/X-4's keys, dates and a
printer output intent of its own, object 10, when it claims PDF/X-4).

The file is written in order, never held: the header, catalog, page, metadata,
profile and content stream first, then the image XObject, whose stream grows
strip by strip and whose ``/Length`` is an indirect object written after it;
then the info dictionary, the cross-reference table and the trailer.

Image streams: ``FlateDecode`` (default; lossless) with the PNG "Sub" predictor
on every row (``/Predictor 15``, the horizontal difference that TIFF's
predictor 2 also is), compressed in pieces on every core, each piece its own
``zlib.compressobj`` raw deflate flushed to a byte boundary, so the pieces
concatenate into one zlib stream (adler-32s combined in order); ``DCTDecode``
with ``output.compression=jpeg`` (libvips' JPEG encoder pulling the rows as a
stream; CMYK JPEG is stored inverted, as Adobe's, so the image says
``/Decode [1 0 1 0 1 0 1 0]``); or no filter at all (``none``). 16-bit samples
(``--depth 16``) are written as 16 bits per component, big-endian (PDF 1.5);
JPEG holds 8.
"""

from __future__ import annotations

import collections
import hashlib
import struct
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ...core.system import available_cores
from .pdfx import PdfMeta, info_dict, xmp_metadata

__all__ = ["PdfPage", "PdfWriter", "adler32_combine", "MARK_GAP", "MARK_LENGTH", "MARK_WIDTH", "MARGIN_IN"]

# Crop marks, in points: they start MARK_GAP outside the bleed and are MARK_LENGTH long (InDesign's
# defaults are 6 pt and 18 pt), 0.25 pt wide; the page grows by MARGIN_IN on every side, rounded to
# whole pixels at the picture's DPI so that the picture stays on the pixel grid.
MARK_GAP = 6.0
MARK_LENGTH = 18.0
MARK_WIDTH = 0.25
MARGIN_IN = 0.5
PIECE_BYTES = 1 << 21  # rows are compressed in pieces of about this many bytes
# zlib level 1, as the TIFF writers: measured on a rendered 4000x256 strip, 11.5 MPix/s a core and
# 22% of the raw size, against 3.3 MPix/s and 16% at the default level 6.
DEFLATE_LEVEL = 1
_ADLER_BASE = 65521


def _num(v: float) -> str:
    """A PDF number: at most four decimals, no trailing zeros."""
    text = f"{v:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _box(x0: float, y0: float, x1: float, y1: float) -> str:
    return "[" + " ".join(_num(v) for v in (x0, y0, x1, y1)) + "]"


def _text(s: str) -> str:
    """A PDF literal string (ASCII)."""
    s = s.encode("ascii", "replace").decode("ascii")
    return "(" + s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


@dataclass(frozen=True)
class PdfPage:
    """The page: a picture of ``width`` x ``height`` px with ``bleed`` px a side, at ``dpi``; crop marks or not.

    The picture is placed so that the TrimBox is the paper the trimmed pixels were rounded from
    (:func:`~bigcppn.core.units.trim_inches`: A4 is 595.276 x 841.890 pt, not 2480 x 3508 px at 300 dpi,
    595.2 x 841.92 pt): a point on each axis is ``72 / dpi`` scaled by at most half a pixel over the side
    (0.02% on A4 at 300 dpi), the bleed those pixels at that scale.
    """

    width: int
    height: int
    bleed: int = 0
    dpi: float = 300.0
    marks: bool = False

    def _scale(self, pixels: int) -> float:
        """Points a pixel along an axis of ``pixels`` (bleed included)."""
        from ...core.units import trim_inches

        trim = pixels - 2 * self.bleed
        return trim_inches(trim, self.dpi) * 72.0 / trim

    @property
    def sx(self) -> float:
        return self._scale(self.width)

    @property
    def sy(self) -> float:
        return self._scale(self.height)

    def pt(self, px: float) -> float:
        return px / self.dpi * 72.0

    @property
    def margin(self) -> tuple[float, float]:
        """Points around the bleed box (room for the crop marks), x and y: half an inch, in whole pixels."""
        px = round(MARGIN_IN * self.dpi) if self.marks else 0
        return px * self.sx, px * self.sy

    @property
    def media_box(self) -> tuple[float, float, float, float]:
        mx, my = self.margin
        return 0.0, 0.0, self.width * self.sx + 2 * mx, self.height * self.sy + 2 * my

    @property
    def bleed_box(self) -> tuple[float, float, float, float]:
        mx, my = self.margin
        return mx, my, mx + self.width * self.sx, my + self.height * self.sy

    @property
    def trim_box(self) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = self.bleed_box
        bx, by = self.bleed * self.sx, self.bleed * self.sy
        return x0 + bx, y0 + by, x1 - bx, y1 - by

    def mark_lines(self) -> list[tuple[float, float, float, float]]:
        """The crop marks, (x0, y0, x1, y1) each: two at each corner of the trim, outside the bleed."""
        if not self.marks:
            return []
        bx0, by0, bx1, by1 = self.bleed_box
        tx0, ty0, tx1, ty1 = self.trim_box
        lines = []
        for y in (ty0, ty1):  # horizontal marks on the trim's bottom and top lines, left and right of the bleed
            lines += [(bx0 - MARK_GAP - MARK_LENGTH, y, bx0 - MARK_GAP, y),
                      (bx1 + MARK_GAP, y, bx1 + MARK_GAP + MARK_LENGTH, y)]
        for x in (tx0, tx1):  # vertical marks on the trim's left and right lines, below and above the bleed
            lines += [(x, by0 - MARK_GAP - MARK_LENGTH, x, by0 - MARK_GAP),
                      (x, by1 + MARK_GAP, x, by1 + MARK_GAP + MARK_LENGTH)]
        return lines

    def content(self, cmyk: bool) -> bytes:
        """The page's content stream: the image over the bleed box, then the marks in registration black."""
        x0, y0, x1, y1 = self.bleed_box
        ops = ["q", f"{_num(x1 - x0)} 0 0 {_num(y1 - y0)} {_num(x0)} {_num(y0)} cm", "/Im0 Do", "Q"]
        lines = self.mark_lines()
        if lines:
            ops += ["q", f"{_num(MARK_WIDTH)} w", "1 1 1 1 K" if cmyk else "0 G"]
            ops += [f"{_num(a)} {_num(b)} m {_num(c)} {_num(d)} l S" for a, b, c, d in lines]
            ops.append("Q")
        return ("\n".join(ops) + "\n").encode("ascii")


def adler32_combine(a1: int, a2: int, len2: int) -> int:
    """The Adler-32 of two pieces from each one's and the second's length (zlib's adler32_combine)."""
    rem = len2 % _ADLER_BASE
    sum1 = a1 & 0xFFFF
    sum2 = (rem * sum1) % _ADLER_BASE
    sum1 += (a2 & 0xFFFF) + _ADLER_BASE - 1
    sum2 += (a1 >> 16) + (a2 >> 16) + _ADLER_BASE - rem
    return (sum1 % _ADLER_BASE) | ((sum2 % _ADLER_BASE) << 16)


def _piece(rows: np.ndarray, level: int, predict: bool, final: bool) -> tuple[bytes, int, int]:
    """Rows as predicted, raw-deflated bytes flushed to a byte boundary; and the raw bytes' adler-32 and length."""
    if rows.dtype != np.uint8:
        rows = rows.astype(">u2")
    n, w, c = rows.shape
    raw = np.ascontiguousarray(rows).view(np.uint8).reshape(n, -1)
    if predict:  # PNG filter 1 (Sub): each byte minus the same byte of the pixel to its left, a tag byte a row
        bpp = raw.shape[1] // w
        buf = np.empty((n, 1 + raw.shape[1]), np.uint8)
        buf[:, 0] = 1
        buf[:, 1 : 1 + bpp] = raw[:, :bpp]
        np.subtract(raw[:, bpp:], raw[:, :-bpp], out=buf[:, 1 + bpp :])
        raw = buf
    data = memoryview(raw).cast("B")
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)
    return out, zlib.adler32(data), len(data)


class _Deflate:
    """One zlib stream made of pieces compressed on a thread pool, written to ``f`` in order."""

    def __init__(self, f: BinaryIO, level: int, predict: bool, workers: int) -> None:
        self.f, self.level, self.predict = f, level, predict
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="bigcppn-pdf")
        self.pending: collections.deque[Future] = collections.deque()
        self.keep = 2 * workers
        self.adler = 1
        f.write(b"\x78\x01")  # zlib header: deflate, 32 KiB window

    def feed(self, rows: np.ndarray) -> None:
        if not rows.shape[0]:
            return  # an empty write: nothing to compress (rows[0] would not exist)
        per = max(1, PIECE_BYTES // max(1, rows[0].nbytes))
        for y in range(0, rows.shape[0], per):
            self.pending.append(self.pool.submit(_piece, rows[y : y + per], self.level, self.predict, False))
            self._drain(self.keep)

    def _drain(self, keep: int) -> None:
        while len(self.pending) > keep:
            data, adler, n = self.pending.popleft().result()
            self.adler = adler32_combine(self.adler, adler, n)
            self.f.write(data)

    def finish(self) -> None:
        self._drain(0)
        c = zlib.compressobj(self.level, zlib.DEFLATED, -15)
        self.f.write(c.flush(zlib.Z_FINISH) + struct.pack(">I", self.adler))  # an empty last block
        self.pool.shutdown()

    def abort(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class PdfWriter:
    """A :class:`~bigcppn.formats.writers.Writer`: a one-page print PDF from rows given top to bottom.

    ``bands`` 1 (grey), 3 (RGB) or 4 (CMYK); ``icc`` the profile of those
    samples, embedded once, used by the output intent and (grey, RGB) the
    image's ``ICCBased`` colour space; ``intent_name`` the output intent's
    ``/Info``. ``compression`` is deflate, jpeg or none.
    """

    def __init__(self, path: str | Path, width: int, height: int, bands: int, depth: int = 8, *, page: PdfPage,
                 icc: bytes, intent_name: str = "", compression: str = "deflate", quality: int = 90,
                 xmp: bytes | None = None, title: str = "", workers: int | None = None,
                 meta: PdfMeta | None = None, intent_icc: bytes | None = None) -> None:
        if bands not in (1, 3, 4):
            raise ValueError(f"a PDF image has 1, 3 or 4 bands, not {bands}")
        if compression == "jpeg" and depth != 8:
            raise ValueError("DCTDecode (JPEG) holds 8-bit samples")
        self.width, self.height, self.bands, self.depth = width, height, bands, depth
        self.page, self.compression = page, compression
        self.rows = 0
        self._offsets: dict[int, int] = {}
        self.meta = meta if meta is not None else PdfMeta(title)
        self._f = open(path, "wb")
        self._closed = False
        self._deflate: _Deflate | None = None
        self._jpeg = None
        try:
            self._head(icc, intent_name, xmp_metadata(self.meta, xmp), intent_icc)
            self._stream_start = self._f.tell()
            if compression == "deflate":
                self._deflate = _Deflate(self._f, DEFLATE_LEVEL, True, workers or available_cores())
            elif compression == "jpeg":
                self._jpeg = _jpeg_stream(self._f, width, height, bands, quality)
        except BaseException:
            self._f.close()
            raise
        self._info = info_dict(self.meta)
        self._id = hashlib.md5((xmp or b"") + f"{width}x{height}x{bands}x{depth}{page}".encode()).hexdigest()

    # ------------------------------------------------------------------ objects
    def _obj(self, num: int, body: bytes | str, stream: bytes | None = None) -> None:
        self._offsets[num] = self._f.tell()
        body = body.encode("latin-1") if isinstance(body, str) else body
        self._f.write(b"%d 0 obj\n" % num + body)
        if stream is not None:
            self._f.write(b"\nstream\n" + stream + b"\nendstream")
        self._f.write(b"\nendobj\n")

    def _head(self, icc: bytes, intent_name: str, xmp: bytes | None, intent_icc: bytes | None) -> None:
        """Everything before the image stream (objects 1-6, 10: the output intent's own profile, the image's
        dictionary)."""
        f, p = self._f, self.page
        f.write(b"%PDF-1.6\n%\xe2\xe3\xcf\xd3\n")
        dest = "10 0 R" if intent_icc is not None else "5 0 R"
        intent = (f"<< /Type /OutputIntent /S /GTS_PDFX /OutputConditionIdentifier {_text(intent_name or 'Custom')}"
                  f" /RegistryName (http://www.color.org) /Info {_text(intent_name)} /DestOutputProfile {dest} >>")
        meta = " /Metadata 4 0 R" if xmp else ""
        self._obj(1, f"<< /Type /Catalog /Pages 2 0 R /OutputIntents [{intent}]{meta} >>")
        self._obj(2, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
        self._obj(3, f"<< /Type /Page /Parent 2 0 R /MediaBox {_box(*p.media_box)} /BleedBox {_box(*p.bleed_box)}"
                     f" /TrimBox {_box(*p.trim_box)} /Resources << /XObject << /Im0 7 0 R >> >> /Contents 6 0 R >>")
        if xmp:
            self._obj(4, f"<< /Type /Metadata /Subtype /XML /Length {len(xmp)} >>", xmp)
        else:
            self._obj(4, "null")
        self._obj(5, f"<< /N {self.bands} /Length {len(icc)} >>", icc)
        content = p.content(self.bands == 4)
        self._obj(6, f"<< /Length {len(content)} >>", content)
        if intent_icc is not None:
            self._obj(10, f"<< /N 4 /Length {len(intent_icc)} >>", intent_icc)
        space = "/DeviceCMYK" if self.bands == 4 else "[/ICCBased 5 0 R]"
        image = (f"<< /Type /XObject /Subtype /Image /Width {self.width} /Height {self.height} /ColorSpace {space}"
                 f" /BitsPerComponent {self.depth} /Length 8 0 R")
        if self.compression == "deflate":
            image += (f" /Filter /FlateDecode /DecodeParms << /Predictor 15 /Colors {self.bands}"
                      f" /BitsPerComponent {self.depth} /Columns {self.width} >>")
        elif self.compression == "jpeg":
            image += " /Filter /DCTDecode" + (" /Decode [1 0 1 0 1 0 1 0]" if self.bands == 4 else "")
        self._offsets[7] = f.tell()
        f.write(b"7 0 obj\n" + image.encode("latin-1") + b" >>\nstream\n")

    # ------------------------------------------------------------------ the Writer protocol
    def write(self, rows: np.ndarray) -> None:
        if rows.ndim == 2:
            rows = rows[:, :, None]
        if rows.shape[1:] != (self.width, self.bands):
            raise ValueError(f"rows of shape {rows.shape} do not fit a {self.width}x{self.height}x{self.bands} image")
        if self.rows + rows.shape[0] > self.height:
            raise ValueError(f"{self.rows + rows.shape[0]} rows written to an image {self.height} rows high")
        self.rows += rows.shape[0]
        if self._deflate is not None:
            self._deflate.feed(rows)
        elif self._jpeg is not None:
            self._jpeg.write(rows)
        else:
            self._f.write(np.ascontiguousarray(rows.astype(">u2") if self.depth == 16 else rows).tobytes())

    def close(self) -> None:
        if self.rows != self.height:
            raise ValueError(f"{self.rows} rows written to an image {self.height} rows high")
        if self._deflate is not None:
            self._deflate.finish()
        elif self._jpeg is not None:
            self._jpeg.close()
        f = self._f
        length = f.tell() - self._stream_start
        f.write(b"\nendstream\nendobj\n")
        self._obj(8, str(length))
        self._obj(9, self._info)
        xref = f.tell()
        count = max(self._offsets) + 1
        f.write(b"xref\n0 %d\n0000000000 65535 f \n" % count)
        for num in range(1, count):
            f.write(b"%010d 00000 n \n" % self._offsets[num])
        f.write(f"trailer\n<< /Size {count} /Root 1 0 R /Info 9 0 R /ID [<{self._id}> <{self._id}>] >>\n"
                f"startxref\n{xref}\n%%EOF\n".encode("latin-1"))
        f.close()
        self._closed = True

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._deflate is not None:
            self._deflate.abort()
        if self._jpeg is not None:
            self._jpeg.abort()
        self._f.close()


def _jpeg_stream(f: BinaryIO, width: int, height: int, bands: int, quality: int):
    """A writer of rows that libvips encodes as one baseline JPEG straight into ``f`` (DCTDecode's data)."""
    import pyvips

    from ..vips import StreamWriter

    def save(image: pyvips.Image) -> None:
        target = pyvips.TargetCustom()
        target.on_write(lambda chunk: f.write(chunk))
        image.jpegsave_target(target, Q=quality, keep="none")

    return StreamWriter(width, height, bands, 8, save)
