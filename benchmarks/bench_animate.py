"""Animations: encoding hidden behind rendering, batching small frames, memory flat in the clip's length.

    python3 benchmarks/bench_animate.py [--hd-frames 4] [--reps 3] [--small-frames 60] [--rss-seconds 10 60]
        [--eightk] [--skip hd small memory]

Three comparisons, each against its baseline in the same run:

1. 1080p end to end (``render_video`` to an MP4: render thread + H.264 encoder) against rendering the same
   frames to arrays alone (``bigcppn.frames``): the ratio of frames per second (target >= 0.85);
2. 320x180 frames batched (``bigcppn.frames``: many frames a pass) against one ``render_array`` a frame
   (target >= 3x);
3. peak RSS (VmHWM of a fresh process) of a 320x180 MP4 of ``--rss-seconds`` at 10 fps: flat in the clip's
   length (target: within 10%); with ``--eightk`` also two 8K frames (target under 1.5 GB).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine import machine  # noqa: E402


def clip(width: int, height: int, frames: int, fps: float = 30.0):
    from bigcppn.animate.api import timeline_for

    return timeline_for(None, width=width, height=height, seconds=frames / fps, fps=fps, zoom="1:4",
                        device="cpu")


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def hd(frames: int, tmp: Path, reps: int) -> None:
    """Alternating runs, the best of each kind: the machine is shared and its load comes and goes."""
    import bigcppn

    t = clip(1920, 1080, frames)
    next(bigcppn.frames(t, stop=1))  # warm up: torch's threads, the first allocations
    runs = {"arrays": [], "video": []}
    for _ in range(reps):
        for kind, fn in (("arrays", lambda: [None for _ in bigcppn.frames(t)]),
                         ("video", lambda: bigcppn.render_video(t, tmp / "hd.mp4", overwrite=True))):
            c0 = cpu()
            runs[kind].append((timed(fn), cpu() - c0))
    (aw, ac), (vw, vc) = min(runs["arrays"]), min(runs["video"])
    print(f"1080p, {frames} frames, best of {reps}: arrays alone {frames / aw:.3f} frames/s ({aw:.1f} s, "
          f"{ac / frames:.2f} CPU s a frame); to MP4 end to end {frames / vw:.3f} frames/s ({vw:.1f} s, "
          f"{vc / frames:.2f} CPU s a frame); ratio {aw / vw:.2f} (target >= 0.85); all runs (wall s): "
          f"arrays {[round(w, 1) for w, _ in runs['arrays']]}, video {[round(w, 1) for w, _ in runs['video']]}")


def small(frames: int) -> None:
    import bigcppn

    t = clip(320, 180, frames)
    next(bigcppn.frames(t, stop=1))
    batched = timed(lambda: [None for _ in bigcppn.frames(t)])
    single = timed(lambda: [bigcppn.render_array(t.config_at(i)) for i in range(frames)])
    print(f"320x180, {frames} frames: one render_array a frame {frames / single:.1f} frames/s ({single:.1f} s); "
          f"batched {frames / batched:.1f} frames/s ({batched:.1f} s); ratio {single / batched:.2f}x (target >= 3x)")


CHILD = """
import sys, bigcppn
from bigcppn.animate.api import timeline_for
w, h, seconds, fps, out = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
t = timeline_for(None, width=w, height=h, seconds=seconds, fps=fps, zoom="1:4", device="cpu")
bigcppn.render_video(t, out, overwrite=True)
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")))
"""


def peak_rss(width: int, height: int, seconds: float, fps: float, out: Path) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of a fresh process rendering the clip."""
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", CHILD, str(width), str(height), str(seconds), str(fps), str(out)],
                       capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    return int(r.stdout.split()[-1]) / 1024, time.perf_counter() - t0


def memory(lengths: list[float], tmp: Path, eightk: bool) -> None:
    rows = []
    for s in lengths:
        mb, wall = peak_rss(320, 180, s, 10, tmp / f"rss-{s:g}.mp4")
        rows.append(mb)
        print(f"320x180 MP4, {s:g} s at 10 fps ({round(s * 10)} frames): peak RSS {mb:.0f} MB ({wall:.1f} s)")
    print(f"peak RSS, longest / shortest clip: {rows[-1] / rows[0]:.3f} (target within 10%)")
    if eightk:
        mb, wall = peak_rss(7680, 4320, 2 / 30, 30, tmp / "8k.mp4")
        print(f"8K MP4, 2 frames: peak RSS {mb:.0f} MB ({wall:.1f} s) (target under 1536 MB)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hd-frames", type=int, default=4)
    p.add_argument("--reps", type=int, default=3, help="alternating runs of the 1080p comparison")
    p.add_argument("--small-frames", type=int, default=60)
    p.add_argument("--rss-seconds", type=float, nargs="+", default=[10, 60])
    p.add_argument("--eightk", action="store_true")
    p.add_argument("--skip", nargs="*", default=[], choices=("hd", "small", "memory"))
    a = p.parse_args()
    print(machine(), f"; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "hd" not in a.skip:
            hd(a.hd_frames, tmp, a.reps)
        if "small" not in a.skip:
            small(a.small_frames)
        if "memory" not in a.skip:
            memory(a.rss_seconds, tmp, a.eightk)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
