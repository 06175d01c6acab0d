"""No lost work: an existing output is replaced only with --overwrite, and then only once the new one is whole."""

import json

import pytest
import pyvips

import bigcppn
from bigcppn import cli
from bigcppn.errors import UserError
from bigcppn.network.strips import Renderer

from conftest import small_config


def run(*args):
    return cli.main([str(a) for a in args])


def listing(path):
    return sorted(p.name for p in path.iterdir())


@pytest.mark.parametrize("name", ["a.tif", "a.png", "a.dzi", "a.szi"])
def test_an_existing_output_is_refused_before_rendering(tmp_path, capsys, monkeypatch, name):
    out = tmp_path / name
    assert run("render", "--seed", 1, "--width", 48, "-q", "-o", out) == 0
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    rendered = []
    monkeypatch.setattr(Renderer, "render_strip", lambda self, *a, **k: rendered.append(1))
    assert run("render", "--seed", 2, "--width", 48, "-o", out) == 2
    err = capsys.readouterr().err
    assert "already exists; add --overwrite to replace it" in err and len(err.strip().splitlines()) == 1
    assert not rendered, "refused before rendering"
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_a_deepzoom_folder_alone_counts_as_an_output(tmp_path, capsys):
    (tmp_path / "a_files").mkdir()
    assert run("render", "--width", 16, "-o", tmp_path / "a.dzi") == 2
    assert "a_files' already exists" in capsys.readouterr().err


def test_overwrite_replaces_and_the_old_file_stays_until_the_new_one_is_complete(tmp_path, capsys, monkeypatch):
    out = tmp_path / "a.tif"
    assert run("render", "--seed", 1, "--width", 64, "--height", 200, "--tile", 16, "-q", "-o", out) == 0
    old = out.read_bytes()
    original = Renderer.render_strip
    calls = []

    def flaky(self, strip, **kw):
        calls.append(strip.index)
        if len(calls) == 5:  # the old file is still there, whole, while the new one is being written
            assert out.read_bytes() == old
            raise RuntimeError("injected failure")
        return original(self, strip, **kw)

    monkeypatch.setattr(Renderer, "render_strip", flaky)
    assert run("render", "--seed", 2, "--width", 64, "--height", 200, "--tile", 16, "-q", "--overwrite",
               "-o", out) == 1
    assert out.read_bytes() == old and listing(tmp_path) == ["a.tif"], "a failed overwrite keeps the old file"
    monkeypatch.setattr(Renderer, "render_strip", original)
    assert run("render", "--seed", 2, "--width", 64, "--height", 200, "--tile", 16, "-q", "--overwrite",
               "-o", out) == 0
    assert out.read_bytes() != old and listing(tmp_path) == ["a.tif"]
    assert bigcppn.formats.registry.read_config_from(out).seed == 2


def test_overwriting_a_deepzoom_pyramid_replaces_its_tiles_sidecar_and_descriptor(tmp_path):
    out = tmp_path / "a.dzi"
    assert run("render", "--seed", 1, "--width", 300, "--height", 200, "-q", "-o", out) == 0
    old = (tmp_path / "a_files" / "9" / "0_0.jpeg").read_bytes()
    assert run("render", "--seed", 2, "--width", 100, "--height", 80, "-q", "--overwrite", "-o", out) == 0
    assert listing(tmp_path) == ["a.bigcppn.json", "a.dzi", "a_files"]
    assert bigcppn.formats.registry.read_config_from(out).seed == 2 and 'Width="100"' in out.read_text()
    assert not (tmp_path / "a_files" / "9").exists() and (tmp_path / "a_files" / "7" / "0_0.jpeg").read_bytes() != old


def test_the_api_refuses_too(tmp_path):
    cfg = small_config(32, 32)
    bigcppn.render_file(cfg, tmp_path / "a.png")
    with pytest.raises(UserError, match="already exists"):
        bigcppn.render_file(cfg, tmp_path / "a.png")
    r = bigcppn.render_file(cfg, tmp_path / "a.png", overwrite=True)
    assert r.path == tmp_path / "a.png"
    bigcppn.render_sheet(cfg, tmp_path / "s.png", "0-1", cell=16)
    with pytest.raises(UserError, match="already exists"):
        bigcppn.render_sheet(cfg, tmp_path / "s.png", "0-1", cell=16)
    assert run("sheet", "--seeds", "0-1", "--cell", 16, "-q", "-o", tmp_path / "s.png", "--overwrite") == 0


