"""plan's time estimate: what it measures and how (the inputs), never how fast this machine is."""

import threading

import numpy as np
import pytest

import bigcppn
import bigcppn.estimate.plan as estimate
import bigcppn.estimate.measure as measure
import bigcppn.formats.target as sink
from bigcppn.job import resolve_job
from bigcppn.estimate.measure import PyramidRates, Rates, measure_render
from bigcppn.network.strips import Renderer, renderer_for

from conftest import small_config


def test_the_network_is_timed_as_a_render_runs_it(monkeypatch):
    cfg = small_config(2000, 1500, "render.tile=128")
    renderer, plan = renderer_for(cfg)
    calls = []
    original = Renderer.render_window

    def recorded(self, win):
        calls.append((threading.current_thread().name, win))
        return original(self, win)

    monkeypatch.setattr(Renderer, "render_window", recorded)
    monkeypatch.setattr(measure, "measure_writer", lambda job, sample, rows: (50.0, 1.0))
    rates = measure_render(resolve_job(cfg, "x.tif"), renderer, plan, workers=2)
    threads = {name for name, _w in calls}
    assert len(threads) == 2 and all(n.startswith("bigcppn-measure") for n in threads), "strip workers in parallel"
    batch = (plan.tiles_per_batch * plan.tile, plan.strip_height)
    assert all((w.width, w.height) == batch for _n, w in calls), "the renderer's own batches"
    assert len({(w.x, w.y) for _n, w in calls}) >= 8, "spread over the canvas"
    # a warm-up round, then timed rounds until MIN_SECONDS and MIN_ROUNDS
    assert len(calls) >= 2 * (measure.MIN_ROUNDS + 1)
    assert rates.network_mpix_s > 0 and rates.writer_mpix_s == 50.0


@pytest.mark.parametrize("name, flags, fmt, compression", [
    ("x.tif", {"compression": "lzw"}, "tiff", "lzw"),
    ("x.png", {}, "png", "deflate"),
    ("x.jpg", {"quality": 40}, "jpeg", "deflate"),
    ("x.dzi", {}, "dz", "deflate"),
])
def test_the_writer_is_timed_with_the_outputs_own_format_and_settings(monkeypatch, name, flags, fmt, compression):
    cfg = small_config(2000, 1200)
    renderer, plan = renderer_for(cfg)
    job = resolve_job(cfg, name, **flags)
    saved = []
    real_save = sink.save_strips

    def recorded(strips, target, width, height, bands, out, **kw):
        strips = list(strips)
        saved.append((target.fmt.name, out, width, height, np.concatenate(strips), kw.get("config")))
        return real_save(iter(strips), target, width, height, bands, out, **kw)

    monkeypatch.setattr(sink, "save_strips", recorded)
    rates = measure_render(job, renderer, plan, workers=2)
    assert len(saved) == 2, "the faster of two saves"
    got_fmt, out, w, h, pixels, config = saved[0]
    assert got_fmt == fmt and out == job.config.output and out.compression == compression
    assert config is job.config, "with its metadata, as a render writes it"
    assert w * h >= measure.WRITER_SAMPLE and h <= 1200 and w <= 2000 and pixels.shape == (h, w, 3)
    # the sample is rendered pixels: its first window is a window of the canvas
    bw, bh = plan.tiles_per_batch * plan.tile, plan.strip_height
    assert any(np.array_equal(pixels[:bh, :bw], renderer.render_window(w)) for w in measure._windows(plan, 16))
    assert rates.writer_mpix_s > 0 and rates.writer_cores > 0 and rates.network_cores > 0
    if flags.get("quality"):
        assert out.quality == 40


