"""Flat tiled TIFF (``--flat``, ``output.pyramid=false``): one page, for RIPs that refuse multi-page TIFFs.

Both TIFF roads: bigcppn's writer (deflate, LZW, JPEG tiles) and libvips' tiffsave (uncompressed). Read back by
two independent readers, tifffile and libvips, and by exiftool where it is installed.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import pyvips
import tifffile

from bigcppn import cli

pyvips.cache_set_max(0)
SIZE = ["--seed", "5", "--width", "600", "--height", "340", "--tile", "64", "-q"]


def run(*args) -> int:
    return cli.main([str(a) for a in args])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref.png"
    assert run("render", *SIZE, "-o", out) == 0
    return pyvips.Image.new_from_file(str(out)).numpy()


@pytest.mark.parametrize("how", [["--flat"], ["--set", "output.pyramid=false"]])
@pytest.mark.parametrize("compression", ["deflate", "none"])  # bigcppn's TIFF writer; libvips' tiffsave
def test_flat_tiff_has_one_tiled_page(tmp_path, reference, how, compression):
    out = tmp_path / "flat.tif"
    assert run("render", *SIZE, *how, "--set", f"output.compression={compression}", "-o", out) == 0
    with tifffile.TiffFile(out) as tf:
        assert len(tf.pages) == 1 and not tf.series[0].levels[1:]
        page = tf.pages[0]
        assert page.is_tiled and (page.tilewidth, page.tilelength) == (256, 256)
        assert page.compression == (tifffile.COMPRESSION.ADOBE_DEFLATE if compression == "deflate"
                                    else tifffile.COMPRESSION.NONE)
        np.testing.assert_array_equal(page.asarray(), reference)
    image = pyvips.Image.new_from_file(str(out))
    assert image.get("n-pages") == 1
    np.testing.assert_array_equal(image.numpy(), reference)
    assert image.xres * 25.4 == pytest.approx(300)


def test_pyramid_is_still_the_default(tmp_path):
    out = tmp_path / "p.tif"
    assert run("render", *SIZE, "-o", out) == 0
    with tifffile.TiffFile(out) as tf:
        assert [p.shape[:2] for p in tf.pages] == [(340, 600), (170, 300), (85, 150)]


def test_exiftool_sees_one_image(tmp_path):
    exiftool = shutil.which("exiftool")
    if exiftool is None:
        pytest.skip("exiftool is not installed (.ci/run installs it)")
    out = tmp_path / "flat.tif"
    assert run("render", *SIZE, "--flat", "-o", out) == 0
    res = subprocess.run([exiftool, "-a", "-ImageWidth", "-SubfileType", str(out)], capture_output=True,
                         text=True, check=True)
    assert res.stdout.count("Image Width") == 1 and "600" in res.stdout


def test_flat_help_and_refusal(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["render", "--help"])
    assert "--flat" in capsys.readouterr().out
    assert run("render", *SIZE, "--flat", "-o", tmp_path / "a.dzi") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--flat" in err and "DZ" in err
    assert list(tmp_path.iterdir()) == []
