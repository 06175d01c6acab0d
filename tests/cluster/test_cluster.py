"""Rendering on Ray: placement and jobs (pure), the worker's pieces (no Ray), and a real local Ray.

The tests marked ``ray`` start Ray on this machine (``ray.init(num_cpus=2)``,
its own short temp dir, shut down at the end of the module) and compare every
output byte for byte with the local executor's.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import pyvips

from bigcppn import cli
from bigcppn.errors import UserError
from bigcppn.core.geometry import Window
from bigcppn.pyramid.local import level_job_pixels
from bigcppn.pyramid.grid import Pyramid
from bigcppn.pyramid.worklist import work_list
from bigcppn.network.strips import renderer_for

from conftest import small_config
from conftest import tiles_and_tags

ROOT = Path(__file__).resolve().parents[2]


def files_under(root: Path) -> dict[str, bytes]:
    """Every file's bytes; a TIFF's as its tags and tiles (square blocks on Ray place tiles block by block, so
    only where each tile lies may differ) and its size."""
    return {p.relative_to(root).as_posix(): tiff_of(p) if p.suffix == ".tif" else p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and "openseadragon" not in p.parts}


def tiff_of(path: Path):
    """A TIFF's size, every level's tags (but where its tiles lie) and its tiles' bytes."""
    return path.stat().st_size, tiles_and_tags(path)


def pyramid_args(out: Path, *extra) -> list[str]:
    return ["pyramid", "--width", "700", "--height", "450", "--seed", "5", "-q", "-o", str(out), *map(str, extra)]


# --------------------------------------------------------------------------- without Ray


def test_core_never_imports_ray(tmp_path):
    """``import bigcppn`` and a local render and pyramid leave Ray unimported."""
    code = ("import sys, bigcppn; from bigcppn import cli; "
            f"cli.main(['render', '--width', '64', '--height', '48', '-q', '-o', r'{tmp_path / 'a.tif'}']); "
            f"cli.main(['pyramid', '--width', '64', '--height', '48', '-q', '-o', r'{tmp_path / 'p.dzi'}']); "
            "assert 'ray' not in sys.modules, 'ray was imported'")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.parametrize("overrides", [{}, {"network.color": "grey"}, {"output.depth": 16},
                                       {"network.hidden": [32, 32], "network.activation": "sin"}])
def test_a_window_is_the_strips_pixels_to_the_bit(device, overrides):
    """Backend.render_window of any rectangle is the same pixels as the strips of a whole render.

    A worker renders each base tile of a pyramid as its own window; the local
    run cuts them from full-width strips. Every pixel is evaluated on its own,
    so the two agree to the bit, windows of one pixel included.
    """
    cfg = small_config(1100, 700, **{k.replace(".", "__"): v for k, v in overrides.items()})
    r, plan = renderer_for(cfg, device)
    whole = r.render(plan)
    rng = np.random.default_rng(7)
    wins = [(0, 0, 1, 1), (1099, 699, 1, 1), (3, 5, 1, 7), (253, 253, 256, 256), (1000, 600, 100, 100)]
    wins += [(int(x), int(y), int(w), int(h)) for x, y, w, h in
             zip(rng.integers(0, 1100, 20), rng.integers(0, 700, 20), rng.integers(1, 300, 20), rng.integers(1, 300, 20))]
    for x, y, w, h in wins:
        w, h = min(w, 1100 - x), min(h, 700 - y)
        got = r.render_window(Window(x, y, w, h))
        assert np.array_equal(got, whole[y : y + h, x : x + w]), (x, y, w, h)