def test_a_pyramid_of_another_render_needs_overwrite_and_a_resumed_one_does_not(tmp_path, capsys):
    out = tmp_path / "p.dzi"
    base = ["pyramid", "--width", 300, "--height", 200, "--tile", 64, "-o", out]
    assert run(*base, "--seed", 1, "-q") == 0
    assert run(*base, "--seed", 1, "-q") == 0, "the same render again is a resume, not a replacement"
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert run(*base, "--seed", 2) == 2
    err = capsys.readouterr().err
    assert "holds a pyramid of another render (differs in config.seed); add --overwrite" in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    # replaced: a smaller canvas, so the old pyramid's deeper levels must be gone too
    assert run("pyramid", "--width", 100, "--height", 60, "--tile", 64, "-o", out, "--seed", 2, "--overwrite") == 0
    assert "replaced the pyramid of another render" in capsys.readouterr().err
    manifest = json.loads((tmp_path / "p.bigcppn.json").read_text())
    assert manifest["config"]["seed"] == 2 and manifest["pyramid"]["width"] == 100
    levels = sorted(int(d.name) for d in (tmp_path / "p_files").iterdir())
    assert levels == list(range(8)), "only the new pyramid's levels (100 px: 0..7)"
    tile = pyvips.Image.new_from_file(str(tmp_path / "p_files" / "7" / "0_0.jpeg"))
    assert (tile.width, tile.height) == (65, 60), "the new level 7 (100x60), not the old one (75x50)"


def test_a_pyramid_replaces_a_renders_dzi_only_with_overwrite(tmp_path, capsys):
    """`render -o a.dzi` leaves a provenance sidecar where a pyramid keeps its manifest: with --overwrite the
    pyramid replaces that output (it said "not a bigcppn pyramid manifest" even then), without it one line."""
    out, fresh = tmp_path / "site" / "a.dzi", tmp_path / "fresh" / "a.dzi"
    out.parent.mkdir()
    fresh.parent.mkdir()
    assert run("render", "--width", 300, "--height", 200, "--seed", 1, "-q", "-o", out) == 0
    before = {p: p.read_bytes() for p in out.parent.rglob("*") if p.is_file()}
    base = ["pyramid", "--width", 300, "--height", 200, "--tile", 64, "--seed", 3, "-q"]
    assert run(*base, "-o", out) == 2
    assert "holds the DeepZoom output of a bigcppn render, not a pyramid; add --overwrite" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.parent.rglob("*") if p.is_file()} == before
    assert run(*base, "--overwrite", "-o", out) == 0
    assert run(*base, "-o", fresh) == 0
    files = lambda d: {p.relative_to(d).as_posix(): p.read_bytes() for p in d.rglob("*") if p.is_file()}  # noqa
    assert files(out.parent) == files(fresh.parent)


