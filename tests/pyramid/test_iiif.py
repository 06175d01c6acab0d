"""IIIF Image API 3, level 0, complete: the validator's level-0 tests pass against the static folder.

The ``iiif-validator`` package (the test extras install it) runs its tests against a server; here that is
``http.server`` on 127.0.0.1 serving the folder ``bigcppn pyramid --layout iiif3`` wrote. Its level-0 tests
for version 3.0 are ``info_json``, ``id_basic``, ``format_jpg``, ``size_nofull`` and ``id_squares``; the
first four apply to any image and must pass. ``id_squares`` checks the colours of the validator's own test
image (1000×1000 px of 10×10 coloured squares, identifier 67352ccc-d1b0-11e1-89ae-279075081939), so it
cannot pass on a CPPN picture and is not run.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import pyvips

from bigcppn import cli

LEVEL0 = ("info_json", "id_basic", "format_jpg", "size_nofull")


def run(*args) -> int:
    return cli.main([str(a) for a in args])


def validator():
    try:
        from iiif_validator.validator import ImageAPI, TestSuite, ValidationInfo
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("iiif-validator is not installed (the test extras install it); CI is set")
        pytest.skip("iiif-validator is not installed (pip install iiif-validator; the test extras have it)")
    return ImageAPI, TestSuite, ValidationInfo


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path):
    """A static server of ``tmp_path`` on 127.0.0.1; yields its host:port."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def validate(host: str, identifier: str) -> dict[str, str]:
    """Each applicable level-0 test's outcome: "ok" or what the validator said."""
    ImageAPI, TestSuite, ValidationInfo = validator()
    suite = TestSuite(ValidationInfo())
    listed = {name for name, info in suite.list_tests("3.0").items() if info["level"] == 0}
    assert set(LEVEL0) <= listed and listed - set(LEVEL0) == {"id_squares"}, listed
    out = {}
    for name in LEVEL0:
        result = ImageAPI(identifier, host, "", "http", "", "3.0", debug=False)
        suite.run_test(name, result)
        out[name] = "ok" if result.exception is None else str(result.exception)
    return out


def image(path: Path) -> pyvips.Image:
    return pyvips.Image.new_from_file(str(path))


@pytest.mark.parametrize("width,height", [(700, 300), (200, 150)])  # several tiles; one tile
def test_validator_level0_passes(tmp_path, server, width, height):
    assert run("pyramid", "--layout", "iiif3", "-o", tmp_path / "pic", "--width", width, "--height", height,
               "--base-url", f"http://{server}/pic", "-q") == 0
    assert validate(server, "pic") == {name: "ok" for name in LEVEL0}


def test_full_max_and_every_size_exist(tmp_path):
    out = tmp_path / "pic"
    assert run("pyramid", "--layout", "iiif3", "-o", out, "--width", 900, "--height", 600, "--max-size", 512,
               "--tile", 256, "-q") == 0
    info = json.loads((out / "info.json").read_text())
    assert (info["maxWidth"], info["maxHeight"]) == (512, 512)
    full = image(out / "full/max/0/default.jpg")
    assert (full.width, full.height) == (512, 341)  # 900x600 scaled to fit 512x512
    assert {(s["width"], s["height"]) for s in info["sizes"]} == {(225, 150), (512, 341)}
    for s in info["sizes"]:
        f = image(out / f"full/{s['width']},{s['height']}/0/default.jpg")
        assert (f.width, f.height) == (s["width"], s["height"])


def test_one_tile_image_lists_only_sizes_it_has(tmp_path):
    # the size listed was W,H, but the only file was full/max/0/default.jpg
    out = tmp_path / "pic"
    assert run("pyramid", "--layout", "iiif3", "-o", out, "--width", 200, "--height", 150, "-q") == 0
    info = json.loads((out / "info.json").read_text())
    assert info["sizes"] == [{"width": 200, "height": 150}]
    assert (out / "full/200,150/0/default.jpg").read_bytes() == (out / "full/max/0/default.jpg").read_bytes()
    assert info["maxWidth"] == info["maxHeight"] == 2048


def test_full_image_is_rendered_from_the_network_supersampled(tmp_path):
    """At an exact halving, full/max is the level at scale factor 2 (the same K×K samples), not a shrink."""
    out = tmp_path / "pic"
    assert run("pyramid", "--layout", "iiif3", "-o", out, "--width", 1024, "--height", 512, "--max-size", 512,
               "--tile", 256, "--format", "png", "-q") == 0
    full = image(out / "full/max/0/default.png").numpy()
    assert full.shape == (256, 512, 3)
    level = np.zeros_like(full)  # the tiles at scale factor 2: regions of 512 base px, 256 level px
    for x in (0, 512):
        level[:, x // 2 : x // 2 + 256] = image(out / f"{x},0,512,512/256,256/0/default.png").numpy()
    np.testing.assert_array_equal(full, level)


def test_max_size_is_checked_before_rendering(tmp_path, capsys):
    assert run("pyramid", "--layout", "iiif3", "-o", tmp_path / "p", "--max-size", 100, "-q") == 2
    assert "--max-size 100 is smaller than the tile (256)" in capsys.readouterr().err
    assert run("pyramid", "-o", tmp_path / "p.dzi", "--max-size", 1000, "-q") == 2
    assert "--max-size is for the iiif3 layout" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
