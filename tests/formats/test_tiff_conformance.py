"""TIFFs other tools take unchanged: exiftool edits them, OpenSlide reads them, each level says its resolution.

Both TIFF roads are checked: bigcppn's own writer (deflate, LZW, JPEG) and libvips' tiffsave
(uncompressed). exiftool (Debian's libimage-exiftool-perl) is installed by .ci/run, OpenSlide
(openslide-bin, openslide-python) by the test extras; without them the tests that need them skip,
except under CI, where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import pyvips
import tifffile

from bigcppn.config import OutputConfig
from bigcppn.formats.registry import format_for
from bigcppn.formats.icc import profile_for
from bigcppn.formats.writers import write_image

pyvips.cache_set_max(0)

DPI = 300
# (compression, depth, bands): own writer for deflate/lzw/jpeg, libvips for none
CASES = [("deflate", 8, 3), ("lzw", 8, 3), ("jpeg", 8, 3), ("deflate", 16, 3), ("lzw", 16, 1), ("jpeg", 8, 1),
         ("none", 8, 3), ("none", 16, 1)]


def need(found: object, what: str) -> None:
    if not found:
        reason = f"{what} is not installed (.ci/run and the test extras install it)"
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI is set, so this is a failure, not a skip)")
        pytest.skip(reason)


def save(path: Path, compression: str, depth: int, bands: int, quality: int = 75) -> None:
    """A 1000×700 picture written by the road a render of ``path`` takes (levels 1000, 500, 250 wide)."""
    rng = np.random.default_rng(bands * depth)
    y, x = np.mgrid[0:700, 0:1000]
    top = 255 if depth == 8 else 65535
    a = (np.sin(x[..., None] / 37.0 + y[..., None] / 91.0 + np.arange(bands)) + 1) * top / 2.2
    a = (a + rng.integers(0, top // 8, a.shape)).clip(0, top).astype(np.uint8 if depth == 8 else np.uint16)
    image = pyvips.Image.new_from_array(a)
    if depth == 16:
        image = image.copy(interpretation="rgb16" if bands == 3 else "grey16")
    out = OutputConfig(compression=compression, depth=depth, quality=quality)
    write_image(image, path, format_for(path), out, dpi=DPI, description="# bigcppn config\nseed = 7\n")


def levels(path: Path) -> list[np.ndarray]:
    """Every level's pixels, as libvips and tifffile read them (they must agree)."""
    with tifffile.TiffFile(path) as tf:
        out = [p.asarray() for p in tf.pages]
    for i, a in enumerate(out):
        v = pyvips.Image.new_from_file(str(path), page=i).numpy()
        np.testing.assert_array_equal(v.reshape(a.shape), a, err_msg=f"libvips and tifffile disagree on level {i}")
    return out


@pytest.mark.parametrize("compression,depth,bands", CASES)
def test_exiftool_edits_it_and_every_level_keeps_its_metadata(tmp_path, compression, depth, bands):
    # one shared XMP and ICC for all levels made exiftool stop: "XMP pointer references
    # previous XMP directory", 0 files updated (with -m, lower levels lost their ICC and XMP)
    exiftool = shutil.which("exiftool")
    need(exiftool, "exiftool")
    path = tmp_path / "a.tif"
    save(path, compression, depth, bands)
    before = levels(path)
    run = subprocess.run([exiftool, "-Artist=x", str(path)], capture_output=True, text=True)
    assert run.returncode == 0 and "1 image files updated" in run.stdout, run.stdout + run.stderr
    with tifffile.TiffFile(path) as tf:
        assert tf.pages[0].tags[315].value == "x"
        assert len(tf.pages) == len(before) == 3
        for page in tf.pages:
            assert page.tags[34675].value == profile_for(bands)
            assert b"seed = 7" in page.tags[700].value
    for level, (a, b) in enumerate(zip(levels(path), before, strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"level {level} changed")


@pytest.mark.parametrize("compression", ["deflate", "jpeg", "none"])
def test_reduced_levels_say_their_own_resolution(tmp_path, compression):
    # a pixel of level k covers 2^k × 2^k of the full one; libvips' tiffsave repeats the full
    # resolution in every level, and bigcppn rewrites it there too
    path = tmp_path / "r.tif"
    save(path, compression, 8, 3)
    with tifffile.TiffFile(path) as tf:
        for level, page in enumerate(tf.pages):
            r = Fraction(DPI, 2**level)
            for tag in (282, 283):
                assert Fraction(*page.tags[tag].value) == r, (level, tag)
            assert page.tags[296].value == 2  # inch
    for level in range(3):
        image = pyvips.Image.new_from_file(str(path), page=level)
        assert image.xres * 25.4 == pytest.approx(DPI / 2**level)


@pytest.mark.parametrize("compression,depth,bands", [c for c in CASES if c[1] == 8])
def test_openslide_reads_every_level_as_libvips_does(tmp_path, compression, depth, bands):
    try:
        import openslide
    except ImportError:
        openslide = None
    need(openslide, "OpenSlide (openslide-python, openslide-bin)")
    path = tmp_path / "o.tif"
    save(path, compression, depth, bands)
    expected = levels(path)
    slide = openslide.OpenSlide(path)
    try:
        assert slide.properties["openslide.vendor"] == "generic-tiff"
        assert slide.level_count == 3 and slide.level_downsamples == (1.0, 2.0, 4.0)
        assert slide.color_profile is not None and slide.color_profile.tobytes() == profile_for(bands)
        for level, want in enumerate(expected):
            got = np.asarray(slide.read_region((0, 0), level, slide.level_dimensions[level]))
            want = want.reshape(want.shape[0], want.shape[1], -1)
            np.testing.assert_array_equal(got[..., :3], np.broadcast_to(want, got[..., :3].shape))
    finally:
        slide.close()
