"""Print units: paper sizes, DPI and bleed become pixels; the bleed only adds picture around the trim."""

import json

import numpy as np
import pytest
import pyvips
from hypothesis import given
from hypothesis import strategies as st

from bigcppn import cli
from bigcppn.errors import UserError
from bigcppn.network.strips import renderer_for
from bigcppn.core.units import PAPER_MM, parse_length_in, parse_paper_in, print_canvas

from conftest import small_config


def test_lengths_and_papers():
    assert parse_length_in("25.4mm") == pytest.approx(1.0)
    assert parse_length_in("2.54 cm") == pytest.approx(1.0)
    assert parse_length_in("0.125in") == 0.125
    assert parse_paper_in("A4") == pytest.approx((210 / 25.4, 297 / 25.4))
    assert parse_paper_in("letter") == pytest.approx((8.5, 11))
    assert parse_paper_in("50x70cm") == pytest.approx((500 / 25.4, 700 / 25.4))
    assert parse_paper_in("8.5X11in") == pytest.approx((8.5, 11))
    for bad in ("B5", "50x70", "x70cm", "-3x4in"):
        with pytest.raises(UserError):
            parse_paper_in(bad)
    for bad in ("3", "3 px", "mm"):
        with pytest.raises(UserError):
            parse_length_in(bad)


def test_a4_150dpi_3mm_bleed():
    p = print_canvas(parse_paper_in("A4"), 150, parse_length_in("3mm"))
    assert (p.width, p.height) == (1276, 1790)  # trim 1240 x 1754 (A4 to the pixel) + 18 px a side
    assert p.bleed == 18
    assert [round(v) for v in p.mm()] == [216, 303]
    assert [round(v) for v in p.mm(trimmed=True)] == [210, 297]
    land = print_canvas(parse_paper_in("A4"), 150, 0.0, landscape=True)
    assert land.width > land.height


@given(name=st.sampled_from(sorted(PAPER_MM)), dpi=st.integers(30, 1200))
def test_pixels_are_inches_times_dpi(name, dpi):
    w_in, h_in = parse_paper_in(name)
    p = print_canvas((w_in, h_in), dpi)
    assert abs(p.width - w_in * dpi) <= 0.5 and abs(p.height - h_in * dpi) <= 0.5


def test_bleed_extends_the_same_picture(device):
    """With bleed, the trimmed area is the picture without bleed: the network carries on past the edge."""
    plain = renderer_for(small_config(200, 120), device)
    bled = renderer_for(small_config(240, 160, **{"canvas.bleed": 20}), device)
    a = plain[0].render(plain[1])
    b = bled[0].render(bled[1])
    assert np.abs(b[20:-20, 20:-20].astype(int) - a.astype(int)).max() <= 1


def test_cli_a4_poster_has_150_dpi_and_plan_shows_physical_size(tmp_path, capsys):
    out = tmp_path / "poster.tif"
    args = ["--size", "A4", "--dpi", "150", "--bleed", "3mm", "-o", str(out)]
    assert cli.main(["plan", *args]) == 0
    text = capsys.readouterr().out
    assert "216 × 303 mm with bleed, 210 × 297 mm trimmed" in text
    assert cli.main(["plan", *args, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["print"]["dpi"] == 150 and d["print"]["bleed_px"] == 18
    assert cli.main(["render", *args, "-q"]) == 0
    img = pyvips.Image.new_from_file(str(out))
    assert abs(img.width - 1276) <= 1 and abs(img.height - 1789) <= 1
    assert img.xres * 25.4 == pytest.approx(150, abs=0.01)
    assert img.get("resolution-unit") == "in"


def test_png_carries_dpi(tmp_path):
    out = tmp_path / "p.png"
    assert cli.main(["render", "--size", "10x10mm", "--dpi", "254", "-o", str(out), "-q"]) == 0
    img = pyvips.Image.new_from_file(str(out))
    assert (img.width, img.height) == (100, 100)
    assert img.xres == pytest.approx(10.0, rel=1e-3)  # pixels per millimetre


@pytest.mark.parametrize("args, message", [
    (["--size", "A4", "--width", "100"], "either --size or --width/--height"),
    (["--landscape"], "--landscape turns a paper size"),
    (["--size", "B7"], "unknown paper size 'B7'"),
    (["--size", "A4", "--bleed", "3"], "cannot read the length '3'"),
    (["--size", "A4", "--dpi", "0"], "canvas.dpi must be a positive number"),
    (["--size", "0.1x0.1mm", "--dpi", "10"], "the paper is under one pixel at 10 dpi"),
])
def test_bad_print_input(tmp_path, capsys, args, message):
    assert cli.main(["render", *args, "-o", str(tmp_path / "x.tif")]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
