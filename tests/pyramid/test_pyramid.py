"""`bigcppn pyramid`: every level sampled from the network, the layouts' files, atomic tiles, resuming."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import pyvips
import torch

from bigcppn import cli
from bigcppn.core.geometry import pixel_coord
from bigcppn.pyramid.images import encode_tile
from bigcppn.pyramid.local import ThreadRunner
from bigcppn.pyramid.render import PyramidHooks, render_pyramid
from bigcppn.pyramid.request import PyramidRequest
from bigcppn.pyramid.store import PyramidOutput, TileStore
from bigcppn.core.geometry import level_coord, sample_positions
from bigcppn.formats.tiles import tile_codec
from bigcppn.pyramid.grid import Pyramid
from bigcppn.network.strips import renderer_for
from bigcppn.pyramid.viewer import OSD_CDN, find_openseadragon

from conftest import small_config


def run(*args):
    return cli.main([str(a) for a in args])


def listing(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def decode(data: bytes) -> np.ndarray:
    return pyvips.Image.new_from_buffer(data, "").numpy()


# --------------------------------------------------------------------------- sampling


def test_base_sampling_is_the_renderers_to_the_bit(device):
    """The level rule at shift 0, one sample (scalar and array forms) is the pixel-centre rule, to the bit."""
    r, _plan = renderer_for(small_config(301, 203, **{"view.center": [0.1, -0.37], "view.zoom": 3.0}), device)
    pitch = r.sampling.view.pitch(r.canvas)
    for horizontal, size, center, runs in [(True, 301, 0.1, [(0, 301), (17, 50), (300, 1)]),
                                           (False, 203, -0.37, [(0, 203), (199, 4)])]:
        for start, count in runs:
            got = r.sampling.axis(start, count, horizontal, device, 0, 1).cpu().tolist()
            pixel = [pixel_coord(i, size, center, pitch) for i in range(start, start + count)]
            level = [level_coord(sample_positions(i, 0, 1, size)[0], size, center, pitch)
                     for i in range(start, start + count)]
            assert got == pixel == level


@pytest.mark.parametrize("shift,k", [(1, 1), (2, 2), (3, 3), (-2, 1)])
def test_sampler_evaluates_the_planned_positions(device, shift, k):
    """A level tile is the mean of K×K network samples at sample_positions, mapped by level_coord."""
    r, _plan = renderer_for(small_config(250, 170), device)
    s = r  # the renderer is the compute backend, pyramid levels included
    lv_w = -(-250 // 2**shift) if shift > 0 else 250 << -shift
    lv_h = -(-170 // 2**shift) if shift > 0 else 170 << -shift
    x0, y0 = max(0, lv_w - 9), max(0, lv_h - 6)  # the last pixels: clipped at the canvas edge
    w, h = lv_w - x0, lv_h - y0
    got = s.sample(shift, x0, y0, w, h, k).cpu().numpy()
    pitch = r.sampling.view.pitch(r.canvas)
    xs = [[level_coord(u, 250, 0.0, pitch) for u in sample_positions(i, shift, k, 250)] for i in range(x0, x0 + w)]
    ys = [[level_coord(u, 170, 0.0, pitch) for u in sample_positions(j, shift, k, 170)] for j in range(y0, y0 + h)]
    px = torch.tensor([[x for x in xs[i] for _ in range(k)] for j in range(h) for i in range(w)], dtype=torch.float64)
    py = torch.tensor([[y for _ in range(k) for y in ys[j]] for j in range(h) for i in range(w)], dtype=torch.float64)
    with torch.no_grad():
        ref = r.model.to("cpu").evaluate(px.reshape(-1), py.reshape(-1)).reshape(h * w, k * k, 3).mean(1)
    np.testing.assert_allclose(got.reshape(-1, 3), ref.numpy(), atol=2e-6)


def test_supersampling_converges_to_the_box_filtered_base(device):
    """At shift s with K = 2^s the samples are the base pixel centres: the level is the base, box-filtered."""
    r, plan = renderer_for(small_config(128, 96), device)
    s = r  # the renderer is the compute backend, pyramid levels included
    base = s.sample(0, 0, 0, 128, 96, 1).cpu().numpy().astype(np.float64)
    box = base.reshape(24, 4, 32, 4, 3).mean(axis=(1, 3))
    errors = [np.abs(s.sample(2, 0, 0, 32, 24, k).cpu().numpy() - box).mean() for k in (1, 2, 4)]
    assert errors[2] < 1e-6
    assert errors[0] > errors[1] > errors[2]


def test_encode_tile_formats_and_google_padding():
    arr = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    assert np.array_equal(decode(encode_tile(arr, tile_codec("png"), 90)), arr)
    assert decode(encode_tile(arr, tile_codec("jpeg"), 90)).shape == (30, 40, 3)
    assert decode(encode_tile(arr, tile_codec("webp"), 90)).shape == (30, 40, 3)
    padded = decode(encode_tile(arr, tile_codec("png"), 90, pad=(64, 64)))
    assert padded.shape == (64, 64, 3) and (padded[30:] == 255).all() and (padded[:, 40:] == 255).all()
    grey = decode(encode_tile(arr[:, :, :1], tile_codec("png"), 90))
    assert grey.shape[:2] == (30, 40) and np.array_equal(grey.reshape(30, 40), arr[:, :, 0])


def test_tile_store_writes_atomically(tmp_path):
    store = TileStore(tmp_path)
    store.write("a/b/c.jpeg", b"12345")
    assert (tmp_path / "a/b/c.jpeg").read_bytes() == b"12345"
    (tmp_path / "a/b/.d.jpeg.partial-123-456").write_bytes(b"half")
    assert store.remove_partials() == 1
    assert sorted(p.name for p in (tmp_path / "a/b").iterdir()) == ["c.jpeg"]


# --------------------------------------------------------------------------- the command and its layouts


@pytest.mark.parametrize("layout", ["dz", "iiif3", "zoomify", "google"])
def test_layout_files_are_exactly_the_planned_ones(tmp_path, layout):
    out = tmp_path / ("p.dzi" if layout == "dz" else "p")
    assert run("pyramid", "-o", out, "--layout", layout, "--tile", 64, "--width", 300, "--height", 200,
               "--seed", 4, "-q") == 0
    root = tmp_path if layout == "dz" else out
    tile = 64
    p = Pyramid(300, 200, layout, tile, 1 if layout == "dz" else 0, "jpeg", name="p" if layout == "dz" else "image")
    got = files_under(root)
    meta = {"dz": {"p.dzi", "p.bigcppn.json"}, "iiif3": {"info.json", "bigcppn.json"},
            "zoomify": {"ImageProperties.xml", "bigcppn.json"}, "google": {"blank.png", "bigcppn.json"}}[layout]
    viewer = {k for k in got if k.startswith("openseadragon/")}
    full = {path for path, _w, _h in p.layout.full_images(p)}  # IIIF: full/max and each of sizes
    page_name = "p.html" if layout == "dz" else "index.html"  # a .dzi's folder may hold several pyramids
    assert set(got) == {t.path for t in p.all_tiles()} | full | meta | {page_name} | viewer
    page = got[page_name].decode()
    if find_openseadragon() is not None:  # an npm copy of OpenSeadragon goes with the page
        assert "openseadragon/openseadragon.min.js" in viewer and "openseadragon/images/home_rest.png" in viewer
        assert 'src="openseadragon/openseadragon.min.js"' in page and OSD_CDN not in page
    else:  # else the page says why it needs the internet
        assert not viewer and f'src="{OSD_CDN}openseadragon.min.js"' in page and "npm install" in page
    for t in p.all_tiles():
        img = decode(got[t.path])
        assert img.shape == (t.image_height, t.image_width, 3), t.path
    if p.descriptor_path:
        text = got[p.descriptor_path].decode()
        assert text == p.descriptor("http://localhost:8000/p")
    manifest = json.loads(got["p.bigcppn.json" if layout == "dz" else "bigcppn.json"])
    assert manifest["config"]["seed"] == 4 and manifest["pyramid"]["layout"] == layout


def test_iiif3_info_json_names_its_published_url(tmp_path):
    out = tmp_path / "poster"
    assert run("pyramid", "-o", out, "--layout", "iiif3", "--width", 600, "--height", 300, "-q",
               "--base-url", "https://example.org/art/poster/") == 0
    info = json.loads((out / "info.json").read_text())
    assert info["id"] == "https://example.org/art/poster"
    assert info["tiles"] == [{"width": 256, "scaleFactors": [1, 2, 4]}]
    assert (out / "full/150,75/0/default.jpg").is_file() and (out / "0,0,512,300/256,150/0/default.jpg").is_file()


def test_png_and_webp_tiles(tmp_path):
    assert run("pyramid", "-o", tmp_path / "w.dzi", "--format", "webp", "--width", 100, "--height", 80, "-q") == 0
    assert 'Format="webp"' in (tmp_path / "w.dzi").read_text()
    assert (tmp_path / "w_files/7/0_0.webp").is_file()
    out = tmp_path / "i"
    assert run("pyramid", "-o", out, "--layout", "iiif3", "--format", "png", "--width", 100, "--height", 80, "-q") == 0
    info = json.loads((out / "info.json").read_text())
    assert info["preferredFormats"] == ["png"] and (out / "full/max/0/default.png").is_file()


def test_grey_pyramid(tmp_path):
    assert run("pyramid", "-o", tmp_path / "g.dzi", "--width", 90, "--height", 60, "--set", "network.color=grey",
               "-q", "--format", "png") == 0
    img = pyvips.Image.new_from_file(str(tmp_path / "g_files/7/0_0.png"))
    assert img.bands == 1 and (img.width, img.height) == (90, 60)


@pytest.mark.parametrize("args,message", [
    (["--layout", "iiif3", "--overlap", "1"], "--overlap applies to the dz layout only"),
    (["--tile", "10", "--overlap", "10"], "--overlap must be between 0"),
    (["--quality", "0"], "--quality must be between 1 and 100"),
    (["--supersample", "17"], "at most 16"),
    (["--base-url", "http://x/y"], "--base-url is for the iiif3 layout"),
    (["--layout", "iiif3", "--base-url", "ftp://x"], "must be an http(s) URL"),
    (["--depth", "16"], "pyramid tiles are 8-bit"),
    (["--set", 'output.cmyk="cmyk"'], "leave out output.cmyk"),  # (was silently ignored: issue 21, 5.3)
    (["--set", "network.hidden=[0]"], "network.hidden"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, message):
    assert run("pyramid", "-o", tmp_path / "p.dzi", "--width", 64, "--height", 64, *args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("out,layout,message", [
    ("x.png", "dz", "written as NAME.dzi"),
    ("x.dzi", "zoomify", "is a folder, not a .dzi"),
    ("missing/x.dzi", "dz", "does not exist"),
])
def test_bad_output_paths(tmp_path, capsys, out, layout, message):
    assert run("pyramid", "-o", tmp_path / out, "--layout", layout, "--width", 64, "--height", 64) == 2
    assert message in capsys.readouterr().err


def test_refuses_to_mix_with_another_render(tmp_path, capsys):
    assert run("pyramid", "-o", tmp_path / "p.dzi", "--width", 64, "--height", 64, "--seed", 1, "-q") == 0
    before = files_under(tmp_path)
    assert run("pyramid", "-o", tmp_path / "p.dzi", "--width", 64, "--height", 64, "--seed", 2, "-q") == 2
    err = capsys.readouterr().err
    assert "another render" in err and "seed" in err
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "notes.txt").write_text("mine")
    assert run("pyramid", "-o", tmp_path / "z", "--layout", "zoomify", "--width", 64, "--height", 64, "-q") == 2
    assert "was not made by bigcppn" in capsys.readouterr().err
    assert files_under(tmp_path) == {**before, "z/notes.txt": b"mine"}


def test_existing_dzi_from_render_is_not_overwritten(tmp_path, capsys):
    assert run("render", "-o", tmp_path / "r.dzi", "--width", 64, "--height", 64, "-q") == 0
    before = files_under(tmp_path)
    assert run("pyramid", "-o", tmp_path / "r.dzi", "--width", 64, "--height", 64, "-q") == 2
    capsys.readouterr()
    assert files_under(tmp_path) == before


# --------------------------------------------------------------------------- interrupted and resumed


def _pyramid_args(out, layout="dz"):
    return ["pyramid", "-o", out, "--layout", layout, "--width", 700, "--height", 500, "--tile", 128, "--seed", 6]


@pytest.mark.parametrize("layout", ["dz", "iiif3"])
def test_interrupted_render_resumes_without_redoing_tiles(tmp_path, layout):
    cfg = small_config(700, 500, seed=6)
    r, plan = renderer_for(cfg, torch.device("cpu"))
    name = "p"
    out = PyramidOutput(tmp_path / "a" if layout == "dz" else tmp_path / "a" / name, name, layout)
    out.root.parent.mkdir(exist_ok=True)
    out.root.mkdir(exist_ok=True)
    p = Pyramid(700, 500, layout, 128, 1 if layout == "dz" else 0, "jpeg", name=name if layout == "dz" else "image")
    written = []

    def stop_after_10(t):
        written.append(t.path)
        if len(written) == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_pyramid(PyramidRequest(cfg, out, p), ThreadRunner(r, plan, 2), PyramidHooks(on_tile=stop_after_10))
    assert not (out.root / p.descriptor_path).exists(), "the metadata marks a complete pyramid"
    first = {path: (out.root / path).stat() for path in written if (out.root / path).exists()}
    assert 10 <= len(first) < p.tile_count
    assert not list(out.root.rglob("*.partial-*"))

    again = []
    stats = render_pyramid(PyramidRequest(cfg, out, p), ThreadRunner(r, plan, 2),
                           PyramidHooks(on_tile=lambda t: again.append(t.path)))
    assert stats.skipped == len(first) and stats.written == p.tile_count - len(first)
    assert not set(again) & set(first), "no finished tile is rendered again"
    for path, st in first.items():
        now = (out.root / path).stat()
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)

    # and the result is the pyramid an uninterrupted run makes, byte for byte
    fresh = PyramidOutput(tmp_path / "b" if layout == "dz" else tmp_path / "b" / name, name, layout)
    fresh.root.mkdir(parents=True)
    render_pyramid(PyramidRequest(cfg, fresh, p), ThreadRunner(r, plan, 1))
    assert files_under(out.root) == files_under(fresh.root)

    # a third run finds everything done
    stats = render_pyramid(PyramidRequest(cfg, out, p), ThreadRunner(r, plan, 2))
    assert stats.written == 0 and stats.skipped == p.tile_count


def test_ctrl_c_to_a_real_process_then_resume(tmp_path):
    out = tmp_path / "p.dzi"
    args = [sys.executable, "-m", "bigcppn", *map(str, _pyramid_args(out)), "--width", "2000", "--height", "1400",
            "-q"]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    tiles = tmp_path / "p_files"
    while time.monotonic() < deadline and proc.poll() is None:
        if tiles.is_dir() and sum(1 for _ in tiles.rglob("*.jpeg")) >= 3:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the render finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    assert not (tmp_path / "p.dzi").exists()
    assert not list(tmp_path.rglob("*.partial-*"))
    done = {p: p.stat().st_mtime_ns for p in tiles.rglob("*.jpeg")}
    assert done
    again = subprocess.run(args[:-1], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"resuming: {len(done)} of" in again.stderr
    assert (tmp_path / "p.dzi").is_file()
    assert all(p.stat().st_mtime_ns == m for p, m in done.items())


def test_each_pyramid_has_its_own_page_and_a_foreign_page_is_refused(tmp_path, capsys):
    (tmp_path / "index.html").write_text("<html>my site</html>")
    assert run("pyramid", "-o", tmp_path / "art.dzi", "--width", 64, "--height", 64) == 0
    assert (tmp_path / "index.html").read_text() == "<html>my site</html>"
    assert '"art.dzi"' in (tmp_path / "art.html").read_text()
    err = capsys.readouterr().err
    assert "art.html" in err and "OpenSeadragon" in err
    # two pyramids in one folder: two pages, neither overwrites the other
    assert run("pyramid", "-o", tmp_path / "b.dzi", "--width", 64, "--height", 64, "--seed", 5, "-q") == 0
    assert '"art.dzi"' in (tmp_path / "art.html").read_text() and '"b.dzi"' in (tmp_path / "b.html").read_text()
    # our own page is simply rewritten (a finished pyramid run again)
    assert run("pyramid", "-o", tmp_path / "b.dzi", "--width", 64, "--height", 64, "--seed", 5, "-q") == 0
    # a page of the pyramid's name that bigcppn did not write: refused before rendering
    (tmp_path / "c.html").write_text("<html>mine</html>")
    assert run("pyramid", "-o", tmp_path / "c.dzi", "--width", 64, "--height", 64) == 2
    err = capsys.readouterr().err
    assert "c.html' exists and was not written by bigcppn" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c_files").exists() and not (tmp_path / "c.bigcppn.json").exists()
    assert (tmp_path / "c.html").read_text() == "<html>mine</html>"


def test_progress_counts_tiles_and_samples_across_all_levels_and_a_resume_stays_clean(tmp_path, capsys):
    import bigcppn

    seen = []
    r = bigcppn.render_pyramid(small_config(300, 200, seed=2), tmp_path / "p.dzi", tile=64, supersample=3,
                               progress=seen.append)
    p = Pyramid(300, 200, "dz", 64, 1, "jpeg", name="p")
    first, last = seen[0], seen[-1]
    assert (first.tiles, first.samples, first.pending, first.total) == (0, 0, p.tile_count, p.tile_count)
    assert last.tiles == last.pending == r.written == p.tile_count
    base = p.base_level.index
    want = sum(t.pixels * (1 if lv == base else 9) for lv in range(base + 1) for t in p.tiles(lv))
    assert last.samples == last.samples_total == want, "the ETA's measure: K² samples a pixel below the base"
    assert [s.tiles for s in seen] == list(range(p.tile_count + 1)), "one call at a time, in order"
    # a resumed run: one line saying so, then the bar, and no stray empty bars
    for f in (tmp_path / "p_files" / "8").iterdir():
        f.unlink()
    (tmp_path / "p.dzi").unlink()
    assert run("pyramid", "-o", tmp_path / "p.dzi", "--width", 300, "--height", 200, "--tile", 64,
               "--supersample", 3, "--seed", 2, "--device", "cpu") == 0
    err = capsys.readouterr().err
    assert err.count("resuming: ") == 1 and "0tile" not in err and "?tile/s" not in err
    assert "tiles, " in err and "MPix/s" in err
    # a finished pyramid: no bar at all
    assert run("pyramid", "-o", tmp_path / "p.dzi", "--width", 300, "--height", 200, "--tile", 64,
               "--supersample", 3, "--seed", 2, "--device", "cpu") == 0
    err = capsys.readouterr().err
    assert "is complete" in err and "%|" not in err and "resuming" not in err


@pytest.mark.parametrize("installed", [True, False])
def test_the_terminal_says_where_openseadragon_comes_from(tmp_path, capsys, monkeypatch, installed):
    import bigcppn.pyramid.viewer as viewer

    if installed:
        build = tmp_path / "osd"
        (build / "images").mkdir(parents=True)
        (build / "openseadragon.min.js").write_text("// osd")
        monkeypatch.setenv(viewer.OSD_ENV, str(build))
    else:
        monkeypatch.setattr(viewer, "find_openseadragon", lambda: None)
    site = tmp_path / "site"
    site.mkdir()
    assert run("pyramid", "-o", site / "a.dzi", "--width", 64, "--height", 64) == 0
    err = capsys.readouterr().err
    if installed:
        assert f"uses the OpenSeadragon copied into {site / 'openseadragon'}" in err
        assert (site / "openseadragon" / "openseadragon.min.js").is_file()
    else:
        assert "loads OpenSeadragon from a CDN and needs the internet" in err and "npm install openseadragon" in err


def test_dry_run_plans_without_rendering(tmp_path, capsys):
    import bigcppn

    out = tmp_path / "p.dzi"
    info = bigcppn.plan_pyramid(small_config(300, 200), out, tile=64, measure=False)
    p = Pyramid(300, 200, "dz", 64, 1, "jpeg", name="p")
    assert (info.tiles, info.pending, info.levels, info.state) == (p.tile_count, p.tile_count, len(p.levels), "new")
    assert info.files == p.tile_count + 3 and info.estimated_bytes > 0 and info.estimated_seconds is None
    assert listing(tmp_path) == []
    assert run("pyramid", "-o", out, "--width", 300, "--height", 200, "--tile", 64, "--dry-run") == 0
    text = capsys.readouterr().out
    assert f"{p.tile_count} in all, {p.tile_count} to write" in text and "time      about" in text
    assert listing(tmp_path) == []
    assert run("pyramid", "-o", out, "--width", 300, "--height", 200, "--tile", 64, "--device", "cpu", "-q") == 0
    for f in (tmp_path / "p_files" / "9").iterdir():
        f.unlink()
    info = bigcppn.plan_pyramid(small_config(300, 200), out, tile=64, measure=False)
    assert info.state == "resume" and info.pending == len(list(p.tiles(9)))
    with pytest.raises(bigcppn.UserError, match="add --overwrite"):
        bigcppn.plan_pyramid(small_config(300, 200, seed=5), out, tile=64, measure=False)
    assert bigcppn.plan_pyramid(small_config(300, 200, seed=5), out, tile=64, overwrite=True,
                                measure=False).state == "replace"
