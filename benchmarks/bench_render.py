"""Render speed and memory against the article's approach, in one run.

    python benchmarks/bench_render.py [--size 4096] [--modes baseline,render,render-vips,renderer]

Each mode runs in a fresh Python process (so its peak RSS is its own) on the
same network and canvas:

  baseline   the article's approach: the whole coordinate grid through an
             nn.Sequential of the same weights in one pass, then to uint8;
  render     `bigcppn render` to a tiled pyramidal TIFF (the default deflate),
             tiles compressed on all cores by bigcppn's TIFF writer;
  render-vips  the same render written by libvips instead (for TIFF:
             single-threaded deflate), the writers' own baseline;
  renderer   the renderer alone: every strip rendered, nothing written.

It prints MPix/s, peak RSS and each mode's speed as a ratio of the baseline's.
Only the work is timed, not the Python and torch start-up common to all.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from machine import machine  # benchmarks/machine.py, beside this script

CHILD = r"""
import json, resource, sys, time
mode, size, extra = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
import torch
from bigcppn.config import load_config
from bigcppn.network.model import CPPN
cfg = load_config(None, extra.get("set", []), {"canvas.width": size, "canvas.height": size})
t = time.perf_counter()
if mode == "baseline":
    # As in the article: build every coordinate, run the whole grid through the net at once.
    # The weights are the bigcppn model's (reference float32 copies), tanh as configured.
    m = CPPN(cfg.network, cfg.seed)
    layers = []
    for i, (w, b) in enumerate(zip(m.ref_w, m.ref_b)):
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        lin.weight.data[:] = w.float(); lin.bias.data[:] = b.float()
        layers += [lin, torch.nn.Tanh() if i < len(m.ref_w) - 1 else torch.nn.Sigmoid()]
    net = torch.nn.Sequential(*layers)
    t = time.perf_counter()
    with torch.no_grad():
        ys, xs = torch.meshgrid(torch.arange(size) / size - 0.5, torch.arange(size) / size - 0.5, indexing="ij")
        inp = torch.stack([xs.reshape(-1), ys.reshape(-1)], 1)
        img = (net(inp) * 255).to(torch.uint8).reshape(size, size, 3).numpy()
elif mode in ("render", "render-vips"):
    from bigcppn.cli import main
    if mode == "render-vips":
        import bigcppn.formats.deepzoom.format
        import bigcppn.formats.tiff.format
        bigcppn.formats.tiff.format.PARALLEL_TIFF = bigcppn.formats.deepzoom.format.PARALLEL_DZ = ()  # all libvips
    args = ["render", "-o", extra["out"], "--width", str(size), "--height", str(size), "-q"]
    for s in extra.get("set", []):
        args += ["--set", s]
    rc = main(args)
    assert rc == 0, rc
elif mode == "renderer":
    from bigcppn.network.strips import StripStream, renderer_for
    from bigcppn.network.backend import strip_workers
    r, plan = renderer_for(cfg)
    for strip in StripStream(r, plan, workers=strip_workers(r.device, cfg.render.workers)):
        pass
else:
    raise SystemExit(f"unknown mode {mode}")
seconds = time.perf_counter() - t
print(json.dumps({"mode": mode, "seconds": seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_mode(mode: str, size: int, extra: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(size), json.dumps(extra)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return {"mode": mode, "error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=4096, help="canvas side in pixels (default 4096)")
    ap.add_argument("--modes", default="baseline,render,render-vips,renderer", help="comma-separated modes to run")
    ap.add_argument("--set", action="append", default=[], help="config override for every mode")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each mode; the fastest is reported")
    args = ap.parse_args()

    print(f"machine: {machine()}")
    print(f"canvas: {args.size}x{args.size} ({args.size**2 / 1e6:.1f} MPix), overrides: {args.set or 'none'}")
    results = {}
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        extra = {"out": os.path.join(tmp, "bench.tif"), "set": args.set}
        modes = args.modes.split(",")
        runs: dict[str, list[dict]] = {m: [] for m in modes}
        for _ in range(args.repeat):  # interleaved, so a noisy spell hits every mode alike
            for mode in modes:
                r = run_mode(mode, args.size, extra)
                if mode.startswith("render") and os.path.exists(extra["out"]):
                    r["file_mb"] = os.path.getsize(extra["out"]) / 1e6
                    os.unlink(extra["out"])
                runs[mode].append(r)
        for mode in modes:
            ok = [r for r in runs[mode] if "error" not in r]
            results[mode] = min(ok, key=lambda r: r["seconds"]) if ok else runs[mode][0]
    base = results.get("baseline", {}).get("seconds")
    print(f"{'mode':10} {'seconds':>8} {'MPix/s':>8} {'peak RSS':>10} {'vs baseline':>12}")
    for mode, r in results.items():
        if "error" in r:
            print(f"{mode:10} failed: {r['error']}")
            continue
        mpix = args.size**2 / 1e6 / r["seconds"]
        ratio = f"{base / r['seconds']:.2f}x" if base else "-"
        print(f"{mode:10} {r['seconds']:8.2f} {mpix:8.2f} {r['peak_rss_mb']:8.0f} MB {ratio:>12}")
    vips = results.get("render-vips", {}).get("seconds")
    if vips and "seconds" in results.get("render", {}):
        print(f"render vs render-vips: {vips / results['render']['seconds']:.2f}x "
              f"(the parallel TIFF writer against libvips' tiffsave, same render)")
    print(json.dumps({"size": args.size, "results": results}))


if __name__ == "__main__":
    main()
