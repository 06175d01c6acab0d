"""Input that a render cannot trust (issue 21, section 4): ``--from`` files and colours the network produces.

(The ``--cmyk`` profile cases are in tests/formats/test_cmyk.py::test_cmyk_refused.)
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bigcppn import cli


def run(*args) -> int:
    return cli.main([str(a) for a in args])


def bigcppn(*args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bigcppn", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_from_a_tiff_with_a_huge_description_is_refused_before_libvips_loads_it(tmp_path):
    """libvips' TIFF loader crashed (exit 139) on a 32 MB ImageDescription; bigcppn writes a few KB."""
    import tifffile

    tif = tmp_path / "big.tif"
    tifffile.imwrite(tif, np.zeros((8, 8, 3), np.uint8), description="# bigcppn config\n" + "x" * (32 << 20))
    proc = bigcppn("render", "--from", tif, "--width", 16, "-o", tmp_path / "out.png")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and "TIFF text metadata is 33.6 MB" in proc.stderr, proc.stderr
    assert not (tmp_path / "out.png").exists()


SWAP = """
import os, stat, sys
from bigcppn.formats import provenance
from bigcppn import cli

src, fifo = sys.argv[1], sys.argv[2]
real = stat.S_ISREG


class Swapping:  # the checked name is swapped for a FIFO (nobody writes it) right after the check
    def __getattr__(self, name):
        return getattr(stat, name)

    @staticmethod
    def S_ISREG(mode):
        ok = real(mode)
        os.replace(fifo, src)
        return ok


provenance.stat = Swapping()
sys.exit(cli.main(["render", "--from", src, "--width", "16", "-q", "-o", sys.argv[3]]))
"""


@pytest.mark.parametrize("name", ["a.png", "a.tif", "a.pdf", "a.szi"])
def test_from_reads_the_file_it_checked(tmp_path, name):
    """Open once, check the open file, read from it: a FIFO swapped in after the check changes nothing."""
    import os

    src = tmp_path / name
    assert run("render", "--seed", 7, "--width", 24, "-q", "-o", src) == 0
    os.mkfifo(tmp_path / "fifo")
    proc = subprocess.run([sys.executable, "-c", SWAP, src, tmp_path / "fifo", tmp_path / "out.png"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.png").is_file()


NAN = ["--width", 512, "--height", 512, "-q", "--seed", 23, "--set", "network.hidden=[16,16,16,16,16,16]",
       "--set", 'network.activation="identity"', "--set", "network.bias=false",
       "--set", 'network.output_activation="sin"', "--set", "network.weight_scale=1e5"]


@pytest.mark.parametrize("command,name", [("render", "n.png"), ("render", "n.tif"), ("pyramid", "n.dzi")])
def test_colours_that_are_not_finite_fail_naming_the_region(tmp_path, capsys, command, name):
    """The network is finite on the 64x64 preview (the check before rendering passes) and overflows only
    toward a corner: each batch is checked where it is produced, and the run fails instead of writing NaN as 0."""
    assert run(command, *NAN, "-o", tmp_path / name) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not finite" in err and "the pixels x 0..255, y 0..255" in err, err
    assert not (tmp_path / name).exists()
