"""Every single-image format's writer holds the rendered pixels: lossless ones exactly, lossy ones closely.

(Was test_formats_agree.) The reference is ``render_array`` from the same renderer, so this checks the
writers, not the picture: the picture itself is checked against an independent float64 reference in
tests/network/test_model.py and by the golden outputs (benchmarks/golden.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import pyvips

import bigcppn

from conftest import psnr

CASES = [  # (file name, --set overrides, the least PSNR in dB: None = lossless, every pixel equal)
    ("a.tif", [], None),
    ("a.tif", ["output.compression=lzw"], None),
    ("a.tif", ["output.compression=none"], None),
    ("a.tif", ["output.compression=jpeg"], 30),
    ("a.tif", ["output.depth=16"], None),
    ("a.tif", ["network.color=\"grey\""], None),
    ("a.png", [], None),
    ("a.png", ["output.depth=16"], None),
    ("a.jpg", [], 30),
    ("a.webp", [], 27),  # a busy 150x100 picture at Q90 measured 29.6 dB
]


@pytest.mark.parametrize("name,sets,least", CASES, ids=[f"{n}{s}" for n, s, _ in CASES])
def test_the_writer_holds_the_pixels_the_same_renderer_made(tmp_path, name, sets, least):
    cfg = bigcppn.load_config(None, ["seed=4", "canvas.width=150", "canvas.height=100", "render.device=cpu",
                                     "render.tile=32", *sets])
    want = bigcppn.render_array(cfg)
    bigcppn.render_file(cfg, tmp_path / name)
    got = pyvips.Image.new_from_file(str(tmp_path / name)).numpy()
    got = got.reshape(want.shape[0], want.shape[1], -1)
    assert got.shape == want.shape and got.dtype == want.dtype
    if least is None:
        assert np.array_equal(got, want)
    else:
        assert psnr(got, want) > least