@pytest.mark.parametrize("args,message", [
    (["--ray-address", "auto"], "--ray-address is for --executor ray"),
    (["--executor", "ray", "--ray-address", "127.0.0.1:1"], "cannot reach the Ray cluster at '127.0.0.1:1'"),
    (["--executor", "ray", "--ray-address", "nowhere"], "is not HOST:PORT"),
])
def test_bad_ray_options_exit_2_with_one_line(tmp_path, capsys, args, message):
    pytest.importorskip("ray")
    assert cli.main(pyramid_args(tmp_path / "p.dzi", *args)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_place_actors():
    from bigcppn.cluster.executor import ActorSpec, Node, place_actors

    a, b = Node("a", "10.0.0.1", 16, 0), Node("b", "10.0.0.2", 8, 0)
    assert place_actors([a, b]) == [ActorSpec("a", 16, 0), ActorSpec("b", 8, 0)]  # one per CPU node, all cores
    assert place_actors([Node("h", "x", 2, 0)], 2) == [ActorSpec("h", 1, 0), ActorSpec("h", 1, 0)]
    three = place_actors([a, b], 3)
    assert [s.node for s in three].count("a") == 2 and sum(s.cpus for s in three) == 24
    g = Node("g", "10.0.0.3", 32, 4)
    assert place_actors([g, a]) == [ActorSpec("g", 8, 1)] * 4  # GPUs, each with a share of its node's cores
    g2 = Node("g2", "10.0.0.4", 8, 2)
    assert [s.node for s in place_actors([g, g2], 3)] == ["g", "g2", "g"]
    with pytest.raises(UserError, match="GPUs"):
        place_actors([g], 5)
    with pytest.raises(UserError, match="CPU cores"):
        place_actors([Node("h", "x", 2, 0)], 3)
    with pytest.raises(UserError, match="no node"):
        place_actors([Node("h", "x", 0, 0)])


def test_jobs_cover_the_work_list_once():
    from bigcppn.cluster.pyramid import split_work

    p = Pyramid(3000, 2000, "dz", 254, 1)
    done = {t.path for t in p.all_tiles() if hash(t.path) % 3 == 0}  # a resumed run: some tiles there
    work = work_list(p, level_job_pixels(2), done.__contains__)
    jobs = split_work(work, 2, 300_000)
    got = [t.path for j in jobs for t in j.wanted()]
    assert sorted(got) == sorted(t.path for t in p.all_tiles() if t.path not in done)
    assert len(got) == len(set(got)) and len(jobs) > 5
    assert all(j.samples(2) < 300_000 + 4 * 256 * 256 * 16 for j in jobs)


def test_job_budget_scales_with_the_actor_and_keeps_every_actor_busy():
    from bigcppn.cluster.executor import ActorSpec
    from bigcppn.cluster.pyramid import GPU_JOB_SAMPLES, JOB_SAMPLES, job_budget

    cpu, gpu = ActorSpec("a", 4, 0), ActorSpec("b", 16, 1)
    assert job_budget(10**12, [cpu]) == 4 * JOB_SAMPLES
    assert job_budget(10**12, [gpu, cpu]) == GPU_JOB_SAMPLES
    assert job_budget(64 * GPU_JOB_SAMPLES, [gpu] * 64) == GPU_JOB_SAMPLES // 4  # four jobs per GPU
    assert job_budget(1000, [cpu] * 8) == JOB_SAMPLES  # never below one core's share


def test_a_resumed_work_list_from_one_listing_is_the_stat_one(tmp_path):
    from bigcppn.pyramid.store import TileStore

    p = Pyramid(1500, 900, "dz", 254, 1, name="p")
    store = TileStore(tmp_path)
    for i, t in enumerate(p.all_tiles()):
        if i % 3 == 0:
            store.write(t.path, b"x")
    listed = store.listing(tmp_path / "p_files")
    assert work_list(p, level_job_pixels(2), listed.__contains__) == work_list(p, level_job_pixels(2), store.exists)


def test_folder_check_names_the_shared_filesystem(tmp_path):
    from bigcppn.cluster.tasks import FolderCheck

    (tmp_path / ".lock").write_text("token")
    assert FolderCheck(str(tmp_path), ".lock", "token")()[0] is None
    problem, _version = FolderCheck(str(tmp_path), ".lock", "other")()
    assert "different" in problem and "shares" in problem
    problem, _version = FolderCheck(str(tmp_path / "missing"), ".lock", "token")()
    assert "does not exist" in problem and "shares" in problem
    assert [p.name for p in tmp_path.iterdir()] == [".lock"]


def test_pyramid_task_writes_the_local_tiles(tmp_path):
    """The actor's task, run here without Ray, writes the local run's files."""
    from bigcppn.cluster.pyramid import split_work
    from bigcppn.cluster.tasks import PyramidTask

    (tmp_path / "a").mkdir()
    assert cli.main(pyramid_args(tmp_path / "a" / "p", "--layout", "google")) == 0
    local = files_under(tmp_path / "a" / "p")
    cfg = small_config(700, 450, seed=5)
    p = Pyramid(700, 450, "google", 256, 0, name="image")
    work = work_list(p, level_job_pixels(2), lambda _path: False)
    task = PyramidTask(cfg, str(tmp_path / "b"), p.codec, 90, 2)
    jobs = split_work(work, 2, 100_000)
    assert len(jobs) > 2 and any(j.base for j in jobs) and any(j.levels for j in jobs)
    for job in jobs:
        assert sorted(task(job)) == sorted(t.path for t in job.wanted())
    for path, data in files_under(tmp_path / "b").items():
        assert local[path] == data, path


# --------------------------------------------------------------------------- a real local Ray


@pytest.fixture
def small_jobs(monkeypatch):
    """Many small jobs, so every actor has some queued at any moment."""
    monkeypatch.setattr("bigcppn.cluster.pyramid.JOB_SAMPLES", 30_000)


@pytest.mark.ray
@pytest.mark.parametrize("layout", ["dz", "iiif3"])
def test_pyramid_on_ray_is_the_local_pyramid(tmp_path, local_ray, small_jobs, layout):
    out = "p.dzi" if layout == "dz" else "p"
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    assert cli.main(pyramid_args(tmp_path / "a" / out, "--layout", layout)) == 0
    assert cli.main(pyramid_args(tmp_path / "b" / out, "--layout", layout, "--executor", "ray", "--workers", "2")) == 0
    a, b = files_under(tmp_path / "a"), files_under(tmp_path / "b")
    assert a == b and len(a) > 10


@pytest.mark.ray
def test_an_actor_killed_mid_run_is_restarted_and_the_pyramid_is_the_same(tmp_path, local_ray, small_jobs):
    from bigcppn import api
    from bigcppn.cluster.pyramid import RayOptions, RayPyramidRunner
    from bigcppn.pyramid.render import PyramidHooks, render_pyramid
    from bigcppn.pyramid.grid import Pyramid
    from bigcppn.pyramid.request import PyramidRequest, pyramid_place

    cfg = small_config(700, 450, seed=5)
    (tmp_path / "a").mkdir()
    api.render_pyramid(cfg, tmp_path / "a" / "p.dzi")
    killed = []

    class Killing(RayPyramidRunner):
        def open(self, request):
            super().open(request)
            self.pids = self.ex.pids()

    runner = Killing(RayOptions(workers=2))

    def on_tile(_t):
        if not killed and runner.ex is not None:
            os.kill(runner.pids[0], signal.SIGKILL)  # mid-run: the actor has jobs running and queued
            killed.append(runner.pids[0])

    (tmp_path / "b").mkdir()
    out = pyramid_place(cfg, tmp_path / "b" / "p.dzi", "dz")
    request = PyramidRequest(cfg, out, Pyramid(700, 450, "dz", 254, 1, name="p"), quality=90, supersample=2)
    stats = render_pyramid(request, runner, PyramidHooks(on_tile=on_tile))
    assert killed and stats.written == stats.tiles
    assert files_under(tmp_path / "a") == files_under(tmp_path / "b")


@pytest.mark.ray
def test_a_worker_that_cannot_build_the_network_fails_with_one_line(tmp_path, local_ray, capsys):
    code = cli.main(pyramid_args(tmp_path / "p.dzi", "--executor", "ray", "--device", "cuda"))
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1 and "could not build the network" in err and "CUDA" in err
    assert list(tmp_path.iterdir()) == []  # found at the start, before the manifest


@pytest.mark.ray
def test_a_worker_that_cannot_write_a_tile_fails_with_one_line(tmp_path, local_ray, capsys):
    assert cli.main(pyramid_args(tmp_path / "p.dzi")) == 0
    base = max((d for d in (tmp_path / "p_files").iterdir()), key=lambda d: int(d.name))
    shutil.rmtree(base)
    base.write_text("in the way")  # the base level's folder cannot be made
    (tmp_path / "p.dzi").unlink()
    code = cli.main(pyramid_args(tmp_path / "p.dzi", "--executor", "ray"))
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "could not write a tile" in err, err
    assert not (tmp_path / "p.dzi").exists()
    assert not [p for p in tmp_path.rglob("*") if ".partial-" in p.name]


def kill_driver_when(args: list, ready) -> None:
    """Run the CLI with ``args`` in a driver process and SIGKILL it once ``ready()`` (polled for up to 120 s)."""
    import time

    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "bigcppn", *map(str, args)], env=env, stderr=subprocess.PIPE)
    try:
        for _ in range(1200):
            if ready() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the driver finished before it could be killed"
        proc.kill()
    finally:
        proc.wait(timeout=60)


