"""Contact sheets: one batched pass over all seeds gives each seed's own picture, labelled."""

import numpy as np
import pytest
import pyvips

from bigcppn import cli
from bigcppn.errors import UserError
from bigcppn.network.strips import renderer_for
from bigcppn.job import parse_seeds
from bigcppn.sheet import render_cells

from conftest import small_config


def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("5, 1,10-11") == [5, 1, 10, 11]
    for bad in ("a", "3-1", "1-", "0-5000"):
        with pytest.raises(UserError):
            parse_seeds(bad)


def test_batched_cells_equal_single_renders(device):
    cfg = small_config(96, 64, "network.hidden=[16, 8, 16]", "network.activation=['tanh', 'sin', 'gauss']")
    seeds = [0, 3, 99]
    cells = render_cells(cfg, seeds, 48, device)
    assert cells.shape == (3, 32, 48, 3), "the config's aspect is kept"
    for seed, cell in zip(seeds, cells):
        r, plan = renderer_for(small_config(48, 32, "network.hidden=[16, 8, 16]",
                                            "network.activation=['tanh', 'sin', 'gauss']", seed=seed), device)
        assert np.abs(r.render(plan).astype(int) - cell.astype(int)).max() <= 1


def test_sheet_command(tmp_path):
    out = tmp_path / "sheet.png"
    assert cli.main(["sheet", "-o", str(out), "--seeds", "0-5", "--cell", "64", "-q"]) == 0
    img = pyvips.Image.new_from_file(str(out))
    assert img.bands == 3 and img.width > 3 * 64 and img.height > 2 * 64
    px = img.numpy()
    # labels: light text pixels in the dark band under the first cell
    gap = max(4, 64 // 32)
    band = px[gap + 64 : gap + 64 + 14, gap : gap + 64]
    assert (band.min(axis=-1) > 150).sum() > 10
    assert list(tmp_path.iterdir()) == [out]


def test_sheet_too_large_for_its_format_is_refused_before_rendering(tmp_path, capsys):
    assert cli.main(["sheet", "--seeds", "0-4", "--columns", "5", "--cell", "3300", "-o",
                     str(tmp_path / "w.webp")]) == 2
    assert "WEBP holds at most 16383 px" in capsys.readouterr().err
    assert cli.main(["sheet", "--seeds", "0-1000", "--cell", "4000", "-o", str(tmp_path / "w.png")]) == 2
    assert "too many to hold" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_sheet_rejects_pyramids(tmp_path, capsys):
    assert cli.main(["sheet", "-o", str(tmp_path / "s.dzi")]) == 2
    assert "one picture" in capsys.readouterr().err


def test_a_tiff_sheet_follows_the_output_settings(tmp_path):
    import tifffile

    out = tmp_path / "s.tif"
    assert cli.main(["sheet", "-o", str(out), "--seeds", "0-3", "--cell", "64", "-q",
                     "--set", 'output.compression="lzw"', "--set", "output.tiff_tile=64"]) == 0
    with tifffile.TiffFile(out) as tf:
        assert tf.pages[0].compression == 5 and tf.pages[0].tilewidth == 64


def test_sheet_frames_the_poster(tmp_path, device):
    from bigcppn.sheet import cell_size
    from bigcppn.core.units import parse_aspect

    cfg = small_config(300, 100)
    assert cell_size(cfg, 90) == (90, 30), "by default the config's canvas"
    assert cell_size(cfg, 99, parse_aspect("A2")) == (70, 99)
    assert cell_size(cfg, 99, parse_aspect("A2", landscape=True)) == (99, 70)
    assert cell_size(cfg, 60, parse_aspect("3:2")) == (60, 40)
    cells = render_cells(cfg, [4], 60, device, aspect=1.5)
    r, plan = renderer_for(small_config(60, 40, seed=4), device)
    assert np.abs(r.render(plan).astype(int) - cells[0].astype(int)).max() <= 1, "what a 3:2 poster shows"
    out = tmp_path / "a.png"
    assert cli.main(["sheet", "--seeds", "0-1", "--cell", "60", "--aspect", "A4", "--landscape", "-q",
                     "-o", str(out)]) == 0
    assert cli.main(["sheet", "--landscape", "-o", str(tmp_path / "b.png")]) == 2
    assert cli.main(["sheet", "--aspect", "wide", "-o", str(tmp_path / "b.png")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_sheet_quality(tmp_path, capsys):
    sizes = {}
    for q in (30, 95):
        out = tmp_path / f"s{q}.jpg"
        assert cli.main(["sheet", "-o", str(out), "--seeds", "0-3", "--cell", "96", "-q", "--quality", str(q)]) == 0
        sizes[q] = out.stat().st_size
    assert sizes[30] < sizes[95] / 1.5
    assert cli.main(["sheet", "-o", str(tmp_path / "s.png"), "--seeds", "0-3", "--quality", "50"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "lossless" in err
    assert cli.main(["sheet", "-o", str(tmp_path / "s.webp"), "--quality", "0"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s30.jpg", "s95.jpg"]


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif"])
def test_a_sheet_carries_its_config_and_seeds_and_renders_one_cell_again(tmp_path, capsys, ext):
    """`render --from SHEET --seed K` is the cell of seed K (at the cell's size, within one level of the batched
    pass); without --seed, one line says to pick one; --seeds renders several cells."""
    from bigcppn.sheet import _layout

    sheet = tmp_path / f"s{ext}"
    base = ["--set", "network.hidden=[16, 8]", "--set", "canvas.width=300", "--set", "canvas.height=200"]
    assert cli.main(["sheet", *base, "--seeds", "3-8", "--cell", "60", "-q", "-o", str(sheet)]) == 0
    assert cli.main(["render", "--from", str(sheet), "-q", "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"bigcppn: error: --from {sheet}: a contact sheet of 6 seeds (3, 4, 5, 6, ... 8); add --seed K "
                   "to render the cell of seed K"]
    assert not (tmp_path / "x.png").exists()
    if ext == ".jpg":
        return  # (the picture is compressed; the config is all that is compared)
    img = pyvips.Image.new_from_file(str(sheet)).numpy()
    cols, _rows, label_h, gap = _layout(60, 40, 6, None)
    for k, seed in enumerate([3, 7]):
        i = [3, 4, 5, 6, 7, 8].index(seed)
        out = tmp_path / f"c{seed}.png"
        assert cli.main(["render", "--from", str(sheet), "--seed", str(seed), "--width", "60", "-q", "-o",
                         str(out)]) == 0
        x, y = gap + (i % cols) * (60 + gap), gap + (i // cols) * (40 + label_h + gap)
        cell = img[y:y + 40, x:x + 60]
        again = pyvips.Image.new_from_file(str(out)).numpy()
        assert again.shape == cell.shape and np.abs(again.astype(int) - cell.astype(int)).max() <= 1
    assert cli.main(["render", "--from", str(sheet), "--seeds", "4-5", "--width", "60", "-q", "-o",
                     str(tmp_path / "q{seed}.png")]) == 0
    assert (tmp_path / "q4.png").exists() and (tmp_path / "q5.png").exists()


def test_a_damaged_sheet_table_is_one_line(tmp_path):
    from bigcppn.formats.provenance import _parse
    from bigcppn.sheet import sheet_provenance

    text = sheet_provenance(small_config(64, 64), [1, 2])
    assert "seeds = [1, 2]" in text
    with pytest.raises(UserError, match=r"\[sheet\] table is damaged"):
        _parse(text.replace("seeds = [1, 2]", "seeds = ['x']"), tmp_path / "s.png")
