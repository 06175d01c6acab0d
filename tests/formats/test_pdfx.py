"""PDFs a print shop's preflight accepts (issue 21, section 2): the TrimBox is the paper, the bleed at least what
was asked, and PDF/X-4's required keys, checked against the standard's list (no free preflight tool is packaged).
"""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigcppn import cli
from bigcppn.core.units import PAPER_MM, parse_length_in, parse_paper_in, print_canvas, trim_inches
from bigcppn.formats.pdf.pdfx import REQUIRED, is_output_profile
from bigcppn.formats.pdf.writer import PdfPage

pikepdf = pytest.importorskip("pikepdf")


def page_for(size: str, dpi: float, bleed: str) -> tuple[PdfPage, float, float]:
    paper = parse_paper_in(size)
    p = print_canvas(paper, dpi, parse_length_in(bleed))
    return PdfPage(p.width, p.height, p.bleed, dpi), paper[0] * 72, paper[1] * 72


@pytest.mark.parametrize("size, bleed", [("A4", "3mm"), ("letter", "0.125in"), ("A2", "5mm"), ("50x70cm", "3mm")])
@pytest.mark.parametrize("dpi", [72, 150, 300, 600])
def test_the_trim_box_is_the_paper_and_the_bleed_is_never_short(size, bleed, dpi):
    """A4 + 3 mm at 300 dpi was 595.44 x 842.16 pt with 2.963 mm of bleed; letter 611.76 x 791.76 pt."""
    page, w_pt, h_pt = page_for(size, dpi, bleed)
    x0, y0, x1, y1 = page.trim_box
    assert x1 - x0 == pytest.approx(w_pt, abs=0.01) and y1 - y0 == pytest.approx(h_pt, abs=0.01)
    b = page.bleed_box
    asked = parse_length_in(bleed) * 72
    pixel = 72 / dpi
    for side in (x0 - b[0], y0 - b[1], b[2] - x1, b[3] - y1):
        assert asked - 1e-9 <= side < asked + pixel * 1.001


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(PAPER_MM)), dpi=st.integers(30, 2400), bleed_mm=st.floats(0, 20))
def test_raster_pixels_stay_whole_at_the_exact_dpi(name, dpi, bleed_mm):
    """TIFF and PNG: whole pixels at the DPI asked; the trim the paper to the nearest pixel, the bleed the
    fewest pixels that cover it; the PDF page finds the paper again from them."""
    w_in, h_in = parse_paper_in(name)
    p = print_canvas((w_in, h_in), dpi, bleed_mm / 25.4)
    tw, th = p.trim_px
    assert abs(tw - w_in * dpi) <= 0.5 and abs(th - h_in * dpi) <= 0.5
    assert bleed_mm / 25.4 * dpi - 1e-6 <= p.bleed < bleed_mm / 25.4 * dpi + 1
    assert trim_inches(tw, dpi) == pytest.approx(w_in, abs=1e-9)
    assert trim_inches(th, dpi) == pytest.approx(h_in, abs=1e-9)


def test_a_canvas_in_pixels_keeps_its_size():
    assert trim_inches(2600, 300) == 2600 / 300  # 220.13 mm: no whole millimetre or eighth inch within 0.5 px


def boxes(path):
    with pikepdf.open(path) as doc:
        page = doc.pages[0].obj
        return {k: [float(v) for v in page[k]] for k in ("/TrimBox", "/BleedBox")}


def test_a4_with_bleed_end_to_end(tmp_path):
    out = tmp_path / "a.pdf"
    assert cli.main(["render", "--size", "A4", "--bleed", "3mm", "--dpi", "72", "-q", "-o", str(out)]) == 0
    t, b = boxes(out)["/TrimBox"], boxes(out)["/BleedBox"]
    assert t[2] - t[0] == pytest.approx(210 / 25.4 * 72, abs=0.01)
    assert t[3] - t[1] == pytest.approx(297 / 25.4 * 72, abs=0.01)
    assert min(t[0] - b[0], t[1] - b[1], b[2] - t[2], b[3] - t[3]) >= 3 / 25.4 * 72 - 1e-3


XMP_KEY = re.compile(r"<([a-zA-Z]+:[A-Za-z_]+)>(.*?)</\1>", re.S)


