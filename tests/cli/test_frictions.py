"""A newcomer's frictions (issue 21, section 7): each message says what was wrong and what to do."""

import pytest
import pyvips

import bigcppn
from bigcppn import cli


def run(*args):
    return cli.main([str(a) for a in args])


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("ext", [".dzi", ".szi", ".pdf", ".foo"])
def test_a_sheet_names_only_the_formats_it_can_be(tmp_path, capsys, ext):
    """It listed .dzi/.szi as valid and then refused them, and wrote a .pdf without a word."""
    out = tmp_path / f"s{ext}"
    assert run("sheet", "--seeds", "0-1", "--cell", 32, "-o", out) == 2
    err = one_line(capsys)
    assert "a contact sheet is one picture; write .jpg, .png, .tif or .webp" in err
    listed = err.split("write")[1].split(", not")[0]
    assert not any(bad in listed for bad in (".dzi", ".szi", ".pdf"))
    assert list(tmp_path.iterdir()) == []


def test_a_sheet_shows_progress_and_writes_a_real_dpi(tmp_path, capsys):
    out = tmp_path / "s.png"
    assert run("sheet", "--seeds", "0-3", "--cell", 48, "-o", out) == 0
    err = capsys.readouterr().err
    assert "100%" in err and "wrote" in err  # the bar, then the summary
    img = pyvips.Image.new_from_file(str(out))
    assert img.xres * 25.4 == pytest.approx(300, abs=0.01)  # was 25.4 dpi (libvips' 1 px/mm default)


def test_cmyk_followed_by_a_config_suggests_the_config_first(tmp_path, capsys):
    cfg = tmp_path / "x.toml"
    cfg.write_text("seed = 3\n")
    assert run("render", "--cmyk", cfg, "-o", tmp_path / "c.tif") == 2
    err = one_line(capsys)
    assert "put the config first" in err and f"render {cfg} --cmyk" in err  # not "not an ICC profile"


def test_an_output_folder_is_called_a_folder(tmp_path, capsys):
    assert run("render", "-o", tmp_path) == 2
    err = one_line(capsys)
    assert "is a folder" in err and "has no extension" not in err


def test_a_typo_of_a_command_gets_a_suggestion(capsys):
    with pytest.raises(SystemExit) as exc:
        run("rendr")
    assert exc.value.code == 2 and "did you mean 'render'?" in one_line(capsys)


def test_help_lists_pdf(capsys):
    with pytest.raises(SystemExit):
        run("--help")
    assert ".pdf" in capsys.readouterr().out


def test_an_api_user_is_told_overwrite_true(tmp_path):
    out = tmp_path / "a.png"
    cfg = bigcppn.load_config(None, ["canvas.width=32", "canvas.height=32"])
    bigcppn.render_file(cfg, out)
    with pytest.raises(bigcppn.UserError, match=r"overwrite=True"):
        bigcppn.render_file(cfg, out)
    bigcppn.render_file(cfg, out, overwrite=True)


def test_bleed_on_a_canvas_in_pixels_is_never_short(tmp_path, capsys):
    assert run("plan", "--width", 100, "--height", 80, "--bleed", "1mm", "--dpi", 300, "-o", tmp_path / "a.png",
               "--json") == 0
    plan = __import__("json").loads(capsys.readouterr().out)
    assert plan["print"]["bleed_px"] == 12  # 11.8 px: 12, not 11.8 rounded down to less than 1 mm
    assert (plan["canvas"]["width"], plan["canvas"]["height"]) == (124, 104)
