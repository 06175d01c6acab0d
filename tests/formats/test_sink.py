"""The sink: the PNG stream, TIFF levels and tags, the DeepZoom layout, atomic saves and sweeps.

Every writer's shape, pixels, failed saves and metadata: the conformance suite (test_writers.py).
"""

import zipfile
from pathlib import Path

import numpy as np
import pytest
import pyvips

from bigcppn.config import OutputConfig
from bigcppn.formats.registry import format_for
from bigcppn.formats.target import OutputTarget, save_strips
from bigcppn.formats.vips import StripSource, png_stream


def tiff_first_ifd_tags(path: Path) -> dict[int, int]:
    """Tag -> first value of a TIFF's first IFD (classic or BigTIFF), read by hand."""
    import struct

    raw = path.read_bytes()
    e = "<" if raw[:2] == b"II" else ">"
    magic = struct.unpack(e + "H", raw[2:4])[0]
    big = magic == 43
    off = struct.unpack(e + "Q", raw[8:16])[0] if big else struct.unpack(e + "I", raw[4:8])[0]
    count = struct.unpack(e + ("Q" if big else "H"), raw[off : off + (8 if big else 2)])[0]
    pos, size = off + (8 if big else 2), (20 if big else 12)
    tags = {}
    for i in range(count):
        entry = raw[pos + i * size : pos + (i + 1) * size]
        tag, typ = struct.unpack(e + "HH", entry[:4])
        value = entry[12:] if big else entry[8:]
        fmt = {3: "H", 4: "I", 16: "Q"}.get(typ)
        tags[tag] = struct.unpack(e + fmt, value[: struct.calcsize(fmt)])[0] if fmt else None
    return tags


def strips_of(img: np.ndarray, h: int):
    for y in range(0, img.shape[0], h):
        yield img[y : y + h]


def random_image(h, w, bands, depth, seed=0):
    rng = np.random.default_rng(seed)
    hi = 256 if depth == 8 else 65536
    return rng.integers(0, hi, size=(h, w, bands), dtype=np.uint8 if depth == 8 else np.uint16)


@pytest.mark.parametrize("bands", [1, 3])
@pytest.mark.parametrize("depth", [8, 16])
def test_png_stream_is_pixel_exact_in_libvips(bands, depth):
    img = random_image(77, 45, bands, depth)
    src = StripSource(png_stream(strips_of(img, 10), 45, 77, bands, depth))
    loaded = src.image().numpy()
    assert loaded.reshape(img.shape).tolist() == img.tolist()


def test_stream_that_ends_early_fails_the_load():
    img = random_image(64, 32, 3, 8)

    def short():
        yield from strips_of(img[:40], 8)
        raise RuntimeError("renderer died")

    src = StripSource(png_stream(short(), 32, 64, 3, 8))
    with pytest.raises(pyvips.Error):
        src.image().numpy()
    assert isinstance(src.error, RuntimeError)


def save(img, path: Path, **out):
    h, w, bands = img.shape
    target = OutputTarget(path, format_for(path))
    save_strips(strips_of(img, 32), target, w, h, bands, OutputConfig(**out))
    return target