def test_a_folder_that_bigcppn_did_not_make_is_never_replaced(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    assert run("pyramid", "--layout", "iiif3", "--width", 64, "-o", folder, "--overwrite") == 2
    assert "not made by bigcppn pyramid" in capsys.readouterr().err
    assert listing(folder) == ["notes.txt"]


def test_a_series_of_seeds_in_one_command(tmp_path, capsys):
    out = tmp_path / "poster-{seed}.png"
    assert run("render", "--seeds", "0-2", "--width", 40, "--height", 30, "-o", out) == 0
    assert listing(tmp_path) == ["poster-0.png", "poster-1.png", "poster-2.png"]
    assert capsys.readouterr().err.count("wrote ") == 3
    assert run("render", "--seed", 1, "--width", 40, "--height", 30, "-q", "-o", tmp_path / "one.png") == 0
    a = pyvips.Image.new_from_file(str(tmp_path / "poster-1.png")).numpy()
    b = pyvips.Image.new_from_file(str(tmp_path / "one.png")).numpy()
    assert (a == b).all()


def test_an_interrupted_series_names_the_files_it_kept(tmp_path, capsys, monkeypatch):
    """Ctrl-C during the third of three: the complete files stay, and the line names them (issue 21, 5.2:
    it said "no file was written")."""
    import os
    import signal

    original, rows = Renderer.render_strip, []

    def render_strip(self, strip, **kw):
        rows.append(1)
        if len(rows) == 2 * 2 + 1:  # the third picture's first strip (two strips of 16 rows a picture)
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, strip, **kw)

    monkeypatch.setattr(Renderer, "render_strip", render_strip)
    out = tmp_path / "p-{seed}.png"
    assert run("render", "--seeds", "0-2", "--width", 40, "--height", 30, "--tile", 16, "-q", "-o", out) == 130
    err = capsys.readouterr().err.strip().splitlines()
    kept = listing(tmp_path)
    assert kept[:2] == ["p-0.png", "p-1.png"] and len(kept) <= 3  # (the third, if it was complete first)
    assert len(err) == 1 and f"kept the {len(kept)} complete files" in err[0], err
    assert all(str(tmp_path / name) in err[0] for name in kept), err


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0-2", "-o", "{tmp}/poster.tif"], "put {seed} in the output name"),
    (["--seeds", "1,1", "-o", "{tmp}/p-{seed}.tif"], "seed 1 is given twice"),
    (["--seeds", "0-1", "--seed", "3", "-o", "{tmp}/p-{seed}.tif"], "either --seed or --seeds"),
    (["--seeds", "0-2", "-o", "{tmp}/taken-{seed}.png"], "taken-1.png' already exists"),
])
def test_a_series_is_checked_whole_before_the_first_render(tmp_path, capsys, monkeypatch, args, message):
    (tmp_path / "taken-1.png").write_bytes(b"mine")
    rendered = []
    monkeypatch.setattr(Renderer, "render_strip", lambda self, *a, **k: rendered.append(1))
    assert run("render", "--width", 16, *[a.replace("{tmp}", str(tmp_path)) for a in args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not rendered and listing(tmp_path) == ["taken-1.png"]


def tiles_stop_at(monkeypatch, n: int, exc: BaseException):
    """Pyramid tile encoding raises ``exc`` at its ``n``-th tile; returns what puts the real encoder back."""
    import bigcppn.pyramid.images

    real, calls = bigcppn.pyramid.images.encode_tile, []

    def stopping(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(bigcppn.pyramid.images, "encode_tile", stopping)
    return lambda: monkeypatch.setattr(bigcppn.pyramid.images, "encode_tile", real)


@pytest.mark.parametrize("layout,name", [("dz", "p.dzi"), ("zoomify", "z")])
def test_a_replaced_pyramid_stays_whole_until_its_replacement_is(tmp_path, monkeypatch, layout, name):
    site, fresh = tmp_path / "site", tmp_path / "fresh"
    site.mkdir()
    fresh.mkdir()
    out = site / name
    base = ["pyramid", "--layout", layout, "--width", 300, "--height", 200, "--tile", 64, "-q"]
    assert run(*base, "--seed", 1, "-o", out) == 0
    before = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    restore = tiles_stop_at(monkeypatch, 6, OSError("disk trouble"))  # the replacement fails part way through
    assert run(*base, "--seed", 2, "--overwrite", "-o", out) == 1
    after = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file() and ".replacing-" not in str(p)}
    assert after == before, "a failed replacement leaves the old pyramid as it was"
    hidden = [p for p in site.iterdir() if ".replacing-" in p.name]
    assert len(hidden) == 1 and [p for p in hidden[0].rglob("*.jp*g") if p.is_file()], "its finished tiles are kept"
    restore()
    assert run(*base, "--seed", 2, "--overwrite", "-o", out) == 0
    manifest = out.with_name("p.bigcppn.json") if layout == "dz" else out / "bigcppn.json"
    assert json.loads(manifest.read_text())["config"]["seed"] == 2
    assert not [p for p in site.iterdir() if ".replac" in p.name]
    assert run(*base, "--seed", 2, "-o", fresh / name) == 0

    def files(root):
        return {p.relative_to(root): p.read_bytes() for p in root.rglob("*")
                if p.is_file() and "openseadragon" not in p.parts and p.suffix != ".html"}
    assert files(site) == files(fresh), "the resumed replacement is the pyramid a fresh render makes"


def test_an_interrupted_replacement_resumes_where_it_stopped(tmp_path, monkeypatch):
    """Only the tiles the interrupted replacement did not write are rendered again (counted by the API)."""
    import bigcppn

    out = tmp_path / "p.dzi"
    kw = dict(tile=64, layout="dz")
    cfg1 = bigcppn.load_config(None, [], {"canvas.width": 300, "canvas.height": 200, "seed": 1})
    cfg2 = bigcppn.load_config(None, [], {"canvas.width": 300, "canvas.height": 200, "seed": 2})
    first = bigcppn.render_pyramid(cfg1, out, **kw)
    restore = tiles_stop_at(monkeypatch, 8, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        bigcppn.render_pyramid(cfg2, out, overwrite=True, **kw)
    restore()
    done = bigcppn.render_pyramid(cfg2, out, overwrite=True, **kw)
    assert done.replaced and 0 < done.skipped and done.written + done.skipped == first.tiles


def test_the_stop_line_names_the_folder_the_tiles_went_to(tmp_path, monkeypatch, capsys):
    out = tmp_path / "p.dzi"
    base = ["pyramid", "--width", 300, "--height", 200, "--tile", 64, "-q", "-o", out]
    assert run(*base, "--seed", 1) == 0
    restore = tiles_stop_at(monkeypatch, 8, KeyboardInterrupt())
    capsys.readouterr()
    assert run(*base, "--seed", 2, "--overwrite") == 130
    err = capsys.readouterr().err
    hidden = [p for p in tmp_path.iterdir() if ".replacing-" in p.name]
    assert len(hidden) == 1 and str(hidden[0]) in err and "untouched" in err
    restore()
    assert run(*base, "--seed", 1) == 0  # the render the pyramid there is: complete, nothing to write
    assert not [p for p in tmp_path.iterdir() if ".replacing-" in p.name], "the abandoned replacement is swept"
    tiles_stop_at(monkeypatch, 8, KeyboardInterrupt())
    assert run("pyramid", "--width", 300, "--height", 200, "--tile", 64, "-q", "-o", tmp_path / "q.dzi",
               "--overwrite") == 130  # a new pyramid, rendered in place
    err = capsys.readouterr().err
    assert f"kept in {tmp_path / 'q_files'}/;" in err and "untouched" not in err  # not "kept in ."
