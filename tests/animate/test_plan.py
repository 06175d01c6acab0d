"""Planning a clip: ``bigcppn plan -o clip.mp4 ...`` and ``animate --dry-run`` measure a few real frames,
rendered and encoded, and agree; the size is near a real clip's; nothing is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("av", reason="PyAV is the video extra: pip install -e .[video]")

import bigcppn  # noqa: E402
from bigcppn.animate.api import plan_video, timeline_for  # noqa: E402

CLIP = ["--width", "96", "--height", "64", "--seconds", "1.5", "--fps", "10", "--zoom", "1:3"]


def cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "bigcppn", *args], cwd=cwd, capture_output=True, text=True, env=env)


def test_plan_of_a_clip_is_animate_dry_run_and_writes_nothing(tmp_path):
    planned = cli("plan", *CLIP, "-o", "c.mp4", cwd=tmp_path)
    dry = cli("animate", *CLIP, "-o", "c.mp4", "--dry-run", cwd=tmp_path)
    assert planned.returncode == 0 and dry.returncode == 0, planned.stderr + dry.stderr
    lines, same = planned.stdout.splitlines(), dry.stdout.splitlines()
    assert lines[:3] == same[:3]  # the clip, its frames and its size (encoded with one thread: the same bytes)
    assert lines[0] == "clip:    c.mp4 (MP4 (H.264), preset superfast)" and lines[1].startswith("frames:  15 of 96x64")
    assert "ms rendering" in lines[3] and "ms CPU encoding" in lines[3]
    assert list(tmp_path.iterdir()) == []
    doc = json.loads(cli("plan", *CLIP, "-o", "c.webm", "--json", cwd=tmp_path).stdout)
    assert doc["frames"] == 15 and doc["format"] == "WebM (VP9)" and doc["bytes"] > 0
    assert doc["encode_cpu_seconds_a_frame"] > 0 and doc["seconds_estimate"] > 0


@pytest.mark.parametrize("name", ["c.mp4", "c.webm", "c.gif", "f-{frame}.png"])
def test_the_planned_size_is_near_the_real_clips(tmp_path, name):
    t = timeline_for(None, width=96, height=64, seconds=3, fps=10, zoom="1:3", device="cpu")
    plan = plan_video(t, tmp_path / name)
    r = bigcppn.render_video(t, tmp_path / name)
    assert 0.5 < plan.bytes / r.bytes < 2, (plan.bytes, r.bytes)
    assert plan.frames == r.frames == 30 and plan.seconds_estimate > 0


@pytest.mark.parametrize("args, words", [
    (["-o", "c.mp4", "--width", "64", "--dpi", "300"], "--dpi is for stills"),
    (["-o", "c.mp4", "--size", "A4"], "--size 'A4' is unknown; choose from 360p"),
    (["-o", "c.gif", "--width", "64", "--preset", "fast"], "no encoder preset"),
    (["-o", "c.tif", "--width", "64", "--seconds", "2"], "--seconds is a clip's option and 'c.tif' is a still"),
    # (said: clip 'x.png' has extension '.png'; write one of .gif, ... : --center is no still option)
    (["-o", "x.png", "--center", "0.1,0.2"], "--center is a clip's option and 'x.png' is a still (PNG): leave "
                                             "--center out, or plan a clip"),
    (["-o", "x.png", "--z-loop"], "--z-loop is a clip's option"),
    (["-o", "s3://bucket/c.mp4", "--width", "64", "--seconds", "1"], "not to a bucket"),  # (said: no folder 's3:')
])
def test_a_clip_plan_refuses_bad_input_in_one_line(tmp_path, args, words):
    r = cli("plan", *args, cwd=tmp_path)
    assert r.returncode == 2 and words in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_still_webp_is_still_planned_as_a_still(tmp_path):
    r = cli("plan", "--width", "64", "--height", "48", "-o", "s.webp", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("canvas"), r.stdout + r.stderr


def test_a_still_with_still_options_is_planned_as_a_still(tmp_path):
    """Still options alone (a still's centre through --set, --quality, --dpi) plan a still; a .webp with a clip
    option is an animated one."""
    r = cli("plan", "--width", "64", "--height", "48", "-o", "x.png", "--set", "view.center=[0.1,0.2]", "--dpi",
            "300", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("canvas"), r.stdout + r.stderr
    r = cli("plan", "--width", "64", "--height", "48", "-o", "x.webp", "--seconds", "1", "--fps", "4", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("clip:    x.webp (animated WebP)"), r.stdout + r.stderr
    assert list(tmp_path.iterdir()) == []
