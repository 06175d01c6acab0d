"""Memory is bounded by strips and batches, not by the canvas (slow: renders 268 MPix)."""

import json
import subprocess
import sys

import pytest

CHILD = """
import json, resource, sys
from bigcppn.cli import main
rc = main(["render", "-o", sys.argv[1], "--width", sys.argv[2], "--height", sys.argv[3], "-q", *sys.argv[4:]])
print(json.dumps({"rc": rc, "peak_mb": next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024}))
"""


def peak_rss_mb(out, side, height=None, *extra):
    res = subprocess.run([sys.executable, "-c", CHILD, str(out), str(side), str(height or side), *extra],
                         capture_output=True, text=True, check=True)
    d = json.loads(res.stdout.strip().splitlines()[-1])
    assert d["rc"] == 0
    return d["peak_mb"]


@pytest.mark.slow
def test_peak_rss_does_not_grow_with_the_canvas(tmp_path):
    small = peak_rss_mb(tmp_path / "small.tif", 2048)
    big = peak_rss_mb(tmp_path / "big.tif", 16384)
    assert big - small < 200, f"16384² peaked at {big:.0f} MB, 2048² at {small:.0f} MB"
    assert big < 1024


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--cmyk"]])
def test_pdf_peak_rss_does_not_grow_with_the_canvas(tmp_path, extra):
    # measured on the 2-core CPU: 275 MB at 4000x5600 and 308 MB at 12000x16800 (RGB, deflate)
    small = peak_rss_mb(tmp_path / "small.pdf", 4000, 5600, *extra)
    big = peak_rss_mb(tmp_path / "big.pdf", 12000, 16800, *extra)
    assert big - small < 120, f"12000x16800 peaked at {big:.0f} MB, 4000x5600 at {small:.0f} MB"
    assert big < 1024
