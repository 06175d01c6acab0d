"""Every output carries its resolved config; --from re-renders it at any size."""

import json

import numpy as np
import pytest
import pyvips

from bigcppn import cli
from bigcppn.formats.registry import read_config_from


def render(*args):
    assert cli.main(["render", *map(str, args), "-q"]) == 0


def test_from_png_rerenders_pixel_identical(tmp_path):
    render("--seed", 21, "--width", 256, "--height", 256, "--set", "network.hidden=[12,12,12]",
           "--set", "network.activation=sin", "--set", "view.zoom=1.7", "-o", tmp_path / "small.png")
    render("--from", tmp_path / "small.png", "--width", 512, "-o", tmp_path / "again.png")
    render("--seed", 21, "--width", 512, "--height", 512, "--set", "network.hidden=[12,12,12]",
           "--set", "network.activation=sin", "--set", "view.zoom=1.7", "-o", tmp_path / "direct.png")
    a = pyvips.Image.new_from_file(str(tmp_path / "again.png")).numpy()
    b = pyvips.Image.new_from_file(str(tmp_path / "direct.png")).numpy()
    assert a.shape == (512, 512, 3)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("name", ["c.tif", "c.png", "c.jpg", "c.webp", "c.dzi", "c.szi"])
def test_every_format_carries_the_config(tmp_path, name):
    render("--seed", 77, "--width", 64, "--height", 48, "--set", "network.color=hsv", "-o", tmp_path / name)
    cfg = read_config_from(tmp_path / name)
    assert cfg.seed == 77 and cfg.network.color == "hsv"
    assert (cfg.canvas.width, cfg.canvas.height) == (64, 48)


def test_tiff_description_and_dzi_sidecar_are_readable_by_other_tools(tmp_path):
    render("--seed", 5, "--width", 64, "-o", tmp_path / "t.tif")
    desc = pyvips.Image.new_from_file(str(tmp_path / "t.tif")).get("image-description")
    assert desc.startswith("# bigcppn config") and "seed = 5" in desc
    render("--seed", 6, "--width", 64, "-o", tmp_path / "d.dzi")
    side = json.loads((tmp_path / "d.bigcppn.json").read_text())
    assert side["config"]["seed"] == 6


def test_outputs_are_tagged_srgb(tmp_path):
    for name in ("s.tif", "s.png", "s.jpg", "s.webp"):
        render("--width", 32, "-o", tmp_path / name)
        assert "icc-profile-data" in pyvips.Image.new_from_file(str(tmp_path / name)).get_fields(), name


@pytest.mark.parametrize("name,extra", [
    ("g.tif", []),  # bigcppn's TIFF writer, deflate
    ("j.tif", ["--set", 'output.compression="jpeg"', "--set", "output.quality=75"]),
    ("n.tif", ["--set", 'output.compression="none"']),  # libvips' tiffsave
    ("h.tif", ["--depth", "16"]),
    ("g.png", []),
    ("h.png", ["--depth", "16"]),
    ("g.jpg", []),
])
def test_grey_outputs_carry_a_grey_profile(tmp_path, name, extra):
    # grey outputs had no profile, so a print RIP applied its own default grey; now libvips'
    # sGrey (GRAY, D50, the sRGB tone curve) in every level of a TIFF, and in PNG and JPEG
    import struct

    import tifffile

    render("--width", 300, "--height", 280, "--set", 'network.color="grey"', *extra, "-o", tmp_path / name)
    image = pyvips.Image.new_from_file(str(tmp_path / name))
    assert image.bands == 1
    icc = bytes(image.get("icc-profile-data"))
    assert icc[12:20] == b"mntrGRAY" and icc[36:40] == b"acsp" and struct.unpack(">I", icc[:4])[0] == len(icc)
    tags = {}
    for i in range(struct.unpack(">I", icc[128:132])[0]):
        sig, offset, size = struct.unpack(">4sII", icc[132 + 12 * i : 144 + 12 * i])
        tags[sig] = icc[offset : offset + size]
    assert {b"desc", b"cprt", b"wtpt", b"kTRC"} <= set(tags)
    assert [v / 65536 for v in struct.unpack(">3i", tags[b"wtpt"][8:20])] == pytest.approx([0.9642, 1, 0.8249], abs=1e-3)
    trc = tags[b"kTRC"]  # a 'para' curve of type 3: the sRGB curve
    assert trc[:4] == b"para" and struct.unpack(">H", trc[8:10])[0] == 3
    params = [v / 65536 for v in struct.unpack(">5i", trc[12:32])]
    assert params == pytest.approx([2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045], abs=1e-4)
    assert image.icc_import().interpretation == "lab"  # littleCMS takes it
    if name.endswith(".tif"):
        with tifffile.TiffFile(tmp_path / name) as tf:
            assert len(tf.pages) == 2 and all(p.tags[34675].value == icc for p in tf.pages)


