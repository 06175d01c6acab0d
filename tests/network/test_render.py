"""The renderer: tiles agree with a whole render, the picture does not depend on resolution."""

import numpy as np
import pytest
import torch

from bigcppn.core.geometry import View

from bigcppn.core.tiling import make_tiling
from bigcppn.network.strips import Renderer, StripStream, renderer_for
from bigcppn.errors import RenderError

from conftest import psnr, small_config


def render(cfg, device, tile=None, batch=None):
    r, plan = renderer_for(cfg, device)
    if tile or batch:
        plan = make_tiling(plan.canvas, tile or plan.tile, batch or plan.batch_pixels)
    return r.render(plan)


def test_tiling_invariance(device):
    cfg = small_config(300, 200)
    whole = render(cfg, device, tile=300, batch=300 * 300)  # one tile, one batch
    for tile in (64, 256):
        for batch in (1, 3 * tile * tile):
            tiled = render(cfg, device, tile=tile, batch=batch)
            diff = np.abs(tiled.astype(int) - whole.astype(int))
            assert diff.max() <= 1, f"tile {tile}, batch {batch}: max difference {diff.max()} levels"
            assert (diff > 0).mean() < 1e-3, "at most a few pixels may round differently"


def test_resolution_independence(device):
    """A 2048² render box-filtered down ×4 matches the 512² render."""
    big = render(small_config(2048, 2048), device).astype(np.float64)
    small = render(small_config(512, 512), device)
    down = big.reshape(512, 4, 512, 4, 3).mean(axis=(1, 3))
    assert psnr(np.round(down), small) >= 30


def test_non_square_canvas_keeps_the_aspect(device):
    """A 512x256 canvas is the middle band of a 512x512 canvas showing twice the span."""
    wide = render(small_config(512, 256), device)
    square = render(small_config(512, 512, **{"view.zoom": 0.5}), device)
    assert wide.shape == (256, 512, 3)
    diff = np.abs(wide.astype(int) - square[128:384].astype(int))
    assert diff.max() <= 1


def test_zoom_and_centre_move_the_view(device):
    """Zooming ×2 about a centre shows the matching quarter of the unzoomed picture, at double resolution."""
    full = render(small_config(512, 512), device)
    quarter = render(small_config(256, 256, **{"view.zoom": 2.0, "view.center": [0.25, 0.25]}), device)
    assert np.abs(full[256:, 256:].astype(int) - quarter.astype(int)).max() <= 1


def test_same_seed_same_pixels_other_seed_other_pixels(device):
    a = render(small_config(128, 128, seed=11), device)
    b = render(small_config(128, 128, seed=11), device)
    c = render(small_config(128, 128, seed=12), device)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("color, bands", [("rgb", 3), ("grey", 1), ("hsv", 3)])
@pytest.mark.parametrize("depth", [8, 16])
def test_strip_shapes_and_dtypes(device, color, bands, depth):
    cfg = small_config(70, 50, f"network.color={color}", f"output.depth={depth}", **{"render.tile": 16})
    r, plan = renderer_for(cfg, device)
    strips = list(r.strips(plan))
    assert [s.shape[0] for s in strips] == [16, 16, 16, 2]
    assert all(s.shape[1:] == (70, bands) for s in strips)
    assert all(s.dtype == (np.uint8 if depth == 8 else np.uint16) for s in strips)
    img = np.concatenate(strips)
    if depth == 16:
        eight = render(small_config(70, 50, f"network.color={color}"), device)
        # the 16-bit picture is the 8-bit one with more precision
        assert np.abs(img / 257.0 - eight).max() <= 0.51


def test_strip_stream_yields_in_order_and_reports_errors(device):
    cfg = small_config(64, 100, **{"render.tile": 16})
    r, plan = renderer_for(cfg, device)
    streamed = np.concatenate(list(StripStream(r, plan, queue_size=2)))
    assert np.array_equal(streamed, r.render(plan))

    class Broken(Renderer):
        calls = 0

        def render_strip(self, strip, **kw):
            Broken.calls += 1
            if Broken.calls == 3:
                raise RuntimeError("boom")
            return super().render_strip(strip, **kw)

    broken = Broken(r.model, plan.canvas, View(), device)
    with pytest.raises(RenderError, match="boom"):
        list(StripStream(broken, plan))


def test_float64_coordinates_resolve_deep_zoom(device):
    """At a zoom of 10^9 neighbouring pixels still get distinct coordinates (float32 would not)."""
    cfg = small_config(64, 64, **{"view.zoom": 1e9, "view.center": [0.123456789, -0.3]})
    r, plan = renderer_for(cfg, device)
    xs = r.sampling.axis(0, 64, True, device)
    assert torch.unique(xs).numel() == 64
    assert torch.unique(xs.float()).numel() < 8


def test_cancel_stops_a_strip_between_batches():
    # one strip of 64 batches: cancelling after the third must not render the other 61
    cfg = small_config(1024, 16, **{"render.tile": 16, "render.batch": 256, "render.device": "cpu"})
    r, plan = renderer_for(cfg, torch.device("cpu"))
    assert len(plan.strip(0).batches) == 64
    stream = StripStream(r, plan, queue_size=1, workers=1)
    calls = []
    original = r.render_window

    def counting(win):
        calls.append(win)
        if len(calls) == 3:
            stream.cancel()
        return original(win)

    r.render_window = counting
    assert list(stream) == []
    stream.join()
    assert len(calls) == 3 and stream.error is None
