"""The pyramid planner: levels and tiles per layout, checked by properties and against libvips dzsave."""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pyvips
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bigcppn.core.geometry import level_coord, sample_positions
from bigcppn.pyramid.grid import Pyramid, max_extra_levels
from bigcppn.pyramid.layouts import LAYOUTS, dz_level_count
from bigcppn.core.geometry import pixel_coord

sizes = st.integers(1, 3000)
tiles = st.integers(1, 600)


@st.composite
def pyramids(draw, layouts=tuple(LAYOUTS)):
    layout = draw(st.sampled_from(layouts))
    tile = draw(tiles)
    overlap = draw(st.integers(0, min(3, tile - 1))) if layout == "dz" else 0
    return Pyramid(draw(sizes), draw(sizes), layout, tile, overlap, draw(st.sampled_from(["jpeg", "png", "webp"])))


@given(pyramids())
@example(Pyramid(1, 1, "dz", 254, 1))
@example(Pyramid(1025, 300, "zoomify", 256, 0))
@example(Pyramid(257, 256, "iiif3", 256, 0))
@settings(max_examples=200, deadline=None)
def test_every_level_is_covered_exactly_once(p):
    for lv in p.levels:
        if lv.tile_count > 4096:  # big levels: the arithmetic is the same, spare the loop
            continue
        seen = np.zeros((lv.height, lv.width), dtype=np.int32)
        for t in (p.tile_at(lv.index, c, r) for r in range(lv.rows) for c in range(lv.cols)):
            x, y, w, h = lv.core(t.col, t.row)
            assert w >= 1 and h >= 1
            seen[y : y + h, x : x + w] += 1
            # the tile image: its core grown by the overlap where a neighbour is, clipped to the level
            assert (t.x, t.y) == (max(0, x - p.overlap), max(0, y - p.overlap))
            assert t.x + t.width == min(lv.width, x + w + p.overlap)
            assert t.y + t.height == min(lv.height, y + h + p.overlap)
            if p.layout.name == "google":
                assert (t.image_width, t.image_height) == (p.tile, p.tile)
            else:
                assert (t.image_width, t.image_height) == (t.width, t.height)
        assert (seen == 1).all()


@given(pyramids())
@settings(max_examples=200, deadline=None)
def test_level_sizes_follow_the_ceil_rule(p):
    assert [lv.index for lv in p.levels] == list(range(len(p.levels)))
    base = p.levels[-1]
    assert (base.width, base.height, base.shift) == (p.width, p.height, 0)
    for lv in p.levels:
        s = 2**lv.shift
        assert (lv.width, lv.height) == (math.ceil(p.width / s), math.ceil(p.height / s))
    if p.layout.name == "dz":
        assert len(p.levels) == math.ceil(math.log2(max(p.width, p.height))) + 1
        assert (p.levels[0].width, p.levels[0].height) == (1, 1)
    else:
        # down to the first level that fits one tile, and no further
        top = p.levels[0]
        assert top.cols == top.rows == 1
        if len(p.levels) > 1:
            assert p.levels[1].tile_count > 1


@given(pyramids())
@settings(max_examples=100, deadline=None)
def test_paths_are_unique_relative_and_as_the_layout_names_them(p):
    paths = [t.path for t in p.all_tiles()] if p.tile_count < 20000 else []
    assert len(set(paths)) == len(paths)
    if paths and p.layout.name == "iiif3":
        # an aliased tile is left out because a finer tile has its very name
        every = {p.tile_at(lv.index, c, r).path for lv in p.levels for r in range(lv.rows) for c in range(lv.cols)}
        assert every == set(paths)
    pattern = {
        "dz": rf"^image_files/\d+/\d+_\d+\.{p.ext}$",
        "iiif3": rf"^(full|\d+,\d+,\d+,\d+)/(max|\d+,\d+)/0/default\.{p.ext}$",
        "zoomify": rf"^TileGroup\d+/\d+-\d+-\d+\.{p.ext}$",
        "google": rf"^\d+/\d+/\d+\.{p.ext}$",
    }[p.layout.name]
    for path in paths:
        assert re.match(pattern, path), path
        assert ".." not in path and not path.startswith("/")


def test_iiif3_alias_of_a_corner_tile():
    p = Pyramid(513, 513, "iiif3", 256, 0)
    assert p.tile_at(2, 2, 2).path == p.tile_at(1, 1, 1).path == "512,512,1,1/1,1/0/default.jpg"
    assert p.aliased(1, 1, 1) and not p.aliased(2, 2, 2)
    assert p.tile_count == 9 + 4 + 1 - 1


def test_zoomify_tile_groups_count_from_the_first_tier():
    p = Pyramid(5000, 4000, "zoomify", 256, 0)
    numbers = {}
    n = 0
    for lv in p.levels:
        for t in p.tiles(lv.index):
            numbers[t.path] = n
            n += 1
    for path, k in numbers.items():
        assert path.startswith(f"TileGroup{k // 256}/")
    assert n == p.tile_count and n > 256


