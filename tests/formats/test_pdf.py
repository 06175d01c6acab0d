"""Print-ready PDF (``-o poster.pdf``): page boxes in points, the picture lossless, JPEG, crop marks, intent.

Read back by independent readers: pikepdf (qpdf), poppler's ``pdfinfo``, ``pdftocairo`` and ``pdftoppm``, and
``qpdf --check``. The test extras install pikepdf and .ci/run poppler-utils and qpdf; without them the tests
that need them skip, except under CI, where they fail.

Measured: ``pdftocairo -r DPI`` gives the picture back exactly; ``pdftoppm`` (poppler's Splash rasteriser)
stretches an image drawn 1:1 by about a pixel (the same with any PDF), so it is checked against a PSNR bound.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pyvips

from bigcppn import cli
from bigcppn.formats.icc import grey_profile, srgb_profile
from bigcppn.formats.pdf.writer import MARK_GAP, MARK_LENGTH, PdfPage, PdfWriter, adler32_combine

from conftest import psnr

pyvips.cache_set_max(0)
# 40 x 30 mm trimmed, 3 mm bleed, at 150 dpi: 272 x 213 px, bleed 18 px a side
PRINT = ["--seed", "11", "--size", "40x30mm", "--dpi", "150", "--bleed", "3mm", "-q"]
W, H, BLEED, DPI = 272, 213, 18, 150.0
# Points a pixel on each axis: the trim is the paper, 40 x 30 mm (236 x 177 px at 150 dpi, 0.1% scaled)
SX, SY = 40 / 25.4 * 72 / (W - 2 * BLEED), 30 / 25.4 * 72 / (H - 2 * BLEED)


def need(found: object, what: str) -> None:
    if not found:
        reason = f"{what} is not installed (the test extras and .ci/run install it)"
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI is set, so this is a failure, not a skip)")
        pytest.skip(reason)


def pikepdf():
    try:
        import pikepdf as module
    except ImportError:
        module = None
    need(module, "pikepdf")
    return module


def tool(name: str) -> str:
    path = shutil.which(name)
    need(path, f"{name} ({'qpdf' if name == 'qpdf' else 'poppler-utils'})")
    return path


def run(*args) -> int:
    return cli.main([str(a) for a in args])


@pytest.fixture(scope="module")
def png(tmp_path_factory) -> np.ndarray:
    out = tmp_path_factory.mktemp("ref") / "ref.png"
    assert run("render", *PRINT, "-o", out) == 0
    return pyvips.Image.new_from_file(str(out)).numpy()


def rasterise(pdf: Path, program: str, dpi: float = DPI) -> np.ndarray:
    """The page at ``dpi``, cut to the whole pixels of the page (poppler rounds a page of 213.00000001 px up)."""
    pk = pikepdf()
    with pk.open(pdf) as doc:
        x0, y0, x1, y1 = (float(v) for v in doc.pages[0].MediaBox)
    w, h = round((x1 - x0) / 72 * dpi), round((y1 - y0) / 72 * dpi)
    prefix = pdf.with_name(pdf.stem + "-" + program)
    subprocess.run([tool(program), "-r", f"{dpi:g}", "-x", "0", "-y", "0", "-W", str(w), "-H", str(h), "-png",
                    "-singlefile", str(pdf), str(prefix)], check=True)
    return pyvips.Image.new_from_file(f"{prefix}.png").numpy()[..., :3]


def image_of(pdf: Path) -> tuple[dict, np.ndarray]:
    """The page's image XObject: its dictionary (as Python values) and its decoded samples."""
    pk = pikepdf()
    with pk.open(pdf) as doc:
        xobj = doc.pages[0].Resources.XObject["/Im0"]
        info = {k: xobj.get(k) for k in ("/Width", "/Height", "/BitsPerComponent", "/Filter", "/ColorSpace")}
        info = {k: (str(v) if isinstance(v, pk.Name) else v) for k, v in info.items()}
        if info["/Filter"] == "/DCTDecode":
            arr = np.asarray(pk.PdfImage(xobj).as_pil_image())
        else:
            depth = int(xobj.BitsPerComponent)
            raw = xobj.read_bytes()  # Flate and the PNG predictor undone by qpdf
            arr = np.frombuffer(raw, ">u2" if depth == 16 else np.uint8).reshape(int(xobj.Height), int(xobj.Width), -1)
    return info, arr


