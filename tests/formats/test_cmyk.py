"""CMYK for print (``--cmyk [PROFILE.icc] --intent ...``): TIFF, JPEG and PDF through an ICC output profile.

Each file is read back by two readers (libvips and tifffile, libvips and Pillow, pikepdf and poppler), carries
the profile, and converts back to sRGB close to the RGB render. Measured here (seed 7, 300×200, libvips'
built-in CMYK profile, relative intent with black point compensation both ways), CIEDE2000 against the RGB
render: the grey network mean 1.07, max 4.1; the colour network mean 8.4, max 17.3 (its colours reach
chroma 120, far outside any CMYK gamut), mean 2.6 where the chroma is under 40. The bounds below leave margin.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
import pyvips
import tifffile

from bigcppn import cli
from bigcppn.formats.icc import builtin_profile, srgb_profile

import test_pdf as pdf_tests
from conftest import psnr

pyvips.cache_set_max(0)
SIZE = ["--seed", "7", "--width", "300", "--height", "200", "--tile", "64", "-q"]


def run(*args) -> int:
    return cli.main([str(a) for a in args])


def render(tmp_path, name: str, *args) -> pyvips.Image:
    out = tmp_path / name
    assert run("render", *SIZE, *args, "-o", out) == 0
    return pyvips.Image.new_from_file(str(out))


def back_to_srgb(image: pyvips.Image) -> pyvips.Image:
    return image.icc_transform("srgb", embedded=True, intent="relative", black_point_compensation=True)


def delta_e(a: pyvips.Image, b: pyvips.Image) -> np.ndarray:
    return a.colourspace("srgb").dE00(b.colourspace("srgb")).numpy()


@pytest.mark.parametrize("compression", ["deflate", "none"])
def test_cmyk_tiff(tmp_path, compression):
    rgb = render(tmp_path, "rgb.png")
    cmyk = render(tmp_path, "c.tif", "--cmyk", "--set", f"output.compression={compression}")
    assert cmyk.interpretation == "cmyk" and cmyk.bands == 4 and cmyk.format == "uchar"
    assert bytes(cmyk.get("icc-profile-data")) == builtin_profile("cmyk")
    with tifffile.TiffFile(tmp_path / "c.tif") as tf:
        assert len(tf.pages) == 2  # a pyramid (300x200, 150x100), every level CMYK with the profile
        for page in tf.pages:
            assert page.photometric == tifffile.PHOTOMETRIC.SEPARATED and page.tags[332].value == 1
            assert page.tags[34675].value == builtin_profile("cmyk")
        np.testing.assert_array_equal(tf.pages[0].asarray(), cmyk.numpy())
    # strip by strip is the same as the whole picture at once (the transform is pixel-local)
    whole = rgb.icc_transform("cmyk", input_profile="srgb", intent="relative", black_point_compensation=True,
                              embedded=False)
    np.testing.assert_array_equal(cmyk.numpy(), whole.numpy())
    d = delta_e(rgb, back_to_srgb(cmyk))
    assert d.mean() < 11, d.mean()
    chroma = rgb.colourspace("lch").numpy()[..., 1]
    assert d[chroma < 40].mean() < 4


def test_grey_round_trip_is_close(tmp_path):
    grey = render(tmp_path, "g.png", "--set", "network.color=grey")
    cmyk = render(tmp_path, "g.tif", "--set", "network.color=grey", "--cmyk", "--flat")
    assert cmyk.interpretation == "cmyk" and cmyk.get("n-pages") == 1
    d = delta_e(grey, back_to_srgb(cmyk))
    assert d.mean() < 2 and d.max() < 7, (d.mean(), d.max())


def test_cmyk_16_bit_tiff(tmp_path):
    cmyk = render(tmp_path, "c16.tif", "--cmyk", "--depth", 16)
    assert cmyk.interpretation == "cmyk" and cmyk.format == "ushort"
    eight = render(tmp_path, "c8.tif", "--cmyk")
    diff = np.abs(cmyk.numpy() / 257.0 - eight.numpy())  # 16-bit pixels through a 16-bit transform
    assert diff.mean() < 0.5 and diff.max() < 6


def test_cmyk_jpeg(tmp_path):
    from PIL import Image

    rgb = render(tmp_path, "rgb.png")
    cmyk = render(tmp_path, "c.jpg", "--cmyk")
    assert cmyk.interpretation == "cmyk" and bytes(cmyk.get("icc-profile-data")) == builtin_profile("cmyk")
    with Image.open(tmp_path / "c.jpg") as im:
        assert im.mode == "CMYK" and im.info["icc_profile"] == builtin_profile("cmyk")
        assert psnr(np.asarray(im), cmyk.numpy()) > 45  # Pillow and libvips decode the same samples
    tif = render(tmp_path, "c.tif", "--cmyk")
    assert psnr(cmyk.numpy(), tif.numpy()) > 30  # the same CMYK, JPEG-compressed
    assert delta_e(rgb, back_to_srgb(cmyk)).mean() < 11


def test_cmyk_pdf(tmp_path):
    pikepdf = pdf_tests.pikepdf()  # skips without it, except under CI
    tif = render(tmp_path, "c.tif", "--cmyk").numpy()
    for compression, exact in (("deflate", True), ("jpeg", False)):
        out = tmp_path / f"c-{compression}.pdf"
        assert run("render", *SIZE, "--cmyk", "--set", f"output.compression={compression}", "-o", out) == 0
        with pikepdf.open(out) as doc:
            xobj = doc.pages[0].Resources.XObject["/Im0"]
            assert xobj.ColorSpace == "/DeviceCMYK"
            (intent,) = doc.Root.OutputIntents
            assert intent.DestOutputProfile.N == 4 and intent.DestOutputProfile.read_bytes() == builtin_profile("cmyk")
            assert str(intent.Info) == "Chemical proof"  # the profile's own description
            samples = np.asarray(pikepdf.PdfImage(xobj).as_pil_image())
        if exact:
            np.testing.assert_array_equal(samples, tif)
        else:
            assert psnr(samples, tif) > 30
    cairo = shutil.which("pdftocairo")
    if cairo is None:
        return
    pages = []
    for compression in ("deflate", "jpeg"):  # poppler shows both alike: the JPEG's inverted CMYK is undone
        prefix = tmp_path / compression
        subprocess.run([cairo, "-r", "300", "-png", "-singlefile", str(tmp_path / f"c-{compression}.pdf"),
                        str(prefix)], check=True)
        pages.append(pyvips.Image.new_from_file(f"{prefix}.png").numpy()[..., :3])
    assert psnr(*pages) > 30


def test_from_a_cmyk_file_takes_the_picture_not_the_print_settings(tmp_path):
    assert run("render", *SIZE, "--cmyk", "--crop-marks", "-o", tmp_path / "c.pdf") == 0
    assert run("render", "--from", tmp_path / "c.pdf", "--width", 60, "-q", "-o", tmp_path / "preview.png") == 0
    small = pyvips.Image.new_from_file(str(tmp_path / "preview.png"))
    assert (small.width, small.height, small.bands) == (60, 40, 3)


def test_a_profile_file(tmp_path):
    icc = tmp_path / "press.icc"
    icc.write_bytes(builtin_profile("cmyk"))
    a = render(tmp_path, "a.tif", "--cmyk", icc)
    b = render(tmp_path, "b.tif", "--cmyk")
    assert bytes(a.get("icc-profile-data")) == icc.read_bytes()
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_intents_differ(tmp_path):
    rel = render(tmp_path, "r.tif", "--cmyk", "--intent", "relative").numpy()
    absolute = render(tmp_path, "a.tif", "--cmyk", "--intent", "absolute").numpy()
    assert np.abs(rel.astype(int) - absolute).mean() > 1


@pytest.mark.parametrize("name, args, message", [
    ("a.png", ["--cmyk"], "PNG cannot hold CMYK"),
    ("a.webp", ["--cmyk"], "WEBP cannot hold CMYK"),
    ("a.dzi", ["--cmyk"], "DZ cannot hold CMYK"),
    ("a.tif", ["--cmyk", "--set", "output.compression=jpeg"], "CMYK TIFF takes deflate, lzw or no compression"),
    ("a.tif", ["--cmyk", "missing.icc"], "--cmyk missing.icc: no such profile file"),
    ("a.tif", ["--cmyk", "SRGB"], "an ICC profile of RGB colour space, not CMYK"),
    ("a.tif", ["--cmyk", "NOTICC"], "not an ICC profile"),
    ("a.tif", ["--intent", "perceptual"], "--intent is the rendering intent of the CMYK conversion"),
    ("a.jpg", ["--set", "output.cmyk=cmyk", "--set", "output.intent=vivid"], "output.intent 'vivid' is unknown"),
    # read like any untrusted file, then checked by LittleCMS, all before rendering (issue 21, 4.1)
    ("a.tif", ["--cmyk", "/dev/zero"], "'/dev/zero' is not a regular file"),
    ("a.pdf", ["--cmyk", "FIFO"], "is not a regular file"),
    ("a.jpg", ["--set", 'output.cmyk="\\u0000"'], "a file name cannot hold a NUL byte"),
    ("a.tif", ["--cmyk", "FAKE"], "LittleCMS cannot use this profile"),
    ("a.tif", ["--cmyk", "DISPLAY"], "not an output (printer) profile"),
])
def test_cmyk_refused(tmp_path, capsys, name, args, message):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "SRGB").write_bytes(srgb_profile())
    (tmp_path / "NOTICC").write_bytes(b"\0" * 200)
    os.mkfifo(tmp_path / "FIFO")  # nobody writes it: reading it would hang
    cmyk = builtin_profile("cmyk")
    (tmp_path / "FAKE").write_bytes(cmyk[:128] + b"\0" * 4)  # a header alone: 132 bytes
    (tmp_path / "DISPLAY").write_bytes(cmyk[:12] + b"mntr" + cmyk[16:])
    files = ("SRGB", "NOTICC", "FIFO", "FAKE", "DISPLAY")
    args = [str(tmp_path / a) if a in files else a for a in args]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert run("render", *SIZE, *args, "-o", out / name) == 2
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert list(out.iterdir()) == []


CONVERT = """
import numpy as np
from bigcppn.formats.cmyk import to_cmyk
def rss():
    return int([l for l in open("/proc/self/status") if l.startswith("VmRSS")][0].split()[1]) // 1024
rows = np.random.default_rng(0).integers(0, 255, (256, 8000, 3), dtype=np.uint8)
to_cmyk(rows, "cmyk", "relative", 8)
before = rss()
for _ in range(30):
    to_cmyk(rows, "cmyk", "relative", 8)
print(rss() - before)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmRSS from /proc")
def test_converting_strips_keeps_nothing():
    # libvips' operation cache kept the last ~100 transforms and their strips: 150 MB at 12000 px wide
    import sys

    res = subprocess.run([sys.executable, "-c", CONVERT], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))})
    assert int(res.stdout.strip().splitlines()[-1]) < 30