def test_iiif3_region_and_size_match_what_openseadragon_asks_for():
    """OpenSeadragon 6's IIIFTileSource.getTileUrl, rewritten: region in base pixels, size in level pixels."""
    for w, h, tile in [(1001, 333, 256), (500, 300, 512), (512, 300, 256), (4096, 4096, 256), (1, 1, 256)]:
        p = Pyramid(w, h, "iiif3", tile, 0)
        max_level = len(p.levels) - 1
        for lv in p.levels:
            scale = 0.5 ** (max_level - lv.index)
            lw, lh = math.ceil(w * scale), math.ceil(h * scale)
            for t in p.tiles(lv.index):
                if lw < tile and lh < tile:
                    size = "max" if (lw, lh) == (w, h) else f"{lw},{lh}"
                    region = "full"
                else:
                    ts = round(tile / scale)
                    rx, ry = t.col * ts, t.row * ts
                    rw, rh = min(ts, w - rx), min(ts, h - ry)
                    region = "full" if (rx, ry, rw, rh) == (0, 0, w, h) else f"{rx},{ry},{rw},{rh}"
                    sw, sh = min(tile, lw - t.col * tile), min(tile, lh - t.row * tile)
                    size = "max" if (sw, sh) == (w, h) else f"{sw},{sh}"
                assert t.path == f"{region}/{size}/0/default.jpg"


def test_descriptors():
    dz = Pyramid(1001, 333, "dz", 254, 1, "png", name="poster")
    assert dz.descriptor_path == "poster.dzi"
    text = dz.descriptor()
    assert 'Format="png"' in text and 'Overlap="1"' in text and 'TileSize="254"' in text
    assert 'Width="1001"' in text and 'Height="333"' in text
    info = json.loads(Pyramid(1001, 333, "iiif3", 256, 0).descriptor("http://h/x/"))
    assert info["id"] == "http://h/x" and info["profile"] == "level0" and info["type"] == "ImageService3"
    assert info["tiles"] == [{"width": 256, "scaleFactors": [1, 2, 4]}]
    assert info["sizes"] == [{"width": 251, "height": 84}, {"width": 1001, "height": 333}]
    assert (info["maxWidth"], info["maxHeight"]) == (2048, 2048)
    big = json.loads(Pyramid(5000, 3000, "iiif3", 512, 0, max_size=1000).descriptor("http://h/x"))
    assert big["sizes"] == [{"width": 313, "height": 188}, {"width": 1000, "height": 600}]
    assert (big["maxWidth"], big["maxHeight"]) == (1000, 1000)
    z = Pyramid(1001, 333, "zoomify", 256, 0)
    assert 'NUMTILES="11"' in z.descriptor() and 'TILESIZE="256"' in z.descriptor()


def test_levels_past_the_base():
    p = Pyramid(300, 200, "dz", 254, 1, extra=3)
    assert (p.virtual_width, p.virtual_height) == (2400, 1600)
    assert len(p.levels) == dz_level_count(2400, 1600) == 13
    assert p.base_level.index == 9 and (p.base_level.width, p.base_level.height) == (300, 200)
    assert [lv.shift for lv in p.levels[-4:]] == [0, -1, -2, -3]
    assert (p.levels[-1].width, p.levels[-1].height) == (2400, 1600)
    # below the base the levels are those of the plain pyramid
    plain = Pyramid(300, 200, "dz", 254, 1)
    assert [(lv.width, lv.height, lv.shift) for lv in plain.levels] == [
        (lv.width, lv.height, lv.shift) for lv in p.levels[:10]]


def test_level_coordinates_generalise_pixel_coord():
    for i in (0, 1, 17, 299):
        (u,) = sample_positions(i, 0, 1, 300)
        assert u == i + 0.5
        assert level_coord(u, 300, 0.25, 1 / 200) == pixel_coord(i, 300, 0.25, 1 / 200)
    # a level pixel at shift 2 is centred on the middle of its 4 base pixels, its 2x2 samples
    # on the middles of pixel pairs
    assert sample_positions(0, 2, 1, 300) == [2.0]
    assert sample_positions(3, 2, 2, 300) == [13.0, 15.0]
    assert sample_positions(3, 2, 4, 300) == [12.5, 13.5, 14.5, 15.5]
    # past the base: quarter pixels
    assert sample_positions(5, -2, 1, 300) == [1.375]


@given(st.integers(1, 5000), st.integers(1, 12), st.integers(1, 8))
def test_samples_stay_on_the_canvas_and_fill_the_pixel(size, shift, k):
    p = Pyramid(size, 1, "dz", 254, 0)
    lv = next((lv for lv in p.levels if lv.shift == shift), None)
    if lv is None:
        return
    for i in (0, lv.width - 1):
        us = sample_positions(i, shift, k, size)
        a, b = i * 2**shift, min((i + 1) * 2**shift, size)
        assert all(a < u < b for u in us)
        assert abs(sum(us) / k - (a + b) / 2) < 1e-9 * max(1, b)