def boxes(pdf: Path) -> dict[str, list[float]]:
    pk = pikepdf()
    with pk.open(pdf) as doc:
        page = doc.pages[0].obj
        return {k: [float(v) for v in page[k]] for k in ("/MediaBox", "/BleedBox", "/TrimBox")}


def pdfinfo_boxes(pdf: Path) -> dict[str, list[float]]:
    text = subprocess.run([tool("pdfinfo"), "-box", str(pdf)], capture_output=True, text=True, check=True).stdout
    return {m[1]: [float(v) for v in m[2].split()] for m in re.finditer(r"^(\w+Box):\s+(.*)$", text, re.M)}


def test_boxes_in_points_at_the_dpi(tmp_path):
    out = tmp_path / "poster.pdf"
    assert run("render", *PRINT, "-o", out) == 0
    want = {"/MediaBox": [0, 0, W * SX, H * SY], "/BleedBox": [0, 0, W * SX, H * SY],
            "/TrimBox": [BLEED * SX, BLEED * SY, (W - BLEED) * SX, (H - BLEED) * SY]}
    for key, value in boxes(out).items():
        assert value == pytest.approx(want[key], abs=1e-4), key
    poppler = pdfinfo_boxes(out)
    for key in want:
        assert poppler[key[1:]] == pytest.approx(want[key], abs=0.01), key
    # the trimmed page is 40 x 30 mm to a hundredth of a point; the bleed 3 mm or up to a pixel more
    t, b = boxes(out)["/TrimBox"], boxes(out)["/BleedBox"]
    assert t[2] - t[0] == pytest.approx(40 / 25.4 * 72, abs=0.01)
    assert t[3] - t[1] == pytest.approx(30 / 25.4 * 72, abs=0.01)
    for side in (t[0] - b[0], t[1] - b[1], b[2] - t[2], b[3] - t[3]):
        assert 3 / 25.4 * 72 <= side < 3 / 25.4 * 72 + 72 / DPI


def test_lossless_picture_is_the_render(tmp_path, png):
    out = tmp_path / "poster.pdf"
    assert run("render", *PRINT, "-o", out) == 0
    info, arr = image_of(out)
    assert info["/Filter"] == "/FlateDecode" and info["/BitsPerComponent"] == 8
    assert (info["/Width"], info["/Height"]) == (W, H)
    np.testing.assert_array_equal(arr, png)
    np.testing.assert_array_equal(rasterise(out, "pdftocairo"), png)
    assert psnr(rasterise(out, "pdftoppm"), png) > 25  # Splash resamples images drawn 1:1
    check = subprocess.run([tool("qpdf"), "--check", str(out)], capture_output=True, text=True)
    assert check.returncode == 0 and "No syntax or stream encoding errors" in check.stdout, check.stdout


def test_jpeg_image(tmp_path, png):
    out = tmp_path / "poster.pdf"
    assert run("render", *PRINT, "--set", "output.compression=jpeg", "-o", out) == 0
    info, arr = image_of(out)
    assert info["/Filter"] == "/DCTDecode"
    assert psnr(arr, png) > 35
    assert psnr(rasterise(out, "pdftocairo"), png) > 35
    assert subprocess.run([tool("qpdf"), "--check", str(out)], capture_output=True).returncode == 0


