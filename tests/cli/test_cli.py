"""The command line: renders, plans, and refuses bad input with one line and exit status 2."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import pyvips

from bigcppn import cli
from bigcppn.network.strips import Renderer


def run(*args):
    return cli.main([str(a) for a in args])


def listing(path):
    return sorted(p.name for p in path.iterdir())


def test_render_png_and_identical_bytes_twice(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert run("render", "-o", a, "--width", 96, "--height", 64, "--seed", 3, "-q") == 0
    assert run("render", "-o", b, "--width", 96, "--height", 64, "--seed", 3, "-q") == 0
    assert a.read_bytes() == b.read_bytes()
    img = pyvips.Image.new_from_file(str(a))
    assert (img.width, img.height, img.bands) == (96, 64, 3)
    assert listing(tmp_path) == ["a.png", "b.png"]


def test_render_with_config_and_overrides(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("seed = 5\n[canvas]\nwidth = 200\nheight = 100\n[network]\nhidden = [8, 8]\ncolor = 'grey'\n")
    out = tmp_path / "g.tif"
    assert run("render", cfg, "-o", out, "--width", 60, "--set", "network.activation=sin", "-q") == 0
    img = pyvips.Image.new_from_file(str(out))
    assert (img.width, img.height, img.bands) == (60, 30, 1), "only --width given: the config's aspect is kept"


def test_default_output_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run("render", "--width", 32, "--height", 16, "--seed", 9, "-q") == 0
    assert listing(tmp_path) == ["cppn-9-32x16.tif"]


def test_progress_bar_and_summary_on_stderr(tmp_path, capsys):
    assert run("render", "-o", tmp_path / "p.png", "--width", 64, "--height", 64) == 0
    err = capsys.readouterr().err
    assert "px/s" in err and "wrote" in err and "MPix/s" in err


def test_plan_json_and_text(tmp_path, capsys):
    out = tmp_path / "poster.tif"
    assert run("plan", "-o", out, "--width", 1000, "--height", 700, "--tile", 128, "--json") == 0
    d = json.loads(capsys.readouterr().out)
    assert d["canvas"] == {"width": 1000, "height": 700, "megapixels": 0.7, "bands": 3, "depth": 8}
    assert d["tiles"] == 8 * 6 and d["strips"] == 6 and d["strip_height"] == 128
    assert d["output"]["format"] == "tiff" and d["output"]["estimated_bytes"] > 0
    assert d["output"]["writer"].startswith("bigcppn's TIFF writer, deflate tiles on")
    assert 100e6 < d["estimated_peak_bytes"] < 1e9
    assert d["estimated_seconds"] > 0 and d["network_mpix_per_s"] > 0
    assert not out.exists(), "plan renders nothing"
    assert run("plan", "-o", out, "--width", 1000) == 0
    text = capsys.readouterr().out
    assert "1000 x 1000 px" in text and "about" in text
    assert run("plan", "-o", tmp_path / "p.dzi", "--width", 100) == 0
    assert "written by bigcppn's DeepZoom writer" in capsys.readouterr().out
    assert run("plan", "-o", tmp_path / "p.szi", "--width", 100, "--set", 'output.dz_suffix="png"') == 0
    assert "written by libvips" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.toml"], "config file 'missing.toml' does not exist"),
        (["--set", "network.hidden=7"], "network.hidden must be a list of integers"),
        (["--set", "netwrk.hidden=[7]"], "unknown config key 'netwrk'"),
        (["--set", "network.activation=swish"], "unknown activation 'swish'"),
        (["--width", 70000, "--height", 10, "-o", "{tmp}/big.jpg"], "JPEG holds at most 65535 px a side"),
        (["--width", 16384, "--height", 10, "-o", "{tmp}/big.webp"], "WEBP holds at most 16383 px a side"),
        (["-o", "{tmp}/nodir/x.tif"], "does not exist; create it first"),
        (["-o", "{tmp}/x.bmp"], "has extension '.bmp'; use one of"),
        (["-o", "{tmp}/x.jpg", "--set", "output.depth=16"], "JPEG cannot hold 16-bit samples"),
        (["-o", "/proc/bigcppn-test.tif", "--width", 8], "cannot write in output directory '/proc'"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, message):
    args = [str(a).replace("{tmp}", str(tmp_path)) for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "out.tif")]
    assert run("render", *args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert listing(tmp_path) == []


@pytest.mark.parametrize("argv,message", [
    (["render", "--width", "abc"], "argument --width: expected a whole number, got 'abc'"),
    (["render", "--bogus"], "unrecognized arguments: --bogus"),
    (["frob"], "unknown command 'frob'; choose from render"),
    (["rendr"], "unknown command 'rendr' (did you mean 'render'?)"),
])
def test_command_line_mistakes_are_one_line_too(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        cli.main([*argv, "-o", str(tmp_path / "x.tif")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "--help" in err
    assert len(err.strip().splitlines()) == 1
    assert listing(tmp_path) == []


def test_malformed_config(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = [")
    assert run("render", bad, "-o", tmp_path / "x.png") == 2
    assert "is not valid TOML" in capsys.readouterr().err
    assert listing(tmp_path) == ["bad.toml"]


def test_cuda_asked_without_cuda(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert run("render", "--device", "cuda", "-o", tmp_path / "x.png") == 2
    assert "no CUDA device is available" in capsys.readouterr().err


def test_not_enough_disk(tmp_path, capsys, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    assert run("render", "-o", tmp_path / "x.tif", "--width", 512) == 2
    assert "not enough free disk" in capsys.readouterr().err
    assert listing(tmp_path) == []


@pytest.mark.parametrize("name", ["f.tif", "f.png", "f.dzi", "f.jpg"])
def test_failure_mid_render_leaves_nothing(tmp_path, capsys, monkeypatch, name):
    original = Renderer.render_strip
    calls = []

    def flaky(self, strip, **kw):
        calls.append(strip.index)
        if len(calls) == 3:
            raise RuntimeError("injected failure")
        return original(self, strip, **kw)

    monkeypatch.setattr(Renderer, "render_strip", flaky)
    (tmp_path / "keep.txt").write_text("x")
    assert run("render", "-o", tmp_path / name, "--width", 64, "--height", 200, "--tile", 16, "-q") == 1
    err = capsys.readouterr().err
    assert "injected failure" in err and "no file was written" in err
    assert listing(tmp_path) == ["keep.txt"]


def test_ctrl_c_mid_render_leaves_nothing(tmp_path, capsys, monkeypatch):
    original = Renderer.render_strip
    calls = []

    def interrupted(self, strip, **kw):
        calls.append(strip.index)
        if len(calls) == 4:
            raise KeyboardInterrupt  # stands in for the signal, which reaches the main thread
        return original(self, strip, **kw)

    import bigcppn.formats.target as sink

    real_save = sink.save_strips

    def save_then_interrupt(*a, **k):
        # deliver the interrupt in the waiting thread once rendering is under way
        poll = k["poll"]

        def poll_and_interrupt():
            poll()
            if len(calls) >= 2:
                raise KeyboardInterrupt

        k["poll"] = poll_and_interrupt
        return real_save(*a, **k)

    monkeypatch.setattr(Renderer, "render_strip", interrupted)
    monkeypatch.setattr(sink, "save_strips", save_then_interrupt)
    assert run("render", "-o", tmp_path / "i.tif", "--width", 64, "--height", 400, "--tile", 16, "-q") == 130
    assert "interrupted" in capsys.readouterr().err
    assert listing(tmp_path) == []


@pytest.mark.parametrize("signame, code, word", [("SIGINT", 130, "interrupted"), ("SIGTERM", 143, "terminated")])
def test_a_signal_to_a_real_process_leaves_nothing(tmp_path, signame, code, word):
    """Ctrl-C (SIGINT) or kill/timeout (SIGTERM) mid-render: the temporary output is removed."""
    import signal
    import time

    out = tmp_path / "big.tif"
    proc = subprocess.Popen([sys.executable, "-m", "bigcppn", "render", "-o", str(out), "--width", "4000",
                             "--height", "4000", "--tile", "64"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not any(p.name.startswith(".big.tif.partial") for p in tmp_path.iterdir()):
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert word in err
    assert listing(tmp_path) == []


def test_uncompressed_tiff_counts_its_full_size_against_the_disk(tmp_path, capsys, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 0, 2 * 10**6))
    args = ["--width", 1000, "--height", 1000, "-o", tmp_path / "u.tif", "-q"]
    assert run("render", *args, "--set", "output.compression=none") == 2
    assert "not enough free disk" in capsys.readouterr().err
    assert listing(tmp_path) == []


def test_from_does_not_carry_the_device(tmp_path):
    import json

    assert run("render", "--width", 16, "--device", "cpu", "-o", tmp_path / "a.dzi", "-q") == 0
    side = tmp_path / "a.bigcppn.json"
    d = json.loads(side.read_text())
    d["config"]["render"]["device"] = "cuda"  # as if made on a GPU machine
    side.write_text(json.dumps(d))
    assert run("render", "--from", tmp_path / "a.dzi", "-o", tmp_path / "b.png", "-q") == 0


def test_something_in_the_way_of_a_deepzoom_output(tmp_path, capsys):
    (tmp_path / "cf_files").write_text("not a folder")
    assert run("render", "--width", 16, "-o", tmp_path / "cf.dzi") == 2
    assert "in the way of the output" in capsys.readouterr().err
    assert listing(tmp_path) == ["cf_files"]


def test_python_m_and_help():
    out = subprocess.run([sys.executable, "-m", "bigcppn", "render", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for flag in ("--width", "--height", "--seed", "--tile", "--device", "--set", "-q", "-v", "-o"):
        assert flag in out.stdout
    bad = subprocess.run([sys.executable, "-m", "bigcppn", "render", "--width", "-3"], capture_output=True, text=True)
    assert bad.returncode == 2 and "expected a number >= 1" in bad.stderr



def console_script() -> str:
    """The installed ``bigcppn`` program (pip's console script), beside this Python's own."""
    found = Path(sysconfig.get_path("scripts")) / "bigcppn"
    if found.exists():
        return str(found)
    found = shutil.which("bigcppn")
    if found is None:
        pytest.skip("the bigcppn console script is not installed (pip install -e .)")
    return found


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("argv", [["plan"], ["plan", "--json"], ["--help"]], ids=" ".join)
def test_a_reader_that_goes_away_ends_the_program_quietly(argv, unbuffered):
    """``bigcppn plan | head -1``: no BrokenPipeError traceback, exit 141 (128 + SIGPIPE) as other tools.

    The reader here has closed its end before the program writes a byte, so every write fails.
    With stdout buffered the failure comes at the last flush (Python's "Exception ignored"
    message at exit); unbuffered, in print itself (a traceback).
    """
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])  # this checkout
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([console_script(), *argv], stdout=write_end, stderr=subprocess.PIPE, text=True,
                              env=env, timeout=120)
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.stderr == ""
    # argparse's --help swallows a failed write of its own (unbuffered, nothing is left to flush): 0 then.
    assert proc.returncode == (0 if unbuffered and argv == ["--help"] else cli.BROKEN_PIPE)


def test_compression_and_quality_flags(tmp_path, capsys):
    import tifffile

    assert run("render", "--width", 64, "--compression", "lzw", "-q", "-o", tmp_path / "l.tif") == 0
    with tifffile.TiffFile(tmp_path / "l.tif") as tf:
        assert tf.pages[0].compression == 5
    sizes = {}
    for q in (30, 95):
        assert run("render", "--width", 256, "--quality", q, "-q", "-o", tmp_path / f"q{q}.jpg") == 0
        sizes[q] = (tmp_path / f"q{q}.jpg").stat().st_size
    assert sizes[30] < sizes[95]
    assert run("render", "--width", 64, "--compression", "jpeg", "--quality", 60, "-q", "-o", tmp_path / "j.tif") == 0
    with tifffile.TiffFile(tmp_path / "j.tif") as tf:
        assert tf.pages[0].compression == 7
    # the config keys still work
    assert run("render", "--width", 64, "--set", "output.compression=none", "-q", "-o", tmp_path / "n.tif") == 0
    with tifffile.TiffFile(tmp_path / "n.tif") as tf:
        assert tf.pages[0].compression == 1


@pytest.mark.parametrize("args, message", [
    (["--compression", "lzw", "-o", "{tmp}/x.png"], "--compression is for TIFF and PDF outputs"),
    (["--quality", "50", "-o", "{tmp}/x.png"], "--quality is for lossy outputs"),
    (["--quality", "50", "-o", "{tmp}/x.tif"], "--quality is for lossy outputs"),
    (["--quality", "0", "-o", "{tmp}/x.jpg"], "--quality must be between 1 and 100"),
    (["--compression", "jpeg", "--depth", "16", "-o", "{tmp}/x.tif"], "JPEG-compressed TIFF holds 8 bits"),
])
def test_output_flags_a_format_has_no_use_for_are_refused(tmp_path, capsys, args, message):
    assert run("render", *[str(a).replace("{tmp}", str(tmp_path)) for a in args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert listing(tmp_path) == []