@pytest.mark.ray
@pytest.mark.slow
def test_driver_killed_mid_run_then_resumed(tmp_path, local_ray):
    """A CLI driver on the test's cluster, SIGKILLed after its first tiles; the same command finishes it."""
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    assert cli.main(pyramid_args(tmp_path / "a" / "p.dzi", "--width", 1400, "--height", 900)) == 0
    args = pyramid_args(tmp_path / "b" / "p.dzi", "--width", 1400, "--height", 900, "--executor", "ray",
                        "--ray-address", local_ray)
    tiles = tmp_path / "b" / "p_files"
    kill_driver_when(args, lambda: tiles.is_dir() and sum(1 for _ in tiles.rglob("*.jpeg")) >= 3)
    assert not (tmp_path / "b" / "p.dzi").exists()
    assert cli.main(args) == 0
    assert files_under(tmp_path / "a") == files_under(tmp_path / "b")


# --------------------------------------------------------------------------- single-file TIFF on Ray


def render_args(out: Path, *extra) -> list[str]:
    return ["render", "--width", "900", "--height", "700", "--seed", "4", "-q", "--set", "output.tiff_tile=64",
            "-o", str(out), *map(str, extra)]


@pytest.mark.ray
@pytest.mark.parametrize("extra", [["--workers", "2"], ["--workers", "1", "--height", "1400"]],
                         ids=["square blocks", "bands"])
