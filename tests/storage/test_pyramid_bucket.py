"""Pyramids written straight to a bucket (a real SeaweedFS): the same bytes as on disk, resumable, owned."""

from __future__ import annotations

import pytest

from bigcppn import cli

from s3helpers import files, objects

SMALL = ["--width", "300", "--height", "200", "--seed", "5", "--device", "cpu", "-q"]
LAYOUTS = [("dz", "pic.dzi"), ("iiif3", "pic"), ("zoomify", "pic"), ("google", "pic")]


def _render(out: str, *extra: str) -> int:
    return cli.main(["pyramid", *SMALL, "-o", out, *extra])


@pytest.mark.parametrize("layout,name", LAYOUTS)
def test_every_layout_in_a_bucket_has_the_bytes_of_the_local_render(weed, bucket, tmp_path, layout, name):
    assert _render(str(tmp_path / name), "--layout", layout) == 0
    assert _render(f"s3://{bucket}/pub/{name}", "--layout", layout) == 0
    local, remote = files(tmp_path), objects(weed, bucket, "pub")
    local = {k: v for k, v in local.items() if not k.startswith(("openseadragon", "pic/openseadragon"))}
    pages = {k for k in local if k.endswith(".html")}
    assert set(remote) == set(local)
    assert {k: v for k, v in remote.items() if k not in pages} == {k: v for k, v in local.items() if k not in pages}


def test_tiles_carry_the_codec_content_type_and_cache_control(weed, bucket):
    import obstore

    assert _render(f"s3://{bucket}/p/x.dzi", "--format", "webp", "--cache-control", "max-age=60") == 0
    store = weed.store(bucket)
    tile = next(k for k in objects(weed, bucket, "") if k.endswith(".webp"))
    attrs = obstore.get(store, tile).attributes
    assert attrs.get("Content-Type") == "image/webp"
    assert attrs.get("Cache-Control") == "max-age=60"
    assert obstore.get(store, "p/x.dzi").attributes.get("Content-Type") == "application/xml"


def test_a_resume_writes_only_the_missing_tiles(weed, bucket):
    import obstore

    out = f"s3://{bucket}/r/x.dzi"
    assert _render(out) == 0
    before = objects(weed, bucket, "r")
    store = weed.store(bucket)
    gone = sorted(k for k in before if "/x_files/" in f"/{k}")[:5]
    obstore.delete(store, [f"r/{k}" for k in gone] + ["r/x.dzi"])  # as a run killed before finishing
    from bigcppn import api

    written = []
    r = api.render_pyramid(cli_config(), out, on_tile=written.append)
    assert r.written == len(gone) and r.skipped == r.tiles - len(gone)
    assert r.requests["lists"] >= 1
    assert objects(weed, bucket, "r") == before


def cli_config(width: int = 300, height: int = 200):
    from bigcppn.config import load_config

    return load_config(None, [], {"canvas.width": width, "canvas.height": height, "render.device": "cpu",
                                  "seed": 5})


def test_another_render_under_the_same_name_is_refused_and_nothing_mixed(weed, bucket, capsys):
    out = f"s3://{bucket}/o/x.dzi"
    assert _render(out) == 0
    before = objects(weed, bucket, "o")
    assert cli.main(["pyramid", *SMALL[:-3], "--seed", "6", "--device", "cpu", "-q", "-o", out]) == 2
    assert "another render" in capsys.readouterr().err
    assert objects(weed, bucket, "o") == before


def test_overwrite_replaces_every_tile_and_writes_the_descriptor_last(weed, bucket, tmp_path):
    out = f"s3://{bucket}/w/x.dzi"
    assert _render(out) == 0
    args = ["pyramid", "--width", "300", "--height", "200", "--seed", "6", "--device", "cpu", "-q"]
    assert cli.main([*args, "-o", out, "--overwrite"]) == 0
    assert cli.main([*args, "-o", str(tmp_path / "x.dzi")]) == 0
    remote, local = objects(weed, bucket, "w"), files(tmp_path)
    local = {k: v for k, v in local.items() if not k.startswith("openseadragon") and not k.endswith(".html")}
    assert {k: v for k, v in remote.items() if not k.endswith(".html")} == local


