"""`bigcppn plan`'s time estimate against the real render, case by case, in one run.

    python benchmarks/bench_estimate.py                  # a handful of cases (a few minutes on 2 cores)
    python benchmarks/bench_estimate.py --cases all-2048 # every article config at 2048²
    python benchmarks/bench_estimate.py --cases normal:8192:.tif,hidden-0:A2:.png
    python benchmarks/bench_estimate.py --repeat 2        # every case twice (interleaved): the machine's noise
    python benchmarks/bench_estimate.py --sizes           # output bytes: plan --json against the real files
    python benchmarks/bench_estimate.py --steady          # three plans of one job in a row, under load
    python benchmarks/bench_estimate.py --loaded          # three plan + render pairs under load: estimate / real

``--sizes``: for TIFF, PNG, JPEG and .dzi at 2600² (the default network, seeds 5 and 7, and a busy one:
sin, weight_scale 3, zoom 0.05) and ``bigcppn pyramid`` at 6000×4000, ``plan --json``'s (``pyramid
--dry-run``'s) estimated_bytes against the bytes of the files the render wrote, and the baseline: the
format table's fixed ratio, as ``plan`` estimated before.

A case is CONFIG:SIZE:EXT, CONFIG a name in configs/article/, SIZE a side in
pixels (a square canvas) or a paper size at 300 dpi (A2 = 4961×7016), EXT the
output's extension, or ``.dzi-pyramid`` for ``bigcppn pyramid`` (``--dry-run``'s
estimate, the writer column then its time per tile). For each
case, one fresh Python process runs ``bigcppn.core.tiling`` (the estimate, as
``bigcppn plan`` makes it), then another ``bigcppn.render_file`` (the real
render, as ``bigcppn render`` runs it; the time it reports, which leaves out the
Python and torch start-up, about 3 s here). It prints both and their ratio
(estimate / real; the target is 0.75–1.25), how long ``plan`` took (its measurement and setup), and the
baseline: the estimate as ``plan`` made it before (one 256² window timed once, the format table's encoding
speed), computed in the same process, against the same real render.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from machine import machine  # benchmarks/machine.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "article"
HANDFUL = ("normal:2048:.tif,width-32:2048:.tif,hidden-0:2048:.png,mondrian:2048:.jpg,"
           "normal:A2:.tif,hidden-0:A2:.tif,normal:8192:.tif,normal:3000:.dzi-pyramid")

CHILD = r"""
import json, sys, time
from bigcppn import api
from bigcppn.job import Sizing
import bigcppn.network.strips  # torch's import, not the plan's time
mode, config, size, out = sys.argv[1:5]
sizing = Sizing(size=size) if not size.isdigit() else Sizing(width=int(size), height=int(size))
cfg = api.as_config(config, sizing=sizing)
pyramid = out.endswith("-pyramid")
out = out.removesuffix("-pyramid")
if mode == "plan" and pyramid:  # bigcppn pyramid --dry-run; there was no estimate before
    t0 = time.perf_counter()
    info = api.plan_pyramid(cfg, out)
    print(json.dumps({"estimate": info.estimated_seconds, "network": info.network_mpix_per_s, "old": None,
                      "writer": f"{info.tile_ms}ms", "measure": round(time.perf_counter() - t0, 2),
                      "width": info.width, "height": info.height}))
elif mode == "render" and pyramid:
    r = api.render_pyramid(cfg, out)
    print(json.dumps({"real": round(r.seconds, 2)}))
elif mode == "plan":
    t0 = time.perf_counter()
    info = api.plan(cfg, out)
    measured = time.perf_counter() - t0
    # the baseline: the estimate before issue 12 (one 256² window timed once on one thread, times 1.8 for two
    # workers, plus the format table's encoding speed)
    from bigcppn.core.geometry import Window
    from bigcppn.job import resolve_job
    from bigcppn.network.strips import renderer_for
    from bigcppn.network.backend import strip_workers
    from bigcppn.network.devices import pick_device
    from bigcppn.core.system import available_cores
    job = resolve_job(cfg, out)
    device = pick_device(cfg.render.device)
    r, p = renderer_for(cfg, device)
    workers = strip_workers(device, 0)
    win = Window(0, 0, min(256, p.canvas.width), min(256, p.canvas.height))
    r.render_window(win)
    t = time.perf_counter()
    r.render_window(win)
    one = win.pixels / (time.perf_counter() - t) / 1e6 * (1 + 0.8 * (workers - 1))
    mpix = p.canvas.pixels / 1e6
    old = mpix / one + mpix / job.fmt.encode_rate(job.config.output, available_cores())
    print(json.dumps({"estimate": info.estimated_seconds, "range": info.seconds_range,
                      "network": info.network_mpix_per_s, "old": round(old, 1),
                      "writer": info.writer_mpix_per_s, "measure": round(measured, 2),
                      "width": info.width, "height": info.height}))
