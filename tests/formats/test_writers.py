"""Every writer runs the same conformance tests (:mod:`writer_conformance`); each class here only says how to
make one output and how close it must come.

Writers: bigcppn's TIFF writer (deflate, LZW, JPEG tiles; flat; CMYK), DeepZoom writer (.dzi, .szi; JPEG
tiles) and PDF writer (deflate, JPEG, none; CMYK); libvips through the streamed PNG (uncompressed TIFF, PNG,
JPEG, WebP, DeepZoom with PNG or WebP tiles); the CMYK converter in front of a writer (--cmyk).

Lossy bounds: measured on the 173 x 91 conformance picture (the figure in each comment), set with margin.
"""

from __future__ import annotations

from writer_conformance import DEEPZOOM, PDF, H, W, WriterTests, dz_levels, tiff_levels, xfail

TILE = {"tiff_tile": 64}  # several tiles across the picture
DZ_TILE = {"dz_tile": 64}


# --------------------------------------------------------------------------- TIFF: bigcppn's writer


class TestTiffDeflateRgb8(WriterTests):
    name = "a.tif"
    output = {**TILE}
    levels = tiff_levels(W, H, 64)


class TestTiffLzwGrey16(WriterTests):
    name = "a.tiff"
    output = {**TILE, "compression": "lzw", "depth": 16}
    bands = 1
    levels = tiff_levels(W, H, 64)


class TestTiffDeflateRgb16(WriterTests):
    name = "a.tif"
    output = {"compression": "deflate", "depth": 16}  # the default 256-pixel tile: one tile, one level
    levels = tiff_levels(W, H, 256)


class TestTiffJpeg(WriterTests):
    name = "a.tif"
    output = {**TILE, "compression": "jpeg", "quality": 75}  # YCbCr 4:2:0 below quality 90
    # measured 32.5 dB, 84: in the last two columns and rows 4:2:0 chroma is averaged with the black padding of
    # the edge tiles, as libvips' own tiffsave does it, pixel for pixel (23 elsewhere)
    least_psnr, most_diff = 30, 100
    levels = tiff_levels(W, H, 64)


class TestTiffJpegGrey(WriterTests):
    name = "a.tif"
    output = {**TILE, "compression": "jpeg"}
    bands = 1
    least_psnr, most_diff = 35, 25  # measured 38.3 dB, 14
    levels = tiff_levels(W, H, 64)


class TestTiffFlat(WriterTests):
    name = "a.tif"
    output = {**TILE, "pyramid": False}


class TestTiffCmyk(WriterTests):
    name = "a.tif"
    output = {**TILE, "cmyk": "cmyk"}
    levels = tiff_levels(W, H, 64)


class TestTiffCmykLzwGrey(WriterTests):
    name = "a.tif"
    output = {**TILE, "cmyk": "cmyk", "compression": "lzw", "intent": "perceptual"}
    bands = 1
    levels = tiff_levels(W, H, 64)


# --------------------------------------------------------------------------- libvips through the PNG stream


class TestTiffUncompressed(WriterTests):
    name = "a.tif"
    output = {**TILE, "compression": "none"}
    levels = tiff_levels(W, H, 64)


class TestTiffUncompressedFlatGrey16(WriterTests):
    name = "a.tif"
    output = {**TILE, "compression": "none", "pyramid": False, "depth": 16}
    bands = 1


class TestPngRgb8(WriterTests):
    name = "a.png"


class TestPngRgb16(WriterTests):
    name = "a.png"
    output = {"depth": 16}


class TestPngGrey8(WriterTests):
    name = "a.png"
    bands = 1


class TestJpeg(WriterTests):
    name = "a.jpg"
    least_psnr, most_diff = 34, 30  # measured 36.9 dB, 18


class TestJpegGrey(WriterTests):
    name = "a.jpeg"
    bands = 1
    least_psnr, most_diff = 35, 25  # measured 38.3 dB, 14


class TestJpegCmyk(WriterTests):
    name = "a.jpg"
    output = {"cmyk": "cmyk"}
    least_psnr, most_diff = 35, 30  # measured 38.7 dB, 18


class TestWebp(WriterTests):
    name = "a.webp"
    least_psnr, most_diff = 35, 25  # measured 38.3 dB, 14
    holds_dpi = False  # WebP has no resolution field


# --------------------------------------------------------------------------- DeepZoom


class TestDziJpeg(WriterTests):
    name = "a.dzi"
    output = {**DZ_TILE}
    least_psnr, most_diff = 34, 30  # measured 36.9 dB, 19
    levels = dz_levels(W, H)
    reader = DEEPZOOM


class TestDziJpegGrey(WriterTests):
    name = "a.dzi"
    output = {**DZ_TILE, "dz_overlap": 3, "quality": 80}
    bands = 1
    least_psnr, most_diff = 33, 30  # measured 35.9 dB, 20
    levels = dz_levels(W, H)
    reader = DEEPZOOM


class TestDziPng(WriterTests):  # libvips' dzsave
    name = "a.dzi"
    output = {**DZ_TILE, "dz_suffix": "png"}
    levels = dz_levels(W, H)
    reader = DEEPZOOM


class TestDziWebp(WriterTests):  # libvips' dzsave
    name = "a.dzi"
    output = {**DZ_TILE, "dz_suffix": "webp"}
    least_psnr, most_diff = 32, 45  # measured 35.0 dB, 30
    levels = dz_levels(W, H)
    reader = DEEPZOOM


class TestSziJpeg(WriterTests):
    name = "a.szi"
    output = {**DZ_TILE}
    least_psnr, most_diff = 34, 30  # measured 36.9 dB, 19
    levels = dz_levels(W, H)
    reader = DEEPZOOM


class TestSziPng(WriterTests):  # libvips' dzsave, the config added to the zip after
    name = "a.szi"
    output = {**DZ_TILE, "dz_suffix": "png"}
    levels = dz_levels(W, H)
    reader = DEEPZOOM


# --------------------------------------------------------------------------- PDF


class TestPdfDeflate(WriterTests):
    name = "a.pdf"
    reader = PDF


class TestPdfDeflateGrey16(WriterTests):
    name = "a.pdf"
    output = {"depth": 16}
    bands = 1
    reader = PDF


class TestPdfUncompressed(WriterTests):
    name = "a.pdf"
    output = {"compression": "none"}
    reader = PDF


class TestPdfJpeg(WriterTests):
    name = "a.pdf"
    output = {"compression": "jpeg"}
    least_psnr, most_diff = 34, 30  # measured 36.9 dB, 18
    reader = PDF


class TestPdfCmyk(WriterTests):
    name = "a.pdf"
    output = {"cmyk": "cmyk"}
    reader = PDF