def test_a_lock_held_by_another_run_refuses(weed, bucket, capsys):
    import obstore

    obstore.put(weed.store(bucket), "l/.x.bigcppn.lock",
                b'{"host": "elsewhere", "pid": 1, "since": "2020-01-01T00:00:00Z"}')
    assert _render(f"s3://{bucket}/l/x.dzi") == 2
    err = capsys.readouterr().err
    assert "another bigcppn run" in err and ".x.bigcppn.lock" in err
    assert "host elsewhere" in err and " ago)" in err and "--break-lock" in err  # who, how long, what to do
    assert set(objects(weed, bucket, "l")) == {".x.bigcppn.lock"}


def test_break_lock_takes_over_the_lock_another_machine_left(weed, bucket, tmp_path):
    import obstore

    obstore.put(weed.store(bucket), "bl/.x.bigcppn.lock", b'{"host": "elsewhere", "pid": 1}')
    assert _render(f"s3://{bucket}/bl/x.dzi", "--break-lock") == 0
    assert _render(str(tmp_path / "x.dzi")) == 0
    local = {k: v for k, v in files(tmp_path).items() if not k.startswith("openseadragon") and not k.endswith("html")}
    assert {k: v for k, v in objects(weed, bucket, "bl").items() if not k.endswith("html")} == local


def test_break_lock_refuses_the_lock_of_a_live_run_on_this_machine(weed, bucket, capsys):
    import json
    import os
    import socket

    live = json.dumps({"host": socket.gethostname(), "pid": os.getppid(), "since": "2020-01-01T00:00:00Z"})
    obstore = pytest.importorskip("obstore")
    obstore.put(weed.store(bucket), "lv/.x.bigcppn.lock", live.encode())
    assert _render(f"s3://{bucket}/lv/x.dzi", "--break-lock") == 2
    assert f"pid {os.getppid()} on this machine" in capsys.readouterr().err
    assert set(objects(weed, bucket, "lv")) == {".x.bigcppn.lock"}  # the live run's lock is still there


def test_a_stale_lock_of_a_dead_process_here_is_taken_over(weed, bucket):
    import json
    import socket
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    import obstore

    obstore.put(weed.store(bucket), "s/.x.bigcppn.lock", json.dumps({"host": socket.gethostname(), "pid": dead.pid}).encode())
    assert _render(f"s3://{bucket}/s/x.dzi") == 0
    assert ".x.bigcppn.lock" not in objects(weed, bucket, "s")


@pytest.mark.parametrize("problem", ["bucket", "key"])
def test_a_missing_bucket_or_wrong_keys_exit_2_before_rendering(weed, bucket, monkeypatch, capsys, problem):
    target = f"s3://{bucket}/b/x.dzi"
    if problem == "bucket":
        target = "s3://no-such-bucket/b/x.dzi"
    else:
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    assert _render(target) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert ("does not exist" in err) if problem == "bucket" else ("credentials were refused" in err)
    assert objects(weed, bucket, "b") == {}


def test_an_unreachable_endpoint_exits_2(bucket, capsys):
    assert _render(f"s3://{bucket}/u/x.dzi", "--endpoint-url", "http://127.0.0.1:9") == 2
    assert "no answer from the endpoint" in capsys.readouterr().err


@pytest.mark.parametrize("layout,name", [("dz", "x.dzi"), ("iiif3", "x")])
def test_the_dry_run_counts_the_requests_the_render_makes(bucket, layout, name, capsys):
    from bigcppn import api

    out = f"s3://{bucket}/plan/{name}"
    plan = api.plan_pyramid(cli_config(), out, layout=layout, measure=False)
    assert "PUTs" in str(plan)
    r = api.render_pyramid(cli_config(), out, layout=layout)
    for k in ("puts", "lists", "gets", "deletes"):
        assert plan.requests[k] == r.requests[k], k
    assert plan.requests["bytes_up"] > 0
    assert cli.main(["pyramid", *SMALL[:-1], "--layout", layout, "-o", out, "--dry-run"]) == 0
    assert "resumes" in capsys.readouterr().out


