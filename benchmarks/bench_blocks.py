"""Square blocks against full-width bands for a single file on Ray, on an image too wide for tall bands.

    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 python benchmarks/bench_blocks.py [--width 32768] [--height 2048]
        [--workers 2] [--suffix .tif]

A wide image (or many actors) leaves full-width bands one tile row high
(``k = 0``): the driver then builds every level above the first itself, a
quarter of the pyramid's pixels. ``choose_blocks`` picks square blocks there
instead. This runs the same render on one local Ray both ways (the bands
forced by patching the chooser) and prints wall time, the driver's CPU, the
bytes that came back and the ratios; both files are checked tile for tile
against each other (their tiles lie in another order).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from machine import machine  # noqa: E402


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def render(out: Path, width: int, height: int, workers: int, bands: bool) -> dict:
    import bigcppn.cluster.single as single
    from bigcppn import api
    from bigcppn.cluster.pyramid import RayOptions
    from bigcppn.job import resolve_job
    from bigcppn.network.devices import CPU_BATCH
    from bigcppn.formats.target import OutputTarget
    from bigcppn.formats.tiff.blocks import MAX_BLOCK_PIXELS

    chooser = single.choose_blocks
    if bands:  # full-width bands as tall as memory and four bands per actor allow (what was chosen before blocks)
        def full(w, h, tile, n, max_pixels=MAX_BLOCK_PIXELS):
            k = 0
            while (tile << (k + 1)) * w <= max_pixels and -(-h // (tile << (k + 1))) >= 4 * n:
                k += 1
            return k, False
        single.choose_blocks = full
    try:
        cfg = api.as_config(None, seed=7, overrides=[f"canvas.width={width}", f"canvas.height={height}"])
        job = resolve_job(cfg, out)
        c0, t0 = cpu_self(), time.perf_counter()
        info = single.render_single(job, OutputTarget(job.output, job.fmt), RayOptions(workers=workers), CPU_BATCH)
        return {**info, "seconds": time.perf_counter() - t0, "driver_cpu": cpu_self() - c0}
    finally:
        single.choose_blocks = chooser


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=32768)
    ap.add_argument("--height", type=int, default=2048)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--suffix", default=".tif", choices=(".tif", ".dzi"))
    args = ap.parse_args()
    import ray

    print(machine())
    print(f"ray {ray.__version__}; {args.width}x{args.height} {args.suffix}, {args.workers} actors")
    tmp = Path(tempfile.mkdtemp(prefix="bench-blocks-"))
    rt = tempfile.mkdtemp(prefix="rb-", dir="/tmp")
    ray.init(num_cpus=args.workers, _temp_dir=rt, include_dashboard=False, log_to_driver=False)
    rows = {}
    try:
        for name, bands in (("bands", True), ("blocks", False)):
            (tmp / name).mkdir()
            rows[name] = render(tmp / name / f"p{args.suffix}", args.width, args.height, args.workers, bands)
        if args.suffix == ".tif":
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
            from test_tiffbands import tiles_and_tags

            same = tiles_and_tags(tmp / "bands" / "p.tif") == tiles_and_tags(tmp / "blocks" / "p.tif")
        else:
            def files(root):
                return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
            same = files(tmp / "bands") == files(tmp / "blocks")
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(rt, ignore_errors=True)
    mpix = args.width * args.height / 1e6
    print(f"{'layout':<8}{'blocks':>7}{'k':>3}{'wall s':>8}{'MPix/s':>8}{'driver CPU s':>13}{'drv/actors':>11}"
          f"{'B/px back':>10}")
    for name, r in rows.items():
        print(f"{name:<8}{r['blocks']:>7}{r['encoded_levels'] - 1:>3}{r['seconds']:>8.1f}{mpix / r['seconds']:>8.2f}"
              f"{r['driver_cpu']:>13.2f}{r['driver_cpu'] / r['worker_cpu']:>11.1%}"
              f"{r['transfer_bytes'] / (mpix * 1e6):>10.3f}")
    b, s = rows["bands"], rows["blocks"]
    print(f"blocks against bands: wall {s['seconds'] / b['seconds']:.2f}x, driver CPU "
          f"{s['driver_cpu'] / b['driver_cpu']:.2f}x; tiles identical: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
