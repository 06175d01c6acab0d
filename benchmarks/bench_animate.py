"""Animations: encoding hidden behind rendering, batching small frames, memory flat in the clip's length.

    python3 benchmarks/bench_animate.py [--hd-frames 4] [--reps 3] [--small-frames 60] [--rss-seconds 10 60]
        [--eightk] [--presets faster superfast webm:realtime webm:good] [--skip hd quality small memory]

Three comparisons, each against its baseline in the same run:

1. 1080p end to end (``render_video`` to an MP4: render thread + H.264 encoder, at each of ``--presets``; an
   entry ``webm:NAME`` is a WebM (VP9) at its preset NAME)
   against rendering the same frames to arrays alone (``bigcppn.frames``), paired and interleaved: the ratio
   of frames per second (target >= 0.85); then each preset's PSNR and bytes at the default quality;
2. 320x180 frames batched (``bigcppn.frames``: many frames a pass) against one ``render_array`` a frame
   (target >= 3x), paired, with the network's arithmetic alone (the floor no batching goes below);
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


def split(entry: str) -> tuple[str, str | None]:
    """``--presets`` entry -> (extension, preset): "superfast" is an MP4's, "webm:realtime" a WebM's, "webm:" a
    WebM at the format's default (also for a checkout whose WebM took no preset, to compare with)."""
    ext, _, preset = entry.rpartition(":")
    return ext or "mp4", preset or None


def hd(frames: int, tmp: Path, reps: int, presets: list[str]) -> None:
    """Paired, interleaved runs: each rep renders the frames to arrays, then to an MP4 at each preset (the order
    turned round every rep), so that each video run has its own baseline a few seconds away on this shared
    machine. The ratio of a pair is arrays' wall time over the video's; the median over the reps is reported,
    with the best-of figures beside it."""
    import statistics

    import bigcppn

    t = clip(1920, 1080, frames)
    next(bigcppn.frames(t, stop=1))  # warm up: torch's threads, the first allocations
    runs: dict[str, list] = {"arrays": [], **{p: [] for p in presets}}
    kinds = [("arrays", lambda: [None for _ in bigcppn.frames(t)])]
    kinds += [(p, lambda p=p: bigcppn.render_video(t, tmp / "hd-{1}.{0}".format(*split(p)), overwrite=True,
                                                  preset=split(p)[1])) for p in presets]
    for rep in range(reps):
        for kind, fn in (kinds if rep % 2 == 0 else kinds[::-1]):
            c0 = cpu()
            runs[kind].append((timed(fn), cpu() - c0, os.getloadavg()[0]))
    aw = [w for w, _c, _l in runs["arrays"]]
    ac = min(c for _w, c, _l in runs["arrays"])
    print(f"1080p, {frames} frames, {reps} paired reps (load {runs['arrays'][0][2]:.1f} to "
          f"{runs['arrays'][-1][2]:.1f}): arrays alone best {frames / min(aw):.3f} frames/s, {ac / frames:.2f} CPU s "
          f"a frame; wall s {[round(w, 2) for w in aw]}")
    for p in presets:
        vw = [w for w, _c, _l in runs[p]]
        vc = min(c for _w, c, _l in runs[p])
        pairs = [a / v for a, v in zip(aw, vw)]
        ext, name = split(p)
        size = (tmp / f"hd-{name}.{ext}").stat().st_size
        print(f"  {ext.upper():4s} --preset {name or 'default':9s}: median paired ratio {statistics.median(pairs):.3f} (pairs "
              f"{[round(r, 2) for r in pairs]}), best-of ratio {min(aw) / min(vw):.3f}, {vc / frames:.2f} CPU s a "
              f"frame (+{(vc - ac) / frames * 1000:.0f} ms over arrays), {size / frames / 1e3:.0f} kB a frame "
              f"(target >= 0.85)")


def quality(frames: int, presets: list[str]) -> None:
    """Each preset at the default quality's CRF on a smooth and a detailed 1080p clip, encoded alone (1 thread):
    bytes, CPU, and PSNR of the encoder (the decoded Y'CbCr planes against the yuv420p planes it was given) and
    of the picture (RGB against the rendered frames, chroma upsampled bilinearly as players show it; on the
    detailed clip this is mostly the 4:2:0 chroma, whatever the encoder)."""
    import av
    import bigcppn
    import numpy as np
    from av.video.reformatter import Interpolation

    from bigcppn.animate.api import timeline_for
    from bigcppn.formats.video.base import VideoSpec
    from bigcppn.formats.video.codecs import MP4, WEBM, vp9_crf, x264_crf

    def db(a, b):
        return 10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))

    shown = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
    for name, extra in (("smooth", dict(zoom="1:4")),
                        ("detailed", dict(zoom="0.5:0.6", tween=["network.weight_scale=2:2.5"]))):
        t = timeline_for(None, width=1920, height=1080, seconds=frames / 30, fps=30, device="cpu", **extra)
        rgb = list(bigcppn.frames(t))
        given = [av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p", interpolation="AREA")
                 .to_ndarray() for f in rgb]
        with tempfile.TemporaryDirectory() as d:
            for p in presets:
                ext, p = split(p)
                fmt, crf_of = {"webm": (WEBM, vp9_crf), "mp4": (MP4, x264_crf)}[ext]
                out = Path(d) / f"{p}.{ext}"
                w = fmt.open(VideoSpec(out, 1920, 1080, frames, 30, 90, "", preset=p, threads=1))
                c0 = cpu()
                for f in rgb:
                    w.write(f)
                w.close()
                spent = (cpu() - c0) / frames
                with av.open(str(out)) as c:
                    dec = list(c.decode(video=0))
                enc = [db(f.to_ndarray(), g) for f, g in zip(dec, given)]
                pic = [db(f.reformat(format="rgb24", interpolation=shown).to_ndarray(), g) for f, g in zip(dec, rgb)]
                print(f"{name} 1080p, {frames} frames, quality 90, {ext} --preset {p:9s} (CRF {crf_of(90, p)}): "
                      f"{out.stat().st_size / frames / 1e3:6.1f} kB a frame, {spent * 1000:3.0f} ms CPU a frame "
                      f"(conversion + encoder); encoder PSNR mean {np.mean(enc):.2f} min {min(enc):.2f} dB; "
                      f"RGB PSNR mean {np.mean(pic):.2f} min {min(pic):.2f} dB")


