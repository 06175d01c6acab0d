"""The public Python API: arrays, files, plans and pyramids from ``import bigcppn``."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest
import pyvips

import bigcppn
from bigcppn import api


def test_the_public_names_are_exported():
    for name in ("load_config", "Config", "render_array", "render_file", "plan", "render_pyramid",
                 "UserError", "RenderError"):
        assert name in bigcppn.__all__ and hasattr(bigcppn, name)


def test_importing_bigcppn_loads_neither_torch_nor_pyvips():
    import subprocess
    import sys

    code = "import sys, bigcppn; print('torch' in sys.modules, 'pyvips' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_docstring_examples_run():
    failed, tried = doctest.testmod(api)
    assert tried >= 2 and failed == 0


def test_render_array_shape_dtype_and_depth():
    a = bigcppn.render_array(width=80, height=50, seed=3, device="cpu")
    assert a.shape == (50, 80, 3) and a.dtype == np.uint8
    b = bigcppn.render_array(width=80, height=50, seed=3, device="cpu", depth=16)
    assert b.dtype == np.uint16
    # the 16-bit picture is the 8-bit one, finer: within one 8-bit level
    assert np.abs(b.astype(np.int64) / 257 - a).max() <= 1


@pytest.mark.parametrize("window", [(0, 0, 1, 1), (17, 9, 40, 23), (79, 49, 1, 1), (0, 0, 80, 50)])
def test_a_window_is_that_region_of_the_whole_render(window):
    cfg = bigcppn.load_config(None, ["seed=5", "canvas.width=80", "canvas.height=50", "render.device=cpu",
                                     "render.batch=300"])
    whole = bigcppn.render_array(cfg)
    x, y, w, h = window
    assert np.array_equal(bigcppn.render_array(cfg, window=window), whole[y : y + h, x : x + w])


@pytest.mark.parametrize("window", [(70, 0, 20, 10), (-1, 0, 5, 5), (0, 0, 0, 5)])
def test_a_window_outside_the_canvas_is_a_user_error(window):
    with pytest.raises(bigcppn.UserError, match="window"):
        bigcppn.render_array(width=80, height=50, device="cpu", window=window)


def test_one_side_keeps_the_configs_aspect():
    cfg = bigcppn.load_config(None, ["canvas.width=400", "canvas.height=200", "render.device=cpu"])
    assert bigcppn.render_array(cfg, width=60).shape[:2] == (30, 60)


def test_render_file_writes_what_render_array_renders(tmp_path):
    cfg = bigcppn.load_config(None, ["seed=9", "canvas.width=120", "canvas.height=70", "render.device=cpu"])
    seen = []
    result = bigcppn.render_file(cfg, tmp_path / "a.png", progress=lambda done, total: seen.append((done, total)))
    assert result.path == tmp_path / "a.png" and (result.width, result.height) == (120, 70)
    assert result.bytes == (tmp_path / "a.png").stat().st_size and result.seconds > 0
    assert seen and seen[-1] == (120 * 70, 120 * 70)
    got = pyvips.Image.new_from_file(str(result.path)).numpy()
    assert np.array_equal(got, bigcppn.render_array(cfg))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_render_file_refuses_bad_input_before_rendering(tmp_path):
    with pytest.raises(bigcppn.UserError, match="extension"):
        bigcppn.render_file(None, tmp_path / "a.bmp")
    with pytest.raises(bigcppn.UserError, match="does not exist"):
        bigcppn.render_file(None, tmp_path / "no" / "a.png")
    assert list(tmp_path.iterdir()) == []


def test_plan_is_what_plan_json_prints(tmp_path, capsys):
    cfg = bigcppn.load_config(None, ["canvas.width=640", "canvas.height=480", "render.device=cpu"])
    info = bigcppn.plan(cfg, tmp_path / "a.tif")
    assert (info.width, info.height, info.format) == (640, 480, "tiff")
    assert info.estimated_seconds is not None and info.estimated_seconds >= 0
    from bigcppn.cli import main

    assert main(["plan", "--width", "640", "--height", "480", "--device", "cpu", "-o", str(tmp_path / "a.tif"),
                 "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    mine = info.as_dict()
    for d in (printed, mine):
        d.pop("network_mpix_per_s"), d.pop("estimated_seconds"), d.pop("writer_mpix_per_s", None)
        d.pop("estimated_seconds_range", None)  # timed, as estimated_seconds
    assert printed == mine


def test_render_pyramid_writes_a_complete_pyramid_and_resumes(tmp_path):
    cfg = bigcppn.load_config(None, ["seed=2", "canvas.width=300", "canvas.height=200", "render.device=cpu"])
    r = bigcppn.render_pyramid(cfg, tmp_path / "p.dzi")
    assert r.path == tmp_path / "p.dzi" and r.path.is_file() and r.page.is_file()
    assert r.written == r.tiles and r.levels == 10
    again = bigcppn.render_pyramid(cfg, tmp_path / "p.dzi")
    assert again.written == 0 and again.skipped == r.tiles
    with pytest.raises(bigcppn.UserError, match="another render"):
        bigcppn.render_pyramid(bigcppn.load_config(None, ["seed=3", "canvas.width=300", "canvas.height=200"]),
                               tmp_path / "p.dzi")
    folder = bigcppn.render_pyramid(cfg, tmp_path / "iiif", layout="iiif3")
    assert folder.path == tmp_path / "iiif" / "info.json"


def test_a_pyramid_folder_has_one_owner(tmp_path):
    from bigcppn.pyramid.store import pyramid_output

    out = pyramid_output(tmp_path / "p", "zoomify")
    with out.lock():
        with pytest.raises(bigcppn.UserError, match="another bigcppn run"):
            with pyramid_output(tmp_path / "p", "zoomify").lock():
                pass
    with out.lock():  # released: the next run may take it
        pass
    assert not any(p.name.endswith(".lock") for p in (tmp_path / "p").iterdir())