else:
    r = api.render_file(cfg, out, overwrite=True)
    print(json.dumps({"real": round(r.seconds, 2), "bytes": r.bytes}))
"""


def child(mode: str, config: str, size: str, out: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", CHILD, mode, config, size, out], env=env, capture_output=True,
                         text=True)
    if res.returncode:
        raise SystemExit(f"{mode} {config} {size} failed: {res.stderr.strip()[-500:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


BUSY = ["network.activation=\"sin\"", "network.weight_scale=3", "view.zoom=0.05"]
SIZE_CASES = [(ext, look) for ext in (".tif", ".png", ".jpg", ".dzi") for look in ("seed5", "seed7", "busy")] + \
    [(".dzi-pyramid", "seed5"), (".dzi-pyramid", "busy")]

SIZE_CHILD = r"""
import json, sys, time
from pathlib import Path
import bigcppn
from bigcppn import api
from bigcppn.job import resolve_job
ext, look, folder = sys.argv[1:4]
over = json.loads(sys.argv[4])
pyramid = ext.endswith("-pyramid")
w, h = (6000, 4000) if pyramid else (2600, 2600)
cfg = bigcppn.load_config(None, over + [f"canvas.width={w}", f"canvas.height={h}", f"seed={look[4:] or 5}"])
out = Path(folder) / ("p.dzi" if pyramid else f"a{ext}")
t = time.perf_counter()
if pyramid:
    est = api.plan_pyramid(cfg, out).estimated_bytes
    old = api.plan_pyramid(cfg, out, measure=False).estimated_bytes
    took = time.perf_counter() - t
    api.render_pyramid(cfg, out)
    files = [p for p in Path(folder).rglob("*") if p.is_file() and p.suffix in (".jpeg", ".jpg")]
else:
    est = api.plan(cfg, out).estimated_bytes
    old = api.plan(cfg, out, measure=False).estimated_bytes
    took = time.perf_counter() - t
    api.render_file(cfg, out)
    files = [p for p in Path(folder).rglob("*") if p.is_file()]