def arithmetic_floor(t) -> float:
    """CPU seconds a frame of the network's arithmetic alone: its products and activations (the renderer's own
    ``evaluate``) over a frame's pixels in cache-sized chunks, one thread, nothing else (no coordinates, no
    quantising, no network to build). No renderer on this CPU can spend less on a frame."""
    import torch

    from bigcppn.network.model import CPPN

    cfg = t.config_at(0)
    model, n = CPPN(cfg.network, cfg.seed), cfg.canvas.width * cfg.canvas.height
    x, y = torch.rand(n, dtype=torch.float64), torch.rand(n, dtype=torch.float64)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            best = float("inf")
            for _ in range(5):
                c0 = cpu()
                for s in range(0, n, 8192):
                    model.evaluate(x[s : s + 8192], y[s : s + 8192])
                best = min(best, cpu() - c0)
    finally:
        torch.set_num_threads(threads)
    return best


def small(frames: int, reps: int) -> None:
    """Batched against one render_array a frame, paired and interleaved; CPU seconds a frame beside the
    arithmetic floor, whose ratio to one frame's cost bounds what batching can gain on this CPU."""
    import statistics

    import bigcppn
    from bigcppn.core.system import available_cores

    t = clip(320, 180, frames)
    next(bigcppn.frames(t, stop=1))
    bigcppn.render_array(t.config_at(0))
    rows = []
    for rep in range(reps):
        kinds = [("batched", lambda: [None for _ in bigcppn.frames(t)]),
                 ("single", lambda: [bigcppn.render_array(t.config_at(i)) for i in range(frames)])]
        got = {}
        for kind, fn in (kinds if rep % 2 == 0 else kinds[::-1]):
            c0 = cpu()
            got[kind] = (timed(fn), cpu() - c0)
        rows.append(got)
    floor = arithmetic_floor(t)
    bw, bc = min(r["batched"][0] for r in rows), min(r["batched"][1] for r in rows) / frames
    sw, sc = min(r["single"][0] for r in rows), min(r["single"][1] for r in rows) / frames
    pairs = [r["single"][0] / r["batched"][0] for r in rows]
    print(f"320x180, {frames} frames, {reps} paired reps: one render_array a frame {frames / sw:.1f} frames/s "
          f"({sc * 1e3:.1f} ms CPU a frame); batched {frames / bw:.1f} frames/s ({bc * 1e3:.1f} ms CPU a frame); "
          f"median paired ratio {statistics.median(pairs):.2f}x (pairs {[round(p, 2) for p in pairs]}), CPU ratio "
          f"{sc / bc:.2f}x (target >= 3x)")
    cores = available_cores()
    print(f"  the network's arithmetic alone: {floor * 1e3:.1f} ms CPU a frame; batched spends {bc / floor:.2f}x "
          f"that, one render_array a frame {sc / floor:.2f}x on about {sc * frames / sw:.1f} core(s). On {cores} idle "
          f"cores the batched path reaches at most {cores * sw / frames / bc:.2f}x one frame at a time (every core "
          f"busy without pause), and no renderer more than {cores * sw / frames / floor:.2f}x (the arithmetic alone)")


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
    p.add_argument("--presets", nargs="+", default=["faster", "superfast"], help="x264 presets of the 1080p runs "
                   "(webm:realtime, webm:good: VP9's)")
    p.add_argument("--quality-frames", type=int, default=12, help="frames of the PSNR/bytes comparison")
    p.add_argument("--skip", nargs="*", default=[], choices=("hd", "quality", "small", "memory"))
    a = p.parse_args()
    print(machine(), f"; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "hd" not in a.skip:
            hd(a.hd_frames, tmp, a.reps, a.presets)
        if "quality" not in a.skip:
            quality(a.quality_frames, a.presets)
        if "small" not in a.skip:
            small(a.small_frames, a.reps)
        if "memory" not in a.skip:
            memory(a.rss_seconds, tmp, a.eightk)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