def pdfx_report(path) -> dict:
    """What a preflight checks of PDF/X-4's document keys: the Info dictionary, the XMP, the output intent."""
    with pikepdf.open(path) as doc:
        info = {str(k): str(v) for k, v in doc.trailer.Info.items()}
        xmp = bytes(doc.Root.Metadata.read_bytes()).decode("utf-8")
        props = {k: re.sub(r"<[^>]+>", "", v).strip() for k, v in XMP_KEY.findall(xmp)}
        intents = [dict(i.items()) for i in doc.Root.get("/OutputIntents", [])]
        profiles = [bytes(i["/DestOutputProfile"].read_bytes()) for i in intents]
        return {"info": info, "xmp": props, "intents": intents, "profiles": profiles, "version": str(doc.pdf_version),
                "id": doc.trailer.get("/ID") is not None, "encrypted": doc.is_encrypted}


def pdf_date(text: str) -> str:
    m = re.match(r"D:(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z", text)
    return f"{m[1]}-{m[2]}-{m[3]}T{m[4]}:{m[5]}:{m[6]}Z"


@pytest.mark.parametrize("flags", [["--cmyk"], ["--pdfx"], ["--pdfx", "--set", "network.color=grey"]],
                         ids=["cmyk", "rgb-pdfx", "grey-pdfx"])
def test_pdfx4_carries_every_key_the_standard_requires(tmp_path, flags):
    out = tmp_path / "x.pdf"
    assert cli.main(["render", "--size", "A6", "--dpi", "72", "--bleed", "3mm", "-q", *flags, "-o", str(out)]) == 0
    r = pdfx_report(out)
    info, xmp = r["info"], r["xmp"]
    assert [k for k in REQUIRED["info"] if k not in info] == []
    assert [k for k in REQUIRED["xmp"] if k not in xmp] == []
    assert info["/GTS_PDFXVersion"] == xmp["pdfxid:GTS_PDFXVersion"] == "PDF/X-4"
    assert info["/Title"] == xmp["dc:title"] == "x.pdf"
    assert info["/Producer"] == xmp["pdf:Producer"] and info["/Creator"] == xmp["xmp:CreatorTool"]
    assert info["/Trapped"] == "/False" and xmp["pdf:Trapped"] == "False"
    assert pdf_date(info["/CreationDate"]) == xmp["xmp:CreateDate"]
    assert pdf_date(info["/ModDate"]) == xmp["xmp:ModifyDate"]
    assert float(r["version"]) >= 1.6 and r["id"] and not r["encrypted"]
    assert len(r["intents"]) == 1 and str(r["intents"][0]["/S"]) == "/GTS_PDFX"
    assert "/OutputConditionIdentifier" in r["intents"][0]
    assert is_output_profile(r["profiles"][0]) and r["profiles"][0][16:20] == b"CMYK"  # a printer, not a display
    assert cli.main(["render", "--from", str(out), "--width", "40", "-q", "-o", str(tmp_path / "back.png")]) == 0


def test_a_plain_pdf_claims_no_pdfx_and_keeps_info_and_xmp_in_step(tmp_path):
    out = tmp_path / "p.pdf"
    assert cli.main(["render", "--width", "60", "--height", "40", "-q", "-o", str(out)]) == 0
    r = pdfx_report(out)
    assert "/GTS_PDFXVersion" not in r["info"] and "pdfxid:GTS_PDFXVersion" not in r["xmp"]
    assert r["info"]["/Title"] == r["xmp"]["dc:title"] and r["info"]["/Producer"] == r["xmp"]["pdf:Producer"]
    again = tmp_path / "q.pdf"
    assert cli.main(["render", "--width", "60", "--height", "40", "-q", "-o", str(again)]) == 0
    assert out.read_bytes().replace(b"p.pdf", b"q.pdf") == again.read_bytes()  # no date: the same bytes


def test_a_display_profile_cannot_be_a_pdfx_output_intent(tmp_path, capsys):
    from bigcppn.formats.icc import builtin_profile

    srgb_as_cmyk = bytearray(builtin_profile("cmyk"))
    srgb_as_cmyk[12:16] = b"mntr"
    icc = tmp_path / "display.icc"
    icc.write_bytes(bytes(srgb_as_cmyk))
    out = tmp_path / "d.pdf"
    assert cli.main(["render", "--width", "60", "--height", "40", "-q", "--cmyk", str(icc), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    # (refused for every CMYK output, PDF/X or not: a display profile cannot describe a press)
    assert len(err) == 1 and "output (printer) profile" in err[0]
    assert not out.exists()


def test_the_viewer_page_declares_an_icon(tmp_path):
    out = tmp_path / "p.dzi"
    assert cli.main(["pyramid", "--width", "64", "--height", "48", "-q", "-o", str(out)]) == 0
    page = (tmp_path / "p.html").read_text()
    assert '<link rel="icon"' in page  # no /favicon.ico request, no 404 in the log
    assert math.isfinite(len(page))
