"""The Ray driver's peak memory does not grow with the canvas: a TIFF and a .dzi at three sizes on Ray.

    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 python benchmarks/bench_ray_memory.py [--sizes 4096,8192,16384]
        [--workers 2] [--suffix .tif,.dzi]

Each render runs in a fresh driver process (so ``ru_maxrss`` is that render's
peak), joining one local Ray started here with ``--workers`` CPUs; the
actors' memory is theirs, not the driver's. Prints the driver's peak RSS per
size and its ratio to the smallest size's, against the canvas ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from machine import machine  # noqa: E402

DRIVER = r"""
import json, resource, sys, time
import bigcppn
from bigcppn.cluster.pyramid import RayOptions
from bigcppn.cluster.single import render_single
from bigcppn.job import resolve_job
from bigcppn.network.devices import CPU_BATCH
from bigcppn.formats.target import OutputTarget
size, out, address, workers = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
cfg = bigcppn.api.as_config(None, seed=7, overrides=[f"canvas.width={size}", f"canvas.height={size}"])
job = resolve_job(cfg, out)
t0 = time.perf_counter()
info = render_single(job, OutputTarget(job.output, job.fmt), RayOptions(address=address, workers=workers), CPU_BATCH)
print(json.dumps({"seconds": time.perf_counter() - t0, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "blocks": info["blocks"], "split": info["split"], "k": info["encoded_levels"] - 1}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="4096,8192,16384")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--suffix", default=".tif,.dzi")
    args = ap.parse_args()
    import ray

    print(machine())
    tmp = Path(tempfile.mkdtemp(prefix="bench-raymem-"))
    rt = tempfile.mkdtemp(prefix="rm-", dir="/tmp")
    ray.init(num_cpus=args.workers, _temp_dir=rt, include_dashboard=False, log_to_driver=False)
    address = ray.get_runtime_context().gcs_address
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        for suffix in args.suffix.split(","):
            rows = []
            for size in map(int, args.sizes.split(",")):
                folder = tmp / f"{size}{suffix.strip('.')}"
                folder.mkdir()
                r = subprocess.run([sys.executable, "-c", DRIVER, str(size), str(folder / f"p{suffix}"), address,
                                    str(args.workers)],
                                   env=env, capture_output=True, text=True, timeout=1800)
                if r.returncode:
                    sys.exit(r.stderr[-2000:])
                rows.append((size, json.loads(r.stdout.strip().splitlines()[-1])))
                shutil.rmtree(folder, ignore_errors=True)
            base_size, base = rows[0]
            print(f"\n{suffix} on Ray, {args.workers} actors: the driver's peak RSS")
            print(f"{'canvas':>12}{'MPix':>8}{'blocks':>8}{'k':>3}{'split':>7}{'wall s':>8}{'RSS MB':>8}"
                  f"{'RSS ratio':>10}{'canvas ratio':>13}")
            for size, r in rows:
                print(f"{f'{size}x{size}':>12}{size * size / 1e6:>8.1f}{r['blocks']:>8}{r['k']:>3}"
                      f"{'yes' if r['split'] else 'no':>7}{r['seconds']:>8.1f}{r['rss_mb']:>8.0f}"
                      f"{r['rss_mb'] / base['rss_mb']:>9.2f}x{(size / base_size) ** 2:>12.1f}x")
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(rt, ignore_errors=True)


if __name__ == "__main__":
    main()