def smooth_image(h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 255 // (w + h)], -1).astype(np.uint8)


@pytest.mark.parametrize("compression", ["none", "lzw", "deflate", "jpeg"])
def test_tiff_is_tiled_with_pyramid_levels(tmp_path, compression):
    img = smooth_image(1000, 700)
    save(img, tmp_path / "p.tif", compression=compression)
    base = pyvips.Image.new_from_file(str(tmp_path / "p.tif"))
    levels = base.get("n-pages")
    assert levels >= 3
    sizes = [(pyvips.Image.new_from_file(str(tmp_path / "p.tif"), page=i).width,
              pyvips.Image.new_from_file(str(tmp_path / "p.tif"), page=i).height) for i in range(levels)]
    assert sizes[0] == (700, 1000)
    for (w0, h0), (w1, h1) in zip(sizes, sizes[1:]):
        assert w1 == w0 // 2 and h1 == h0 // 2
    tags = tiff_first_ifd_tags(tmp_path / "p.tif")
    assert tags[322] == 256 and tags[323] == 256, "tiled 256x256 (TileWidth, TileLength)"
    assert tags[259] == {"none": 1, "lzw": 5, "deflate": 8, "jpeg": 7}[compression]
    if compression != "jpeg":
        assert np.array_equal(base.numpy(), img)


def test_sixteen_bit_tiff_and_png(tmp_path):
    img = random_image(64, 80, 3, 16)
    for name in ("d.tif", "d.png"):
        save(img, tmp_path / name, depth=16)
        out = pyvips.Image.new_from_file(str(tmp_path / name))
        assert out.format == "ushort" and out.interpretation == "rgb16"
        assert np.array_equal(out.numpy(), img)


def test_deepzoom_folder_and_zip(tmp_path):
    img = smooth_image(600, 1000)
    save(img, tmp_path / "z.dzi")
    dzi = (tmp_path / "z.dzi").read_text()
    assert 'Width="1000"' in dzi and 'Height="600"' in dzi and 'TileSize="254"' in dzi
    files = tmp_path / "z_files"
    top = max(int(p.name) for p in files.iterdir() if p.is_dir())
    assert top == 10  # ceil(log2(1000))
    assert (files / str(top) / "0_0.jpeg").exists() and (files / str(top) / "3_2.jpeg").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["z.dzi", "z_files"]
    tile = pyvips.Image.new_from_file(str(files / str(top) / "0_0.jpeg"))
    assert (tile.width, tile.height) == (255, 255)  # 254 + one pixel of overlap

    save(img, tmp_path / "z.szi")
    with zipfile.ZipFile(tmp_path / "z.szi") as z:
        names = z.namelist()
    assert "z/z.dzi" in names and "z/z_files/10/3_2.jpeg" in names


def test_save_replaces_an_existing_output_atomically(tmp_path):
    (tmp_path / "r.png").write_bytes(b"old")
    (tmp_path / "r_files").mkdir()
    save(smooth_image(40, 40), tmp_path / "r.png")
    assert pyvips.Image.new_from_file(str(tmp_path / "r.png")).width == 40
    save(smooth_image(40, 60), tmp_path / "r.dzi")
    assert 'Width="60"' in (tmp_path / "r.dzi").read_text()


def test_a_new_save_sweeps_folders_of_killed_runs(tmp_path):
    import os

    dead = tmp_path / ".a.tif.partial-999999999"  # above Linux's pid_max: no such process
    alive = tmp_path / f".a.tif.partial-{os.getppid()}"  # a live process: maybe another render of a.tif
    other = tmp_path / ".b.tif.partial-999999999"  # another output's: not ours to touch
    for d in (dead, alive, other):
        d.mkdir()
        (d / "a.tif").write_bytes(b"half a file")
    save(random_image(64, 80, 3, 8), tmp_path / "a.tif")
    assert not dead.exists() and alive.exists() and other.exists()
    assert pyvips.Image.new_from_file(str(tmp_path / "a.tif")).width == 80


def test_the_sweep_spares_locked_folders_and_never_fails_a_save(tmp_path, monkeypatch):
    import fcntl
    import os

    import bigcppn.formats.target as sink

    remote = tmp_path / ".a.tif.partial-999999998"  # its PID is not here, but its lock is held: another host
    remote.mkdir()
    fd = os.open(remote / sink.LOCK_NAME, os.O_CREAT | os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    odd = [tmp_path / ".a.tif.partial-99999999999999999999", tmp_path / ".a.tif.partial-²"]
    stuck = tmp_path / ".a.tif.partial-999999997"
    for d in (*odd, stuck):
        d.mkdir()
    real_remove = sink._remove

    def remove(p):
        if p == stuck:
            raise PermissionError(13, "Permission denied", str(p))
        real_remove(p)

    monkeypatch.setattr(sink, "_remove", remove)
    try:
        save(random_image(32, 40, 3, 8), tmp_path / "a.tif")
    finally:
        os.close(fd)
    assert remote.exists() and stuck.exists() and all(d.exists() for d in odd)
    assert (tmp_path / "a.tif").exists()
    target = OutputTarget(tmp_path / "a.tif", format_for("a.tif"))
    assert target.sweep() == [remote]  # its lock is free now


@pytest.mark.parametrize("name", ["w.tif", "w.png"])
@pytest.mark.parametrize("rows", [[16, 16, 1], [16, 8]])
def test_strips_that_do_not_tile_the_canvas_are_render_errors(tmp_path, name, rows):
    from bigcppn.errors import RenderError

    target = OutputTarget(tmp_path / name, format_for(name))
    strips = (np.zeros((r, 20, 3), np.uint8) for r in rows)
    with pytest.raises(RenderError, match="renderer produced .* rows for a canvas 32 rows high"):
        save_strips(strips, target, 20, 32, 3, OutputConfig())
    assert sorted(p.name for p in tmp_path.iterdir()) == []
