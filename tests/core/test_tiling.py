"""The planner is pure arithmetic: tiles cover the canvas exactly once, batches cover strips."""

import math
import sys

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bigcppn.core.geometry import Canvas, View, pixel_coord

from bigcppn.core.tiling import make_tiling, split_row

sizes = st.integers(min_value=1, max_value=700)


@settings(deadline=None, max_examples=150)
@given(w=sizes, h=sizes, tile=st.integers(5, 300), batch=st.integers(1, 200_000),
       budget=st.one_of(st.just(None), st.integers(1, 50_000)))
@example(w=1, h=1, tile=1, batch=1, budget=None)
@example(w=37, h=23, tile=1, batch=3, budget=None)
@example(w=4096, h=3, tile=256, batch=65536, budget=None)
@example(w=257, h=513, tile=256, batch=1, budget=None)
@example(w=600, h=50, tile=64, batch=4096, budget=1000)
def test_tiles_cover_canvas_exactly_once(w, h, tile, batch, budget):
    plan = make_tiling(Canvas(w, h), tile, batch) if budget is None else make_tiling(Canvas(w, h), tile, batch, budget)
    cover = np.zeros((h, w), dtype=np.int32)
    batches = np.zeros((h, w), dtype=np.int32)
    n_tiles = n_batches = 0
    y = 0
    for i, strip in enumerate(plan.strips()):
        assert strip.index == i and strip.y == y, "strips run top to bottom without gaps"
        y += strip.height
        assert strip.window.width == w, "strips are full width"
        for t in strip.tiles:
            assert t.width <= tile and t.height <= tile and t.y == strip.y and t.height == strip.height
            cover[t.y : t.y + t.height, t.x : t.x + t.width] += 1
            n_tiles += 1
        for b in strip.batches:
            assert b.pixels <= max(batch, tile * tile), "a batch holds at most one tile beyond the budget"
            batches[b.y : b.y + b.height, b.x : b.x + b.width] += 1
            n_batches += 1
        if budget is not None:
            assert strip.window.pixels <= max(budget, w), "a strip stays within its budget (one row at least)"
    assert y == h
    assert (cover == 1).all()
    assert (batches == 1).all()
    assert n_tiles == plan.tile_count
    assert n_batches == plan.batch_count
    assert plan.strip_count == math.ceil(h / plan.strip_height)
    assert plan.strip_height == min(tile, h) or budget is not None


@given(length=st.integers(0, 10_000), step=st.integers(1, 1000))
def test_split_row_partitions(length, step):
    runs = split_row(length, step)
    assert sum(n for _, n in runs) == length
    assert all(0 < n <= step for _, n in runs)
    assert all(s == i * step for i, (s, _) in enumerate(runs))


@given(size=st.integers(1, 10**6), zoom=st.floats(1e-3, 1e6), c=st.floats(-10, 10))
def test_pixel_centres_are_symmetric_about_the_centre(size, zoom, c):
    pitch = View(zoom=zoom).pitch(Canvas(size, size))
    first = pixel_coord(0, size, c, pitch)
    last = pixel_coord(size - 1, size, c, pitch)
    assert math.isclose((first + last) / 2, c, abs_tol=1e-9 * (1 + abs(c)))
    assert math.isclose(last - first, (size - 1) * pitch, rel_tol=1e-9, abs_tol=1e-12)


@given(w=st.integers(1, 10**5), h=st.integers(1, 10**5))
def test_one_pitch_shorter_side_spans_the_view(w, h):
    view = View(zoom=2.0)
    pitch = view.pitch(Canvas(w, h))
    assert math.isclose(min(w, h) * pitch, 0.5)
    # the longer side shows more of the plane at the same pitch: the aspect is kept
    assert math.isclose(max(w, h) * pitch, 0.5 * max(w, h) / min(w, h))


def test_planner_is_pure():
    import subprocess

    code = "import sys, bigcppn.core.tiling; print(any(m in sys.modules for m in ('torch', 'pyvips')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("bad", [dict(tile=0, batch=1), dict(tile=4, batch=0)])
def test_bad_plan_arguments(bad):
    with pytest.raises(ValueError):
        make_tiling(Canvas(10, 10), bad["tile"], bad["batch"])


def test_wide_canvases_get_shorter_strips():
    """Memory is bounded by the strip: past 32768 px wide a strip has fewer rows than the tile."""
    assert make_tiling(Canvas(32768, 1000), 256, 65536).strip_height == 256
    wide = make_tiling(Canvas(200_000, 1000), 256, 65536)
    assert wide.strip_height == 41 and wide.strip(0).window.pixels <= 8 * 1024**2


@settings(max_examples=200, deadline=None)
@given(across=st.integers(1, 9), down=st.integers(1, 9), data=st.data())
def test_tile_positions_cover_a_rectangle_row_major(across, down, data):
    from bigcppn.core.geometry import tile_positions

    r0 = data.draw(st.integers(0, down - 1))
    r1 = data.draw(st.integers(r0 + 1, down))
    c0 = data.draw(st.integers(0, across - 1))
    c1 = data.draw(st.integers(c0 + 1, across))
    places = tile_positions((r1 - r0) * (c1 - c0), (range(r0, r1), range(c0, c1)), across, down, 0, "level 0")
    assert places == sorted(places) and places == [(r, c) for r in range(r0, r1) for c in range(c0, c1)]
    # the default: whole rows after those already placed
    assert tile_positions(across * 2, None, across, max(down, 2 + r0), r0 * across, "x")[0] == (r0, 0)
    if across > 1:
        with pytest.raises(ValueError, match="whole tile rows of level 3"):
            tile_positions(across + 1, None, across, down + 2, 0, "level 3")
    with pytest.raises(ValueError, match="do not fill"):
        tile_positions(1, (range(0, down + 1), range(across)), across, down, 0, "level 0")


def test_a_cmyk_plan_counts_the_strip_conversion():
    import bigcppn

    cfg = bigcppn.load_config(None, [], {"canvas.width": 8192, "canvas.height": 4096})
    rgb = bigcppn.plan(cfg, "x.tif", measure=False)
    cmyk = bigcppn.plan(bigcppn.load_config(None, [], {"canvas.width": 8192, "canvas.height": 4096,
                                                       "output.cmyk": "cmyk"}), "x.tif", measure=False)
    extra = cmyk.estimated_peak_bytes - rgb.estimated_peak_bytes
    assert 30e6 < extra < 60e6  # measured: +43 MB peak RSS for a CMYK TIFF 8192 px wide
