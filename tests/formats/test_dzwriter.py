"""The DeepZoom writer makes the pyramid libvips' dzsave would: the same files, .dzi and pixels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import pyvips
from hypothesis import given, settings
from hypothesis import strategies as st

from bigcppn import cli
from bigcppn.formats.deepzoom.writer import DeepZoomWriter, dz_sizes, write_dz

pyvips.cache_set_max(0)


def picture(h: int, w: int, bands: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = (np.sin(x[..., None] / 23.0 + y[..., None] / 61.0 + np.arange(bands)) + 1) * 110
    return (base + rng.integers(0, 30, (h, w, bands))).clip(0, 255).astype(np.uint8)


def libvips_dz(a: np.ndarray, stem: Path, **kw) -> None:
    h, w, bands = a.shape
    pyvips.Image.new_from_memory(a.tobytes(), w, h, bands, "uchar").dzsave(str(stem), **kw)


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != "vips-properties.xml")


def pixels(p: Path) -> np.ndarray:
    image = pyvips.Image.new_from_file(str(p))
    return np.frombuffer(image.write_to_memory(), np.uint8).reshape(image.height, image.width, image.bands)


def assert_same_as_libvips(tmp: Path, a: np.ndarray, tile: int, overlap: int, quality: int, rows=(256,), **kw):
    (tmp / "v").mkdir()
    (tmp / "o").mkdir()
    libvips_dz(a, tmp / "v" / "x", tile_size=tile, overlap=overlap, Q=quality)
    h, w, bands = a.shape
    with DeepZoomWriter(tmp / "o" / "x.dzi", w, h, bands, tile=tile, overlap=overlap, quality=quality, **kw) as dz:
        y, i = 0, 0
        while y < h:
            dz.write(a[y : y + rows[i % len(rows)]])
            y, i = y + rows[i % len(rows)], i + 1
    assert files(tmp / "o") == files(tmp / "v")
    assert (tmp / "o" / "x.dzi").read_text() == (tmp / "v" / "x.dzi").read_text()
    for name in files(tmp / "v"):
        if name.endswith(".jpeg"):
            np.testing.assert_array_equal(pixels(tmp / "o" / name), pixels(tmp / "v" / name), err_msg=name)


@pytest.mark.parametrize(
    "w,h,bands,quality,tile,overlap",
    [
        (777, 601, 3, 90, 254, 1),  # the defaults; odd sizes at every level
        (1000, 700, 3, 75, 254, 1),  # below 90 libvips subsamples chroma 4:2:0
        (300, 5, 3, 90, 254, 1),
        (513, 1, 3, 90, 254, 1),
        (600, 500, 1, 90, 254, 1),  # grey
        (700, 650, 3, 90, 256, 0),
        (520, 530, 3, 80, 128, 3),
    ],
)
def test_same_files_and_pixels_as_dzsave(tmp_path, w, h, bands, quality, tile, overlap):
    assert_same_as_libvips(tmp_path, picture(h, w, bands), tile, overlap, quality, rows=(97, 1, 300))


@settings(max_examples=15, deadline=None)
@given(w=st.integers(1, 90), h=st.integers(1, 90), tile=st.sampled_from([8, 16, 30]), overlap=st.integers(0, 3),
       bands=st.sampled_from([1, 3]), split=st.lists(st.integers(1, 40), min_size=1, max_size=3),
       workers=st.integers(1, 3), max_pending=st.sampled_from([1, 3, None]))
def test_any_small_shape_matches_dzsave(tmp_path_factory, w, h, tile, overlap, bands, split, workers, max_pending):
    assert_same_as_libvips(tmp_path_factory.mktemp("dz"), picture(h, w, bands, seed=w * 100 + h), tile,
                           min(overlap, tile - 1), 90, rows=tuple(split), workers=workers, max_pending=max_pending)


def test_levels_halve_up_to_one_pixel():
    assert dz_sizes(777, 601)[-3:] == [(4, 3), (2, 2), (1, 1)]
    assert len(dz_sizes(1, 1)) == 1 and len(dz_sizes(1024, 1024)) == 11


def test_render_to_dzi_is_the_render_through_dzsave(tmp_path):
    args = ["--seed", "4", "--width", "700", "--height", "300", "-q"]
    assert cli.main(["render", *args, "-o", str(tmp_path / "a.png")]) == 0
    assert cli.main(["render", *args, "-o", str(tmp_path / "b.dzi")]) == 0
    (tmp_path / "v").mkdir()
    pyvips.Image.new_from_file(str(tmp_path / "a.png")).dzsave(str(tmp_path / "v" / "b"), Q=90)
    ours = [f for f in files(tmp_path) if f.startswith("b_files")]
    assert ours == [f for f in files(tmp_path / "v") if f.startswith("b_files")]
    for name in ours:
        np.testing.assert_array_equal(pixels(tmp_path / name), pixels(tmp_path / "v" / name), err_msg=name)
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.bigcppn.json", "b.dzi", "b_files", "v"]


def test_a_short_source_fails_and_stops_the_pool(tmp_path):
    with pytest.raises(ValueError, match="300 rows written"):
        with DeepZoomWriter(tmp_path / "s.dzi", 400, 600, 3) as dz:
            dz.write(np.zeros((300, 400, 3), np.uint8))
    assert dz._pool._shutdown and not (tmp_path / "s.dzi").exists()
    with pytest.raises(ValueError, match="do not fit"):
        DeepZoomWriter(tmp_path / "t.dzi", 10, 10, 3).write(np.zeros((2, 9, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8 rows, not uint16"):
        DeepZoomWriter(tmp_path / "u.dzi", 10, 10, 3).write(np.zeros((2, 10, 3), np.uint16))


def test_write_dz_helper(tmp_path):
    write_dz(tmp_path / "h.dzi", picture(50, 60, 3))
    assert (tmp_path / "h.dzi").exists() and (tmp_path / "h_files" / "0" / "0_0.jpeg").exists()


@pytest.mark.parametrize("w,h,bands,quality", [(777, 601, 3, 90), (300, 200, 1, 75)])
def test_a_szi_holds_what_libvips_puts_in_one(tmp_path, w, h, bands, quality):
    import zipfile

    a = picture(h, w, bands)
    libvips_dz(a, tmp_path / "v.szi", tile_size=254, overlap=1, Q=quality, container="szi")
    write_dz(tmp_path / "o.szi", a, quality=quality, extra={"o.bigcppn.json": b"{}"})
    with zipfile.ZipFile(tmp_path / "v.szi") as v, zipfile.ZipFile(tmp_path / "o.szi") as o:
        assert o.testzip() is None
        theirs = {n.replace("v/", "o/", 1).replace("v_files", "o_files").replace("/v.dzi", "/o.dzi")
                  for n in v.namelist()}
        ours = set(o.namelist())
        assert ours == theirs - {"o/o_files/vips-properties.xml"} | {"o/o.bigcppn.json"}
        assert o.read("o/o.dzi") == v.read("v/v.dzi")
        assert b"<name>ImageWidth</name>" in o.read("o/scan-properties.xml")
        for name in sorted(ours):
            if name.endswith(".jpeg"):
                mine = pyvips.Image.new_from_buffer(o.read(name), "")
                ref = pyvips.Image.new_from_buffer(v.read(name.replace("o/o_files", "v/v_files")), "")
                assert mine.write_to_memory() == ref.write_to_memory(), name


def test_render_to_szi_carries_the_config(tmp_path):
    from bigcppn.formats.registry import read_config_from

    assert cli.main(["render", "--seed", "9", "--width", "300", "-q", "-o", str(tmp_path / "s.szi")]) == 0
    assert read_config_from(tmp_path / "s.szi").seed == 9
    assert sorted(os.listdir(tmp_path)) == ["s.szi"]


@pytest.mark.parametrize("suffix", ["jpeg", "png"])
def test_szi_entries_unzip_as_readable_regular_files(tmp_path, suffix):
    # entries were mode 0600 (the config) or had no file type nor permissions (the tiles):
    # unzipped, a web server could not read them. Now each is a regular file, 0644 (libvips'
    # own entries, on the PNG road, are 0664). jpeg: DeepZoomWriter; png: dzsave + add_to_szi.
    import shutil
    import stat
    import subprocess
    import zipfile

    path = tmp_path / "m.szi"
    args = ["--seed", "3", "--width", "300", "--height", "200", "-q", "--set", f'output.dz_suffix="{suffix}"']
    assert cli.main(["render", *args, "-o", str(path)]) == 0
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
    assert "m/m.bigcppn.json" in [i.filename for i in infos] and len(infos) > 5
    for info in infos:
        mode = info.external_attr >> 16
        assert info.create_system == 3 and stat.S_ISREG(mode), (info.filename, oct(mode))
        assert stat.S_IMODE(mode) in (0o644, 0o664), (info.filename, oct(mode))
    if shutil.which("unzip") is None:
        return  # the modes above are what unzip restores
    subprocess.run(["unzip", "-q", str(path), "-d", str(tmp_path / "x")], check=True)
    # unzip gives files the stored mode whatever the umask; directories (a .szi has no entries
    # for them, as libvips writes it) follow the umask, so only the files are checked
    extracted = [p for p in (tmp_path / "x").rglob("*") if p.is_file()]
    assert len(extracted) == len(infos)
    for p in extracted:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode & 0o644 == 0o644 and not mode & 0o002, (p, oct(mode))  # readable by all


def test_a_szi_dates_its_scan_properties_by_source_date_epoch(monkeypatch):
    """Two renders of one .szi are the same bytes when SOURCE_DATE_EPOCH is set (as a PDF/X's dates)."""
    from bigcppn.formats.deepzoom.writer import _scan_properties

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert b'date="2023-11-14T22:13:20Z"' in _scan_properties(900, 700)
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert b'date="2023' not in _scan_properties(900, 700)