def test_max_extra_levels_stop_where_float64_runs_out():
    pitch = 1 / 4096
    e = max_extra_levels(4096, 4096, 0.0, 0.0, pitch)
    assert 25 <= e <= 40
    # the last level still has 2**8 ulps between neighbouring pixels, the next would not
    assert pitch / 2**e >= 256 * math.ulp(0.5)
    assert pitch / 2 ** (e + 1) < 256 * math.ulp(0.5)
    # far from the origin float64 has less to give
    assert max_extra_levels(4096, 4096, 1000.0, 0.0, pitch) < e - 9


@pytest.mark.parametrize("bad", [
    dict(width=0, height=5), dict(layout="tms"), dict(codec="gif"), dict(tile=0), dict(tile=10, overlap=10),
    dict(layout="zoomify", tile=256, overlap=1), dict(layout="iiif3", tile=256, overlap=0, extra=2),
    dict(extra=60), dict(name="../x"),
])
def test_bad_pyramids(bad):
    args = dict(width=100, height=100)
    args.update(bad)
    with pytest.raises(ValueError):
        Pyramid(**args)


def test_planner_is_pure():
    code = "import sys, bigcppn.pyramid.grid; print('torch' in sys.modules, 'pyvips' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# --------------------------------------------------------------------------- against libvips dzsave


def _dzsave_listing(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            if f.endswith((".xml", ".json", ".dzi")) or f == "blank.png":
                continue
            p = Path(dirpath) / f
            img = pyvips.Image.new_from_file(str(p))
            out[p.relative_to(root).as_posix()] = (img.width, img.height)
    return out


@given(st.sampled_from(tuple(LAYOUTS)), st.integers(1, 700), st.integers(1, 700), st.integers(16, 300), st.data())
@example("dz", 1001, 333, 254, None)
@example("zoomify", 1025, 300, 256, None)
@example("google", 700, 200, 256, None)
@example("iiif3", 500, 300, 512, None)
@settings(max_examples=24, deadline=None)
def test_same_files_and_tile_sizes_as_libvips_dzsave(tmp_path_factory, layout, w, h, tile, data):
    overlap = (data.draw(st.integers(0, 2)) if data is not None else LAYOUTS[layout].default_overlap) if layout == "dz" else 0
    tmp = tmp_path_factory.mktemp("dz")
    rng = np.random.default_rng(w * 1000 + h)
    img = pyvips.Image.new_from_array(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), interpretation="srgb")
    img.dzsave(str(tmp / "image"), layout=layout, tile_size=tile, overlap=overlap,
               suffix=".jpg" if layout != "dz" else ".jpeg")
    root = tmp if layout == "dz" else tmp / "image"
    theirs = _dzsave_listing(root)
    p = Pyramid(w, h, layout, tile, overlap, "jpeg")
    ours = {t.path: (t.image_width, t.image_height) for t in p.all_tiles()}
    if layout == "iiif3" and len(p.levels) == 1:
        # libvips names the whole image at full size full/W,H; IIIF 3's canonical name (and
        # OpenSeadragon's request) is full/max.
        ours = {k.replace("/max/", f"/{w},{h}/"): v for k, v in ours.items()}
    assert len(theirs) == p.tile_count
    assert ours == theirs
    if layout == "dz":
        dzi = (tmp / "image.dzi").read_text()
        for key in ("Overlap", "TileSize", "Width", "Height"):
            assert re.search(rf'{key}="(\d+)"', dzi).group(1) == re.search(rf'{key}="(\d+)"', p.descriptor()).group(1)
    if layout == "zoomify":
        assert (root / "ImageProperties.xml").read_text().strip() == p.descriptor().strip()
    if layout == "iiif3":
        theirs_info = json.loads((root / "info.json").read_text())
        assert theirs_info["tiles"] == json.loads(p.descriptor("x"))["tiles"]


def test_a_pyramid_holds_its_layout_and_codec_objects_and_pickles_with_them():
    import pickle

    from bigcppn.formats.tiles import CODECS, tile_codec

    p = Pyramid(300, 200, "iiif3", 256, 0, "png")
    assert p.layout is LAYOUTS["iiif3"] and p.codec is tile_codec("png") and p.ext == "png"
    again = pickle.loads(pickle.dumps(p))
    assert again.layout is p.layout and again == p  # one instance a layout, in any process
    assert Pyramid(300, 200, LAYOUTS["dz"], 254, 1, tile_codec("jpeg")).ext == "jpeg"  # DeepZoom: .jpeg
    assert Pyramid(300, 200, "zoomify", 256, 0).ext == "jpg"
    assert [(c.name, c.mime, c.lossy) for c in CODECS.values()] == [
        ("jpeg", "image/jpeg", True), ("webp", "image/webp", True), ("png", "image/png", False)]
    with pytest.raises(ValueError, match="choose from jpeg, webp, png"):
        tile_codec("gif")