def test_from_errors(tmp_path, capsys):
    plain = tmp_path / "plain.png"
    pyvips.Image.black(8, 8).write_to_file(str(plain))
    assert cli.main(["render", "--from", str(plain), "-o", str(tmp_path / "x.png")]) == 2
    assert "carries no bigcppn config" in capsys.readouterr().err
    assert cli.main(["render", "--from", str(tmp_path / "missing.png"), "-o", str(tmp_path / "x.png")]) == 2
    assert "no such file" in capsys.readouterr().err
    cfg = tmp_path / "c.toml"
    cfg.write_text("seed = 1\n")
    assert cli.main(["render", str(cfg), "--from", str(plain), "-o", str(tmp_path / "x.png")]) == 2
    assert "not both" in capsys.readouterr().err


def test_sixteen_bit_smooth_gradients(tmp_path):
    """--depth 16 keeps the network's precision: a smooth picture has far more than 256 levels."""
    out = tmp_path / "smooth.png"
    render("--depth", 16, "--width", 512, "--set", "network.hidden=[8]", "--set", "network.weight_scale=0.5",
           "-o", out)
    img = pyvips.Image.new_from_file(str(out))
    assert img.format == "ushort"
    px = img.numpy()
    for c in range(3):
        assert len(np.unique(px[..., c])) > 4 * 256
    render("--depth", 16, "--width", 64, "-o", tmp_path / "s.tif")
    assert pyvips.Image.new_from_file(str(tmp_path / "s.tif")).format == "ushort"


def test_a_szi_carries_its_config_inside_and_beside_a_dzi_of_the_same_name(tmp_path):
    import zipfile

    render("--seed", 21, "--width", 64, "-o", tmp_path / "p.dzi")
    render("--seed", 22, "--width", 64, "-o", tmp_path / "p.szi")
    with zipfile.ZipFile(tmp_path / "p.szi") as z:
        assert z.testzip() is None
        names = z.namelist()
        assert "p/p.dzi" in names and "p/p.bigcppn.json" in names
    assert read_config_from(tmp_path / "p.dzi").seed == 21  # the .szi did not overwrite the .dzi's sidecar
    assert read_config_from(tmp_path / "p.szi").seed == 22
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.bigcppn.json", "p.dzi", "p.szi", "p_files"]


def test_from_carries_the_picture_not_the_output_settings(tmp_path, capsys):
    """The README's preview step: a 16-bit LZW print at 150 dpi gives a small 8-bit preview at 300 dpi."""
    src = tmp_path / "print.tif"
    render("--seed", 13, "--width", 300, "--height", 200, "--depth", 16, "--compression", "lzw", "--dpi", 150,
           "--set", "view.zoom=1.3", "--set", "render.tile=32", "-o", src)
    for name in ("preview.png", "preview.jpg"):
        render("--from", src, "--width", 96, "-o", tmp_path / name)
        img = pyvips.Image.new_from_file(str(tmp_path / name))
        assert (img.width, img.height, img.format) == (96, 64, "uchar"), "8-bit, the file's aspect"
        cfg = read_config_from(tmp_path / name)
        assert cfg.seed == 13 and cfg.view.zoom == 1.3, "the picture comes from the file"
        assert (cfg.output.depth, cfg.output.compression, cfg.canvas.dpi, cfg.render.tile) == (8, "deflate", 300, 256)
    render("--seed", 13, "--width", 96, "--height", 64, "--set", "view.zoom=1.3", "-o", tmp_path / "direct.png")
    a = pyvips.Image.new_from_file(str(tmp_path / "preview.png")).numpy()
    assert np.array_equal(a, pyvips.Image.new_from_file(str(tmp_path / "direct.png")).numpy())
    # without a size: the default canvas (4096 on the longer side) in the file's aspect
    assert cli.main(["plan", "--from", str(src), "-o", str(tmp_path / "big.tif"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["canvas"]["width"], d["canvas"]["height"], d["canvas"]["depth"]) == (4096, 2731, 8)
    # and the command line still decides the output settings
    render("--from", src, "--width", 30, "--depth", 16, "-o", tmp_path / "deep.png")
    assert pyvips.Image.new_from_file(str(tmp_path / "deep.png")).format == "ushort"