def test_tiff_on_ray_is_the_local_tiff(tmp_path, local_ray, extra):
    from bigcppn.formats.tiff.blocks import choose_blocks

    assert cli.main(render_args(tmp_path / "a.tif", *extra[2:])) == 0
    assert cli.main(render_args(tmp_path / "b.tif", "--executor", "ray", *extra)) == 0
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    assert tiff_of(a) == tiff_of(b)
    _, split = choose_blocks(900, int(extra[3]) if len(extra) > 2 else 700, 64, int(extra[1]))
    assert split == (extra[1] == "2")
    if not split:  # full-width bands: the tiles lie where the row writer puts them, byte for byte
        assert a.read_bytes() == b.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "b.tif"]


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("extra", [["--set", "output.compression=jpeg", "--set", "network.color=grey"],
                                   ["--depth", "16", "--set", "output.compression=lzw"], ["--flat"]])
def test_tiff_on_ray_jpeg_grey_and_16_bit(tmp_path, local_ray, extra):
    assert cli.main(render_args(tmp_path / "a.tif", *extra)) == 0
    assert cli.main(render_args(tmp_path / "b.tif", *extra, "--executor", "ray")) == 0
    assert tiff_of(tmp_path / "a.tif") == tiff_of(tmp_path / "b.tif")


@pytest.mark.ray
@pytest.mark.parametrize("out,extra,word", [("x.png", [], "'png'"), ("x.tif", ["--set", "output.compression=none"],
                                                                         "none tiles"),
                                            ("x.dzi", ["--set", "output.dz_suffix=png"], ".dzi with png tiles")])
