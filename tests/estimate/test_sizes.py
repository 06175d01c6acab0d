"""Output sizes estimated from the picture, the free-space check built on them, a full disk in one line,
time estimates that a moment's load does not move, and the guards before a long render (issue 21, section 1)."""

import os
import shutil
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pytest

import bigcppn
import bigcppn.estimate.measure as measure
from bigcppn import api, cli
from bigcppn.estimate.sizes import sample_windows
from bigcppn.network.strips import Renderer, renderer_for

from conftest import small_config

ROOT = Path(__file__).resolve().parents[2]
BUSY = ['network.activation="sin"', "network.weight_scale=3", "view.zoom=0.05"]


def files_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("ext, busy", [(".tif", False), (".tif", True), (".png", False), (".jpg", True),
                                       (".dzi", False)])
def test_plans_bytes_are_within_a_quarter_of_the_file_written(tmp_path, ext, busy):
    """The fixed ratios were 0.38x-9.6x off (a smooth picture deflates to a tenth, a busy one hardly)."""
    cfg = bigcppn.load_config(None, (BUSY if busy else []) + ["canvas.width=1400", "canvas.height=1400", "seed=5"])
    out = tmp_path / f"a{ext}"
    info = api.plan(cfg, out)
    api.render_file(cfg, out)
    real = files_bytes(tmp_path)
    assert 0.75 <= info.estimated_bytes / real <= 1.25, (info.estimated_bytes, real)
    low, high = info.as_dict()["output"]["estimated_bytes_range"]
    assert low <= real <= high


def test_sample_tiles_are_spread_over_the_whole_canvas():
    wins = sample_windows(6000, 4000, 256, 16)
    assert len(wins) >= 12
    assert all(0 <= w.x and w.x + w.width <= 6000 and 0 <= w.y and w.y + w.height <= 4000 for w in wins)
    xs, ys = sorted(w.x for w in wins), sorted(w.y for w in wins)
    assert xs[0] < 1000 and xs[-1] > 4700 and ys[0] < 1000 and ys[-1] > 2700  # corners reached
    assert len({(w.x, w.y) for w in wins}) == len(wins)
    assert [(w.width, w.height) for w in sample_windows(100, 50, 256, 16)][0] == (100, 50)


def fake_free(monkeypatch, free: int):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**12, 10**12 - free, free))