def test_output_intent_and_colour_space_carry_the_profile(tmp_path):
    pk = pikepdf()
    out = tmp_path / "poster.pdf"
    assert run("render", *PRINT, "-o", out) == 0
    with pk.open(out) as doc:
        (intent,) = doc.Root.OutputIntents
        assert intent.S == "/GTS_PDFX" and str(intent.OutputConditionIdentifier) == "sRGB IEC61966-2.1"
        assert intent.DestOutputProfile.read_bytes() == srgb_profile() and intent.DestOutputProfile.N == 3
        space = doc.pages[0].Resources.XObject["/Im0"].ColorSpace
        assert space[0] == "/ICCBased" and space[1].read_bytes() == srgb_profile()
        assert b"seed = 11" in doc.Root.Metadata.read_bytes()
    cfg = tmp_path / "again.png"
    assert run("render", "--from", out, "--width", 50, "-q", "-o", cfg) == 0  # the config comes back


def test_grey_and_16_bit(tmp_path, png):
    pk = pikepdf()
    grey = tmp_path / "grey.pdf"
    assert run("render", *PRINT, "--set", "network.color=grey", "-o", grey) == 0
    with pk.open(grey) as doc:
        assert doc.pages[0].Resources.XObject["/Im0"].ColorSpace[1].read_bytes() == grey_profile()
        assert doc.Root.OutputIntents[0].DestOutputProfile.N == 1
    deep = tmp_path / "deep.pdf"
    assert run("render", *PRINT, "--depth", 16, "-o", deep) == 0
    ref16 = tmp_path / "deep.png"
    assert run("render", *PRINT, "--depth", 16, "-o", ref16) == 0
    info, arr = image_of(deep)
    assert info["/BitsPerComponent"] == 16
    np.testing.assert_array_equal(arr, pyvips.Image.new_from_file(str(ref16)).numpy())
    assert psnr(rasterise(deep, "pdftocairo"), png) > 45  # poppler shows 16 bits as 8


def test_crop_marks_outside_the_bleed(tmp_path, png):
    pk = pikepdf()
    out = tmp_path / "marks.pdf"
    assert run("render", *PRINT, "--crop-marks", "-o", out) == 0
    mx, my = PdfPage(W, H, BLEED, DPI, marks=True).margin
    assert (mx, my) == pytest.approx((75 * SX, 75 * SY))  # half an inch: 75 px at 150 dpi
    b = boxes(out)
    assert b["/MediaBox"] == pytest.approx([0, 0, W * SX + 2 * mx, H * SY + 2 * my], abs=1e-4)
    assert b["/BleedBox"] == pytest.approx([mx, my, mx + W * SX, my + H * SY], abs=1e-4)
    assert b["/TrimBox"] == pytest.approx([mx + BLEED * SX, my + BLEED * SY, mx + (W - BLEED) * SX,
                                           my + (H - BLEED) * SY], abs=1e-4)
    m = mx
    with pk.open(out) as doc:
        ops = pk.parse_content_stream(doc.pages[0])
        lines = [[float(v) for v in o.operands] for o in ops if str(o.operator) in ("m", "l")]
    assert len(lines) == 16  # 8 marks, a move and a line each
    x0, y0, x1, y1 = b["/BleedBox"]
    tx0, ty0, tx1, ty1 = b["/TrimBox"]
    for x, y in lines:  # every end of every mark is outside the bleed, on a trim line
        assert not (x0 <= x <= x1 and y0 <= y <= y1)
        assert any(abs(x - v) < 1e-3 for v in (tx0, tx1)) or any(abs(y - v) < 1e-3 for v in (ty0, ty1))
    page = rasterise(out, "pdftocairo", 300)  # the marks are drawn: dark pixels on the trim lines, in the margin
    scale = 300 / 72
    col = round(tx0 * scale)
    assert page[: round((m - MARK_GAP) * scale), col - 1 : col + 2].min() < 200
    assert page[: round((m - MARK_GAP - MARK_LENGTH) * scale) - 2].min() == 255  # white beyond the marks
    assert page[round((m - MARK_GAP) * scale) + 2 : round(m * scale) - 2, col - 1 : col + 2].min() == 255
    inner = rasterise(out, "pdftocairo")
    mp = round(m / 72 * DPI)
    # the picture is scaled by 0.1% so that the trim is 40 x 30 mm: no longer 1:1 at 150 dpi past the margin
    assert psnr(inner[mp : mp + H, mp : mp + W], png) > 25