def test_ray_renders_only_what_the_band_writers_write(tmp_path, capsys, local_ray, out, extra, word):
    assert cli.main(render_args(tmp_path / out, *extra, "--executor", "ray")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and word in err and "--executor local" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.ray
def test_a_cmyk_tiff_on_ray_is_the_local_one_with_a_profile_file_the_workers_never_see(tmp_path, local_ray):
    from bigcppn.formats.icc import builtin_profile

    icc = tmp_path / "press.icc"
    icc.write_bytes(builtin_profile("cmyk"))  # the task carries the bytes: the actors get their own copy
    assert cli.main(render_args(tmp_path / "a.tif", "--cmyk", icc, "--intent", "relative")) == 0
    assert cli.main(render_args(tmp_path / "b.tif", "--cmyk", icc, "--intent", "relative",
                                "--executor", "ray", "--workers", "2")) == 0
    assert tiff_of(tmp_path / "a.tif") == tiff_of(tmp_path / "b.tif")
    image = pyvips.Image.new_from_file(str(tmp_path / "b.tif"))
    assert image.interpretation == "cmyk" and bytes(image.get("icc-profile-data")) == icc.read_bytes()


def dz_args(out: Path, *extra) -> list[str]:
    """Small DeepZoom tiles with a wide overlap: bands of 4 tile rows (k = 2), margins of 12 rows."""
    return render_args(out, "--height", 1400, "--set", "output.dz_tile=40", "--set", "output.dz_overlap=3", *extra)


def szi_entries(path: Path) -> dict[str, tuple[bytes, int]]:
    """A .szi's entries, names without the pyramid's own name (a word found nowhere else), and their bytes and
    modes (the date-stamped scan-properties.xml left out)."""
    z = zipfile.ZipFile(path)
    stem = path.stem
    return {i.filename.replace(stem, "NAME"): (z.read(i), i.external_attr) for i in z.infolist()
            if not i.filename.endswith("scan-properties.xml")}


@pytest.mark.ray
def test_deepzoom_on_ray_is_the_local_deepzoom(tmp_path, local_ray):
    assert cli.main(dz_args(tmp_path / "a" / "p.dzi")) == 2  # no folder a/ yet: refused before Ray starts
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert cli.main(dz_args(tmp_path / "a" / "p.dzi")) == 0
    assert cli.main(dz_args(tmp_path / "b" / "p.dzi", "--executor", "ray", "--workers", "2")) == 0
    a, b = files_under(tmp_path / "a"), files_under(tmp_path / "b")
    assert len(a) > 100 and a == b
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["p.bigcppn.json", "p.dzi", "p_files"]


@pytest.mark.ray
def test_szi_on_ray_has_the_local_entries(tmp_path, local_ray):
    assert cli.main(dz_args(tmp_path / "local.szi", "--set", "network.color=grey")) == 0
    assert cli.main(dz_args(tmp_path / "onray.szi", "--set", "network.color=grey", "--executor", "ray")) == 0
    a, b = szi_entries(tmp_path / "local.szi"), szi_entries(tmp_path / "onray.szi")
    assert len(a) > 100 and a == b  # the same entries; their order in the zip follows the bands
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local.szi", "onray.szi"]


@pytest.mark.ray
@pytest.mark.parametrize("name", ["b.tif", pytest.param("b.dzi", marks=pytest.mark.slow)])
def test_an_actor_killed_mid_run_leaves_the_same_file(tmp_path, local_ray, name):
    from bigcppn.api import as_config
    from bigcppn.cluster.pyramid import RayOptions
    from bigcppn.cluster.single import render_single
    from bigcppn.job import resolve_job
    from bigcppn.formats.target import OutputTarget

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    tiles = ["output.tiff_tile=64", "output.dz_tile=40", "output.dz_overlap=3"]
    assert cli.main(render_args(tmp_path / "a" / name, "--height", 1400, *[a for t in tiles for a in ("--set", t)])) == 0
    cfg = as_config(None, seed=4, overrides=["canvas.width=900", "canvas.height=1400", *tiles])
    job = resolve_job(cfg, tmp_path / "b" / name)
    pids, killed = [], []

    def progress(done, total):
        if not killed and done < total:
            os.kill(pids[0], signal.SIGKILL)  # its running and queued bands run again on the restarted actor
            killed.append(pids[0])

    info = render_single(job, OutputTarget(job.output, job.fmt), RayOptions(workers=2), 65536, progress,
                         on_workers=lambda ex: pids.extend(ex.pids()))
    assert killed and info["blocks"] >= 8
    assert files_under(tmp_path / "a") == files_under(tmp_path / "b")


@pytest.mark.ray
def test_a_series_of_seeds_shares_one_set_of_actors(tmp_path, local_ray, monkeypatch):
    from bigcppn.cluster import executor as engine

    started = []
    real = engine.RayExecutor.__init__

    def counting(self, *a, **kw):
        started.append(1)
        real(self, *a, **kw)

    monkeypatch.setattr(engine.RayExecutor, "__init__", counting)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    args = ["render", "--width", "300", "--height", "500", "--seeds", "3-5", "-q", "--set", "output.tiff_tile=32"]
    assert cli.main([*args, "-o", str(tmp_path / "a" / "p-{seed}.tif")]) == 0
    assert cli.main([*args, "-o", str(tmp_path / "b" / "p-{seed}.tif"), "--executor", "ray", "--workers", "2"]) == 0
    assert started == [1]
    a, b = files_under(tmp_path / "a"), files_under(tmp_path / "b")
    assert sorted(a) == ["p-3.tif", "p-4.tif", "p-5.tif"] and a == b


def written(partial: Path) -> int:
    """Bytes a render has written so far in its hidden folder (a TIFF, or a DeepZoom pyramid's tiles)."""
    return sum(p.stat().st_size for p in partial.rglob("*") if p.is_file())


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".tif", ".dzi"])
def test_driver_killed_leaves_nothing_then_renders(tmp_path, local_ray, suffix):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    out = tmp_path / "b" / f"b{suffix}"
    args = render_args(out, "--width", 1800, "--height", 2400, "--executor", "ray", "--ray-address", local_ray)

    def writing_started() -> bool:
        parts = list(out.parent.glob(f".b{suffix}.partial-*"))
        return bool(parts) and written(parts[0]) > 100_000

    kill_driver_when(args, writing_started)
    assert not out.exists() and not list(out.parent.glob("b_files"))
    assert cli.main(args) == 0
    assert cli.main(render_args(tmp_path / "a" / out.name, "--width", 1800, "--height", 2400)) == 0
    assert files_under(tmp_path / "a") == files_under(tmp_path / "b")  # the killed run's folder swept


