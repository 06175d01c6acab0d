"""SIGTERM to a driver on Ray ends it as it ends a local render: exit 143, one line, nothing at the output path.

``ray.init`` replaces the driver's SIGTERM handler (Python's ``sys.exit``, and
the core worker's C++ failure handler, which prints six lines of stack and
aborts); :class:`bigcppn.cluster.executor.RaySession` puts the CLI's back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def term_driver_when(args: list, ready) -> tuple[int, str]:
    """Run the CLI with ``args`` in a driver process, SIGTERM it once ``ready()`` (polled for up to 120 s),
    and return its exit status and its stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "bigcppn", *map(str, args)], env=env, stderr=subprocess.PIPE,
                            text=True)
    try:
        for _ in range(1200):
            if ready() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the driver finished before it could be signalled"
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=120)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
    return proc.returncode, err


def rendering(folder: Path, suffix: str):
    """A check that a render into ``folder`` has begun writing (its hidden partial output holds bytes)."""
    def ready() -> bool:
        parts = list(folder.glob(f".*{suffix}.partial-*"))
        return bool(parts) and sum(p.stat().st_size for p in parts[0].rglob("*") if p.is_file()) > 50_000

    return ready


@pytest.mark.ray
def test_sigterm_to_a_ray_render_exits_143_with_one_line_and_leaves_nothing(tmp_path, local_ray):
    out = tmp_path / "a.dzi"
    args = ["render", "--width", 4000, "--height", 4000, "--seed", 3, "-q", "--executor", "ray",
            "--ray-address", local_ray, "-o", out]
    status, err = term_driver_when(args, rendering(tmp_path, ".dzi"))
    assert err.splitlines() == ["bigcppn: terminated; no file was written"], err
    assert status == 143
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.ray
@pytest.mark.slow
def test_sigterm_to_a_ray_pyramid_exits_143_with_one_line_and_no_descriptor(tmp_path, local_ray):
    out = tmp_path / "p.dzi"
    tiles = tmp_path / "p_files"
    args = ["pyramid", "--width", 5000, "--height", 4000, "--seed", 3, "-q", "--executor", "ray",
            "--ray-address", local_ray, "-o", out]
    status, err = term_driver_when(args, lambda: tiles.is_dir() and sum(1 for _ in tiles.rglob("*.jpeg")) >= 3)
    assert len(err.splitlines()) == 1 and err.startswith("bigcppn: terminated;"), err
    assert status == 143
    assert not out.exists()  # the tiles are kept to resume; the pyramid is not declared complete


def test_a_signal_while_ray_shuts_down_after_the_work_is_dropped_a_second_acts():
    """ray.shutdown after a committed render takes a second or two: a SIGTERM then would have been reported as
    "terminated; no file was written" beside a whole file. The first is dropped; a second is the caller's."""
    from bigcppn.cli.common import Terminated
    from bigcppn.cluster.signals import finishing

    def caller(_signum, _frame):
        raise Terminated()

    old = signal.signal(signal.SIGTERM, caller)
    try:
        with finishing() as seen:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # (the handler runs between two bytecodes)
        assert seen == [signal.SIGTERM] and signal.getsignal(signal.SIGTERM) is caller
        with pytest.raises(Terminated):
            with finishing():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
        assert signal.getsignal(signal.SIGTERM) is caller
    finally:
        signal.signal(signal.SIGTERM, old)