@pytest.mark.parametrize("args, message", [
    ([*PRINT, "--depth", "16", "--set", "output.compression=jpeg"], "JPEG-compressed PDF holds 8 bits"),
    ([*PRINT, "--set", "output.compression=lzw"], "PDF takes output.compression deflate, jpeg or none, not lzw"),
    (["--size", "6000x1000mm", "--dpi", "10"], "PDF pages are at most 200 in (5080 mm) a side"),
])
def test_bad_pdf_input(tmp_path, capsys, args, message):
    assert run("render", *args, "-o", tmp_path / "x.pdf") == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_crop_marks_are_for_pdf(tmp_path, capsys):
    assert run("render", *PRINT, "--crop-marks", "-o", tmp_path / "x.png") == 2
    assert "--crop-marks are for PDF" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_adler32_combine():
    import zlib

    a, b = b"bigcppn " * 1000, bytes(range(256)) * 300
    assert adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b)) == zlib.adler32(a + b)
    assert adler32_combine(1, zlib.adler32(b), len(b)) == zlib.adler32(b)


def test_pieces_make_one_zlib_stream(tmp_path):
    """Rows compressed in many pieces on several threads are one stream that zlib (and qpdf) decode."""
    pk = pikepdf()
    rng = np.random.default_rng(3)
    rows = rng.integers(0, 255, (300, 1000, 3), dtype=np.uint8)
    path = tmp_path / "p.pdf"
    import bigcppn.formats.pdf.writer as pw

    old = pw.PIECE_BYTES
    pw.PIECE_BYTES = 20000  # about 7 rows a piece: 43 pieces
    try:
        w = PdfWriter(path, 1000, 300, 3, page=PdfPage(1000, 300, 0, 72.0), icc=srgb_profile(), workers=3)
        for y in range(0, 300, 37):
            w.write(rows[y : y + 37])
        w.close()
    finally:
        pw.PIECE_BYTES = old
    with pk.open(path) as doc:
        raw = doc.pages[0].Resources.XObject["/Im0"].read_bytes()
    np.testing.assert_array_equal(np.frombuffer(raw, np.uint8).reshape(300, 1000, 3), rows)


MEMORY = """
import json, resource, sys
import numpy as np
from bigcppn.formats.icc import srgb_profile
from bigcppn.formats.pdf.writer import PdfPage, PdfWriter
w, h = int(sys.argv[2]), int(sys.argv[3])
writer = PdfWriter(sys.argv[1], w, h, 3, page=PdfPage(w, h, 0, 300.0), icc=srgb_profile())
x = (np.arange(w) // 5).astype(np.uint8)
for y in range(0, h, 256):
    n = min(256, h - y)
    rows = np.empty((n, w, 3), np.uint8)  # a new strip each time, as the renderer gives them
    rows[..., 0] = x
    rows[..., 1] = (np.arange(y, y + n) // 3).astype(np.uint8)[:, None]
    rows[..., 2] = x[::-1]
    writer.write(rows)
writer.close()
print(json.dumps({"peak_mb": next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024}))
"""


def writer_peak_mb(path: Path, w: int, h: int) -> float:
    res = subprocess.run([sys.executable, "-c", MEMORY, str(path), str(w), str(h)], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    return json.loads(res.stdout.strip().splitlines()[-1])["peak_mb"]


def test_pdf_writer_memory_does_not_grow_with_the_canvas(tmp_path):
    small = writer_peak_mb(tmp_path / "s.pdf", 4000, 1000)  # 4 MPix
    big = writer_peak_mb(tmp_path / "b.pdf", 4000, 24000)  # 96 MPix: 288 MB of raw RGB
    assert big - small < 30, f"4000x24000 peaked at {big:.0f} MB, 4000x1000 at {small:.0f} MB"