def private_mounts_work() -> bool:
    """This process may give a child its own mount namespace (root, or a container that allows it)."""
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs none /mnt"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.ray
@pytest.mark.slow
def test_a_folder_the_workers_do_not_share_stops_the_pyramid_with_one_line(tmp_path, local_ray):
    """The driver runs in its own mount namespace, with a private tmpfs over the output's folder: as on a
    machine whose folder is not on the cluster's shared filesystem, the workers (outside) do not see it."""
    if not private_mounts_work():
        pytest.skip("no private mount namespace here (unshare -m needs root or a container allowing it)")
    real = tmp_path / "shared"
    real.mkdir()
    args = ["pyramid", "--width", "300", "--height", "200", "-q", "-o", str(real / "site" / "p.dzi"),
            "--executor", "ray", "--ray-address", local_ray]
    script = f"mount -t tmpfs none {real} && mkdir {real}/site && exec {sys.executable} -m bigcppn " + \
        " ".join(f"'{a}'" for a in args)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], env=env, capture_output=True, text=True,
                          timeout=120)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(err) == 1 and "does not exist on the worker" in err[0] and "filesystem every Ray node shares" in err[0]
    assert list(real.iterdir()) == []  # the workers wrote nothing into the folder they do see


def test_plan_shows_the_cut_on_ray_without_starting_it(capsys, monkeypatch):
    import bigcppn.cluster.executor as engine

    monkeypatch.setattr(engine, "RaySession", None)  # any use of Ray would fail
    assert cli.main(["plan", "--width", "8192", "--height", "8192", "-o", "x.tif", "--executor", "ray",
                     "--workers", "2", "--json"]) == 0
    ray_plan = __import__("json").loads(capsys.readouterr().out)["ray"]
    assert ray_plan["blocks"] == 8 and ray_plan["block_width"] == 8192 and ray_plan["levels_on_actors"] == 3
    assert cli.main(["plan", "--width", "100000", "--height", "70000", "-o", "x.dzi", "--executor", "ray",
                     "--workers", "64"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("ray       64 actors: 450 4064 x 4064 blocks; levels 0-4") and "(0.1% of the pixels)" in line
    assert cli.main(["plan", "-o", "x.png", "--executor", "ray"]) == 2
    assert "--executor local" in capsys.readouterr().err