print(json.dumps({"estimate": est, "old": old, "real": sum(p.stat().st_size for p in files), "plan_s": took}))
"""


def sizes() -> int:
    print(f"# {machine()}")
    print(f"{'output':14} {'picture':8} {'estimate':>11} {'real':>11} {'ratio':>6} {'before':>11} {'ratio':>6} "
          f"{'plan':>6}")
    ratios, olds = [], []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for ext, look in SIZE_CASES:
        with tempfile.TemporaryDirectory() as d:
            over = BUSY if look == "busy" else []
            res = subprocess.run([sys.executable, "-c", SIZE_CHILD, ext, look if look != "busy" else "seed",
                                  d, json.dumps(over)], env=env, capture_output=True, text=True)
            if res.returncode:
                raise SystemExit(f"{ext} {look} failed: {res.stderr.strip()[-500:]}")
            r = json.loads(res.stdout.strip().splitlines()[-1])
        ratios.append(r["estimate"] / r["real"])
        olds.append(r["old"] / r["real"])
        print(f"{ext:14} {look:8} {r['estimate']:>11} {r['real']:>11} {ratios[-1]:>5.2f}× {r['old']:>11} "
              f"{olds[-1]:>5.2f}× {r['plan_s']:>5.1f}s", flush=True)
    for name, rs in (("estimate", ratios), ("before (fixed ratio)", olds)):
        inside = sum(0.75 <= x <= 1.25 for x in rs)
        print(f"# {name} / real: median {statistics.median(rs):.2f}×, min {min(rs):.2f}×, max {max(rs):.2f}×; "
              f"{inside} of {len(rs)} within ±25%")
    return 0


def steady() -> int:
    """Three `plan` runs of one 8192² TIFF in a row while two busy loops load the machine: their spread (and
    the range each gives, from the cores its measurement got)."""
    print(f"# {machine()}")
    load = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        times = []
        with tempfile.TemporaryDirectory() as d:
            for i in range(3):
                est = child("plan", str(CONFIGS / "normal.toml"), "8192", str(Path(d) / "x.tif"))
                times.append(est["estimate"])
                print(f"plan {i + 1}: {times[-1]} s (range {est['range']})", flush=True)
    finally:
        for p in load:
            p.kill()
            p.wait()
    print(f"# under two busy loops: max / min {max(times) / min(times):.2f}× (target <= 1.3×)")
    return 0


def loaded(runs: int = 3, size: str = "4096") -> int:
    """``runs`` time estimates of one TIFF against its real render while two busy loops load the machine."""
    print(f"# {machine()}")
    load = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    ratios, inside = [], 0
    try:
        with tempfile.TemporaryDirectory() as d:
            out = str(Path(d) / "out.tif")
            for i in range(runs):
                before = os.getloadavg()[0]
                config = str(CONFIGS / "normal.toml")
                est = child("plan", config, size, out)
                real = child("render", config, size, out)
                Path(out).unlink(missing_ok=True)
                ratios.append(est["estimate"] / real["real"])
                lo, hi = est["range"] or (est["estimate"], est["estimate"])
                inside += 0.9 * lo <= real["real"] <= 1.1 * hi
                print(f"run {i + 1}: {size}² .tif, load average {before:.2f}: estimate {est['estimate']:.1f} s "
                      f"(range {lo:.1f}-{hi:.1f} s), real {real['real']:.1f} s: {ratios[-1]:.2f}×", flush=True)
    finally:
        for p in load:
            p.kill()
            p.wait()
    print(f"# under two busy loops, estimate / real: {', '.join(f'{r:.2f}×' for r in ratios)} "
          f"(median {statistics.median(ratios):.2f}×; target 0.75-1.25×); the real time within the range "
          f"(±10%) {inside} of {runs}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default=HANDFUL, help="CONFIG:SIZE:EXT,... or all-2048 (default: a handful)")
    ap.add_argument("--repeat", type=int, default=1, help="run the list this many times (default 1)")
    ap.add_argument("--sizes", action="store_true", help="output bytes, estimate against the real files")
    ap.add_argument("--steady", action="store_true", help="three time estimates of one job in a row, under load")
    ap.add_argument("--loaded", action="store_true",
                    help="three estimates of a 4096² TIFF against its real render, under two busy loops")
    args = ap.parse_args()
    if args.loaded:
        return loaded()
    if args.sizes:
        return sizes()
    if args.steady:
        return steady()
    if args.cases == "all-2048":
        cases = [f"{p.stem}:2048:.tif" for p in sorted(CONFIGS.glob("*.toml"))]
    else:
        cases = args.cases.split(",")
    cases = cases * args.repeat
    print(f"# {machine()}")
    print(f"{'case':32} {'canvas':>11} {'network':>8} {'writer':>7} {'measure':>7} {'estimate':>8} "
          f"{'real':>7} {'ratio':>6} {'before':>7} {'ratio':>6}")
    ratios, olds = [], []
    with tempfile.TemporaryDirectory() as d:
        for case in cases:
            name, size, ext = case.split(":")
            out = str(Path(d) / f"out{ext}")
            est = child("plan", str(CONFIGS / f"{name}.toml"), size, out)
            real = child("render", str(CONFIGS / f"{name}.toml"), size, out)
            for f in Path(d).iterdir():  # the next case starts on an empty folder
                if f.is_dir():
                    shutil.rmtree(f)
                else:
                    f.unlink()
            ratio = est["estimate"] / real["real"]
            ratios.append(ratio)
            before = "—"
            if est["old"] is not None:
                olds.append(est["old"] / real["real"])
                before = f"{est['old']:>6}s {olds[-1]:>5.2f}×"
            print(f"{case:32} {est['width']:>5}x{est['height']:<5} {est['network']:>8} {est['writer']:>7} "
                  f"{est['measure']:>6}s {est['estimate']:>7}s {real['real']:>6}s {ratio:>5.2f}× {before}",
                  flush=True)
    if args.repeat > 1:
        n = len(ratios) // args.repeat  # (the "before" column has no pyramid cases)
        for i, case in enumerate(cases[:n]):
            runs = ratios[i::n]
            print(f"# {case:32} ratios {' '.join(f'{r:.2f}' for r in runs)}, median {statistics.median(runs):.2f}×")
    inside = sum(0.75 <= r <= 1.25 for r in ratios)
    print(f"# estimate / real: median {statistics.median(ratios):.2f}×, min {min(ratios):.2f}×, "
          f"max {max(ratios):.2f}×; {inside} of {len(ratios)} within ±25%")
    inside = sum(0.75 <= r <= 1.25 for r in olds)
    print(f"# before (baseline) / real: median {statistics.median(olds):.2f}×, min {min(olds):.2f}×, "
          f"max {max(olds):.2f}×; {inside} of {len(olds)} within ±25%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