@pytest.mark.ray
def test_on_ray_the_actors_upload_every_tile_and_the_driver_none(weed, bucket, tmp_path):
    """Two actors, no shared folder: the objects are the local render's files; the driver PUT only the lock,
    manifest, page and descriptor."""
    import shutil
    import tempfile

    ray = pytest.importorskip("ray")
    from bigcppn import api

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        temp = tempfile.mkdtemp(prefix="rt-", dir="/tmp")
        mp.setenv("RAY_TMPDIR", temp)
        ray.init(num_cpus=2, _temp_dir=temp, include_dashboard=False, object_store_memory=256 * 2**20,
                 log_to_driver=False)  # the actors inherit the bucket's endpoint and keys from this environment
        try:
            r = api.render_pyramid(cli_config(), f"s3://{bucket}/ray/x.dzi", executor="ray", workers=2)
        finally:
            ray.shutdown()
            shutil.rmtree(temp, ignore_errors=True)
    assert r.written == r.tiles and r.requests["puts"] == 4  # lock, manifest, page, descriptor
    assert cli.main(["pyramid", *SMALL, "-o", str(tmp_path / "x.dzi")]) == 0
    local = {k: v for k, v in files(tmp_path).items() if not k.startswith("openseadragon") and not k.endswith("html")}
    remote = {k: v for k, v in objects(weed, bucket, "ray").items() if not k.endswith("html")}
    assert remote == local


# The render killed below: a pyramid whose tile writes stop after 20 tiles (the 21st waits forever), so the test
# kills it mid-run by a condition, not by a race between its polling and the render finishing.
STALLED = """
import sys, threading
from bigcppn import cli
from bigcppn.pyramid import tilestore
real, lock, count = tilestore.TileStore.write, threading.Lock(), [0]
def write(self, rel, data, content_type=None):
    if rel.endswith(".jpeg"):
        with lock:
            count[0] += 1
            stall = count[0] > 20
        if stall:
            threading.Event().wait()
    return real(self, rel, data, content_type)
tilestore.TileStore.write = write
sys.exit(cli.main(sys.argv[1:]))
"""


def _tile_keys(weed, bucket: str, prefix: str) -> set[str]:
    """The tile keys under ``prefix`` (one listing, no bytes read)."""
    import obstore

    return {m["path"] for batch in obstore.list(weed.store(bucket), prefix=prefix) for m in batch
            if m["path"].endswith(".jpeg")}


def test_a_run_killed_by_sigkill_resumes_with_only_the_missing_tiles(weed, bucket, tmp_path):
    """A real SIGKILL of a rendering process with 20 tiles up: its lock is taken over, and the same command
    writes only the tiles that were not up yet, ending with the local render's bytes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from bigcppn import api

    out = f"s3://{bucket}/k/x.dzi"
    args = ["pyramid", "--width", "1200", "--height", "900", "--seed", "5", "--device", "cpu", "-q", "--tile", "64"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", STALLED, *args, "-o", out], env=env,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(_tile_keys(weed, bucket, "k")) < 20:
            assert proc.poll() is None, f"the render ended ({proc.returncode}): {proc.stderr.read()[-500:]!r}"
            assert time.monotonic() < deadline, "20 tiles were not up within 120 s"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        proc.stderr.close()
    before = objects(weed, bucket, "k")
    assert "x.dzi" not in before and ".x.bigcppn.lock" in before
    cfg = cli_config(width=1200, height=900)
    r = api.render_pyramid(cfg, out, tile=64)
    there = sum(k.startswith("x_files/") for k in before)
    assert there >= 20 and r.skipped == there and r.written == r.tiles - there
    assert cli.main([*args, "-o", str(tmp_path / "x.dzi")]) == 0
    local = {k: v for k, v in files(tmp_path).items() if not k.startswith("openseadragon") and not k.endswith("html")}
    remote = {k: v for k, v in objects(weed, bucket, "k").items() if not k.endswith("html")}
    assert remote == local