def test_how_network_and_writer_make_the_time():
    # bigcppn's own writer on both cores the network had: it takes its time from the network's
    rates = Rates(2.0, 50.0, writer_cores=2.0, network_cores=2.0)
    assert estimate.estimate_seconds(100, rates, "cpu") == pytest.approx(50 + 2)
    # a one-threaded libvips saver overlaps the network on the other core, but is never faster than alone
    assert estimate.estimate_seconds(100, Rates(2.0, 50.0, writer_cores=1.0, network_cores=2.0), "cpu") == \
        pytest.approx(50 + 1)
    assert estimate.estimate_seconds(100, Rates(50.0, 2.0, writer_cores=1.0, network_cores=2.0), "cpu") == \
        pytest.approx(50)
    # on a machine busy with other work the network got one core: the writer's core comes out of it
    assert estimate.estimate_seconds(100, Rates(2.0, 50.0, writer_cores=1.0, network_cores=1.0), "cpu") == \
        pytest.approx(50 + 2)
    # on a GPU they overlap: the slower one sets the pace
    assert estimate.estimate_seconds(100, Rates(400.0, 50.0, writer_cores=8.0), "cuda") == pytest.approx(2)
    # the last strip is written after the network is done; the writer waits for the first strip (one a worker)
    rates = Rates(2.0, 50.0, writer_cores=2.0, workers=2, network_cores=2.0)
    assert estimate.estimate_seconds(100, rates, "cpu", strip_mpix=0.5) == pytest.approx(52 + 0.5 / 50)
    rates = Rates(50.0, 2.0, writer_cores=1.0, workers=2, network_cores=2.0)
    assert estimate.estimate_seconds(100, rates, "cpu", strip_mpix=0.5) == pytest.approx(0.5 * 2 / 50 + 50)


def test_plan_reports_what_it_measured_and_the_time_from_it(monkeypatch):
    monkeypatch.setattr(measure, "measure_render", lambda job, r, p, workers: Rates(3.0, 30.0, 2.0, 1, 2.0, 0.5))
    cfg = bigcppn.load_config(None, ["canvas.width=3000", "canvas.height=2000", "render.device='cpu'"])
    info = bigcppn.plan(cfg, "poster.tif")
    assert (info.network_mpix_per_s, info.writer_mpix_per_s) == (3.0, 30.0)
    strip = 3000 * 256 / 1e6
    assert info.estimated_seconds == pytest.approx(6 / 3 + 6 / 30 + strip / 30, abs=0.05)
    d = info.as_dict()
    assert d["writer_mpix_per_s"] == 30.0 and d["estimated_seconds"] == info.estimated_seconds
    assert "writer 30.0 MPix/s" in str(info)


def test_a_pyramids_time_counts_its_samples_and_tiles(monkeypatch, tmp_path):
    monkeypatch.setattr(estimate, "available_cores", lambda: 2)
    monkeypatch.setattr(measure, "measure_pyramid",
                        lambda job, r, p, w: PyramidRates(2.0, 1.0, tile_seconds=0.01, tile_pixels=256 * 256))
    info = bigcppn.plan_pyramid(small_config(2048, 1024), tmp_path / "p.dzi", tile=256, overlap=0, supersample=2)
    base = 2048 * 1024
    below = info.samples - base
    assert below == sum(-(-2048 // 2**s) * -(-1024 // 2**s) for s in range(1, 12)) * 4
    pixels = base + below // 4
    want = base / 1e6 / 2.0 + below / 1e6 / 1.0 + pixels / 65536 * 0.01 / 2
    assert info.estimated_seconds == pytest.approx(want, abs=0.05)


@pytest.mark.parametrize("w, h, name", [(16, 16, "x.webp"), (300, 16383, "x.webp")])
def test_the_writers_sample_fits_the_canvas_and_its_format(w, h, name):
    info = bigcppn.plan(small_config(w, h), name)
    assert info.estimated_seconds is not None and info.writer_mpix_per_s >= 0


def test_a_time_range_that_rounds_to_one_duration_is_not_printed():
    """plan -o x.png --width 64 on a loaded machine said 'about 0 s (...; 0 s to 0 s as the load goes)'."""
    from bigcppn.estimate.plan import PlanInfo

    def text(seconds, span):
        return str(PlanInfo(64, 64, 3, 8, 64, 1, 1, 64, 1, 4096, "cpu", "x.png", "png", 1000, "libvips", 1 << 20,
                            300.0, 0, (5.4, 5.4), (5.4, 5.4), 2.0, 1.0, seconds, seconds_range=span))

    assert "as the load goes" not in text(0.0, (0.0, 0.3))
    assert "as the load goes" not in text(100.0, (95.0, 120.0))  # 2 min to 2 min
    assert "; 6 s to 8 s as the load goes)" in text(7.0, (6.4, 8.0))