def test_a_smooth_render_that_fits_is_not_refused_and_one_that_cannot_is(tmp_path, monkeypatch, capsys):
    """The old check asked for 3.9x a smooth TIFF's size (a 14 MB file refused on a 40 MB disk)."""
    args = ["render", "--width", "1400", "--height", "1400", "--seed", "5", "-q"]
    assert cli.main(args + ["-o", str(tmp_path / "probe.tif")]) == 0
    real = (tmp_path / "probe.tif").stat().st_size
    fake_free(monkeypatch, int(real * 1.6))
    assert cli.main(args + ["-o", str(tmp_path / "a.tif")]) == 0
    assert (tmp_path / "a.tif").stat().st_size == real
    fake_free(monkeypatch, real // 3)
    assert cli.main(args + ["-o", str(tmp_path / "b.tif")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not enough free disk" in err[0] and "likely" in err[0] and "sample tiles" in err[0]
    assert not (tmp_path / "b.tif").exists()


def private_tmpfs() -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs none /mnt"], capture_output=True).returncode == 0


def test_a_full_disk_hit_anyway_says_so_in_one_line(tmp_path, ext=".png"):
    """A busy picture whose low estimate fits passes the check, then fills a 3 MB disk: PNG said
    'vips2png: unable to write to target'."""
    if not private_tmpfs():
        pytest.skip("no private mount namespace here (unshare -m needs root)")
    disk = tmp_path / "disk"
    disk.mkdir()
    flags = " ".join(f"--set '{s}'" for s in BUSY)
    script = (f"mount -t tmpfs -o size=3m none {disk} && {sys.executable} -m bigcppn render {flags} "
              f"--width 1400 --height 1400 -q -o {disk}/a{ext}; ")
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script + f"echo rc=$? >&2; ls -A {disk} >&2"],
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("bigcppn: no space left on device writing") and len(lines) == 2, proc.stderr
    assert lines[1] in ("rc=1", "rc=2")  # rendered and failed, or refused before (then 'not enough free disk')


def test_the_load_of_a_moment_does_not_move_the_network_rate():
    """CPU time per pixel, not wall time: the same work, its wall time stretched 2.5x by other processes,
    gives the same rate; a machine busy for the last minute gives the share of the cores it will get."""
    idle = measure.loaded_rate(4e6, 2.0, workers=2, cores=2, other_load=0.0)[0]
    assert idle == pytest.approx(4e6)
    assert measure.loaded_rate(4e6, 2.0, workers=2, cores=2, other_load=0.3)[0] / idle > 1 / 1.3
    assert measure.loaded_rate(4e6, 2.0, workers=2, cores=2, other_load=2.0)[0] == pytest.approx(2e6)


def test_under_heavy_load_the_cores_it_got_give_the_range_and_leave_the_estimate():
    """Measured here (issue 21): at a load of 7.65 on 2 cores the load average promised 0.41 cores, the
    measurement got 0.27 and the render 0.30; the estimate ran at 0.6-0.7x of the real time. The cores the
    measurement got now bound the range (blended into the estimate, they made three plans in a row spread
    1.47x); the estimate stays the load average's, steady."""
    share = 4 / 9.65
    rate, slow, fast = measure.loaded_rate(4e6, 1.0, workers=2, cores=2, other_load=7.65, got=0.27)
    assert rate == pytest.approx(4e6 * share) == fast and slow == pytest.approx(4e6 * 0.27)
    rate, slow, fast = measure.loaded_rate(4e6, 1.0, workers=2, cores=2, other_load=2.0, got=1.6)
    assert rate == pytest.approx(4e6) == slow and fast == pytest.approx(6.4e6)
    assert measure.loaded_rate(4e6, 1.0, workers=2, cores=2, other_load=0.0, got=5.0) == (8e6, 8e6, 8e6)


def test_a_stalled_measurement_gives_the_same_estimate(monkeypatch):
    """Windows that wait (a process beside it took the cores) slowed the wall-clock rate; 13 s vs 31 s."""
    cfg = small_config(1200, 1200, "render.tile=128")
    renderer, plan = renderer_for(cfg)
    monkeypatch.setattr(measure, "other_load", lambda *_a: 0.0)
    rate, _arrays, _cores, _span = measure.measure_network(renderer, plan, 2)
    original = Renderer.render_window
    count = [0]

    def stalled(self, win):
        count[0] += 1
        t = time.perf_counter()
        out = original(self, win)
        time.sleep(3 * (time.perf_counter() - t) if count[0] % 2 else 0)  # waiting: wall time, no CPU time
        return out

    monkeypatch.setattr(Renderer, "render_window", stalled)
    slowed, _arrays, _cores, _span = measure.measure_network(renderer, plan, 2)
    assert 1 / 1.5 < slowed / rate < 1.5, (rate, slowed)


def test_a_dpi_typo_is_refused_before_it_starts(tmp_path, capsys):
    out = tmp_path / "a.tif"
    assert cli.main(["render", "--size", "A2", "--dpi", "5000", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "over 2400" in err[0] and "--force" in err[0]
    assert cli.main(["plan", "--size", "A6", "--dpi", "2600", "--force", "-o", str(out), "--json"]) == 0
    assert not out.exists()


def test_a_long_render_prints_its_plan_first(tmp_path, capsys, monkeypatch):
    import bigcppn.cli.render as render

    monkeypatch.setattr(render, "LONG_PIXELS", 0)
    monkeypatch.setattr(render, "LONG_SECONDS", -1)  # every render counts as long
    out = tmp_path / "a.png"
    assert cli.main(["render", "--width", "300", "--height", "200", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    first = err.strip().splitlines()[0]
    assert first.startswith("bigcppn: 300 x 200 px (0.1 MPix), about ") and "to " + str(out) in first
    assert "B to" in first


@pytest.mark.slow
@pytest.mark.parametrize("ext", [".tif", ".jpg", ".dzi", ".szi", ".pdf", ".webp"])
def test_every_format_says_a_full_disk_in_one_line(tmp_path, ext):
    """A disk a little larger than the low end of the estimate: the check lets the render through, the write
    fills the disk, and the one line says so (measured for every format; the .szi's leftover partial folder
    on a full disk is issue 21 section 3.5's)."""
    if not private_tmpfs():
        pytest.skip("no private mount namespace here (unshare -m needs root)")
    from bigcppn.estimate.sizes import estimate_output
    from bigcppn.job import resolve_job

    cfg = bigcppn.load_config(None, BUSY + ["canvas.width=1400", "canvas.height=1400"])
    job = resolve_job(cfg, tmp_path / f"a{ext}")
    est = estimate_output(job, renderer_for(job.config)[0])
    size = int(job.fmt.disk_for(est.low, job.config.output) * 1.04) // 4096 * 4096
    disk = tmp_path / "disk"
    disk.mkdir()
    flags = " ".join(f"--set '{s}'" for s in BUSY)
    script = (f"mount -t tmpfs -o size={size} none {disk} && {sys.executable} -m bigcppn render {flags} "
              f"--width 1400 --height 1400 -q -o {disk}/a{ext}; echo rc=$? >&2")
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"bigcppn: no space left on device writing {disk}/a{ext}; free some space or write "
                     "elsewhere; no file was written", "rc=1"], proc.stderr


def test_a_smooth_pyramid_that_fits_is_not_refused(tmp_path, monkeypatch, capsys):
    """pyramid --dry-run said 134.5 MB for a pyramid of 21 MB (4.15x); the check refused on that."""
    args = ["pyramid", "--width", "1600", "--height", "1200", "--seed", "5", "-q"]
    assert cli.main(args + ["-o", str(tmp_path / "probe" / "p.dzi")]) == 2  # (no such folder: one line)
    (tmp_path / "probe").mkdir()
    assert cli.main(args + ["-o", str(tmp_path / "probe" / "p.dzi")]) == 0
    real = files_bytes(tmp_path / "probe" / "p_files")
    capsys.readouterr()
    (tmp_path / "site").mkdir()
    fake_free(monkeypatch, real * 2)
    assert cli.main(args + ["-o", str(tmp_path / "site" / "p.dzi")]) == 0
    assert files_bytes(tmp_path / "site" / "p_files") == real
    fake_free(monkeypatch, real // 3)
    (tmp_path / "other").mkdir()
    assert cli.main(args + ["-o", str(tmp_path / "other" / "p.dzi")]) == 2
    assert "not enough free disk for the pyramid" in capsys.readouterr().err
