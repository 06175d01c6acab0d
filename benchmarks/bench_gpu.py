"""The device path end to end, in one process: the network, the kernel, the encoders, libvips from memory.

    python3 benchmarks/bench_gpu.py [--device cuda] [--size 32768] [--json OUT.json]
    python3 benchmarks/bench_gpu.py --device cpu --size 2048          # the same on a CPU, small

Measurements, in this order, each printed (and appended to --json) as it finishes:

  baseline    the article's approach: the whole coordinate grid through an nn.Sequential of the same
              weights in one pass, to uint8 in host memory (on a --grid-size canvas: it needs ~140 B/px)
  eager       the PyTorch path (model.evaluate in batches), into device memory, strip by strip
  kernel      the fused Triton kernel, the same strips; a sweep of block sizes, the best kept
              (on a CPU it runs in Triton's interpreter at --kernel-size: a check, not a speed)
  renderer    strips to host memory as the renderer hands them to the sink (pinned, double-buffered)
  e2e:FMT     `bigcppn render` of a --size² canvas (in this process, timed around cli.main)
  vips:FMT    libvips writing the same picture from memory (pyvips.Image.new_from_memory), same options
  writer:FMT  where bigcppn writes the format itself (JPEG/deflate/LZW TIFF, DeepZoom), its writer from memory

and the ratios the issue sets targets for: kernel/eager (>= 2.5x), e2e/vips for JPEG TIFF and DeepZoom
(<= 1.3x), vips/e2e for deflate TIFF (>= 4x, 16 cores), and vips/writer where bigcppn writes the format.
Only the work is timed: not start-up, not the kernel's compilation (warmed up first). Machines are shared
and noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from machine import machine  # noqa: E402  (benchmarks/machine.py, beside this script)

FORMATS = {  # name: (file suffix, config overrides)
    "tiff-jpeg": (".tif", ["output.compression=jpeg"]),
    "dz": (".dzi", []),
    "tiff-deflate": (".tif", ["output.compression=deflate"]),
    "tiff-lzw": (".tif", ["output.compression=lzw"]),
}


class Bench:
    def __init__(self, args) -> None:
        import torch

        self.args = args
        self.device = torch.device(args.device)
        self.results: dict[str, dict] = {}
        self.json = Path(args.json) if args.json else None

    def sync(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def record(self, name: str, seconds: float, pixels: int, **extra) -> None:
        r = {"seconds": round(seconds, 4), "pixels": pixels, "mpix_s": round(pixels / seconds / 1e6, 2), **extra}
        self.results[name] = r
        note = " ".join(f"{k}={v}" for k, v in extra.items())
        print(f"{name:22} {seconds:9.3f} s {r['mpix_s']:10.1f} MPix/s  {note}", flush=True)
        if self.json:
            self.json.write_text(json.dumps({"machine": self.machine, "args": vars(self.args),
                                             "results": self.results}, indent=1))

    def timed(self, fn, repeat: int = 1) -> float:
        best = float("inf")
        for _ in range(repeat):
            self.sync()
            t = time.perf_counter()
            fn()
            self.sync()
            best = min(best, time.perf_counter() - t)
        return best

    # ------------------------------------------------------------------ the network

    def config(self, size: int, *sets: str):
        from bigcppn.config import load_config

        return load_config(None, [*self.args.set, *sets],
                           {"canvas.width": size, "canvas.height": size, "render.device": self.device.type})

    def baseline(self) -> None:
        """As in the article: every coordinate at once through nn.Sequential, then to uint8 on the host."""
        import torch

        from bigcppn.network.model import CPPN

        size = min(self.args.grid_size, self.args.size)
        cfg = self.config(size)
        m = CPPN(cfg.network, cfg.seed)
        layers = []
        for i, (w, b) in enumerate(zip(m.ref_w, m.ref_b)):
            lin = torch.nn.Linear(w.shape[1], w.shape[0])
            lin.weight.data[:] = w.float()
            lin.bias.data[:] = b.float()
            layers += [lin, torch.nn.Tanh() if i < len(m.ref_w) - 1 else torch.nn.Sigmoid()]
        net = torch.nn.Sequential(*layers).to(self.device)

        def run():
            with torch.no_grad():
                a = torch.arange(size, device=self.device) / size - 0.5
                ys, xs = torch.meshgrid(a, a, indexing="ij")
                inp = torch.stack([xs.reshape(-1), ys.reshape(-1)], 1)
                return (net(inp) * 255).to(torch.uint8).reshape(size, size, 3).cpu().numpy()

        run() if self.device.type == "cuda" else None  # warm-up (cuBLAS handles)
        self.record("baseline", self.timed(run), size * size, canvas=size)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def network(self, kind: str, size: int, repeat: int = 3, **kernel_opts) -> float:
        """Evaluate a size² canvas strip by strip into one device buffer; seconds of the best run."""
        import torch

        from bigcppn.network.strips import Renderer, renderer_for

        cfg = self.config(size, "render.kernel=eager")
        eager, plan = renderer_for(cfg, self.device)
        r = eager
        if kind == "kernel":
            r = Renderer(eager.model, plan.canvas, eager.sampling.view, self.device, kernel="triton")
            if kernel_opts:
                from bigcppn.network.triton.kernel import FusedKernel

                r.fused = FusedKernel(r.model, r.sampling, self.device, 8, **kernel_opts)
        strips = list(plan.strips())
        buf = torch.empty((plan.strip_height, size, 3), dtype=r.device_dtype, device=self.device)

        def run():
            for s in strips:
                dst = buf[: s.height]
                if kind == "kernel":
                    r.fill(dst, s.window)
                else:
                    for b in s.batches:
                        r.fill(dst[:, b.x : b.x + b.width], b)

        from bigcppn.core.geometry import Window

        r.fill(buf[:16, :16], Window(0, 0, 16, 16))  # warm-up: compiles the kernel
        return self.timed(run, repeat)

    def eager_and_kernel(self) -> None:
        import torch

        size = self.args.net_size
        t = self.network("eager", size)
        self.record("eager", t, size * size, canvas=size)
        if self.device.type == "cpu":
            # Triton's interpreter: a correctness check of the same code, not a speed.
            ks = self.args.kernel_size
            self.record("kernel (interpreter)", self.network("kernel", ks, repeat=1), ks * ks, canvas=ks)
        else:
            best = None
            for block, warps in ((128, 4), (64, 2), (256, 4), (256, 8), (512, 8)):
                try:
                    tk = self.network("kernel", size, block=block, num_warps=warps)
                except Exception as exc:  # a configuration that does not compile here
                    print(f"kernel block={block} warps={warps}: {exc.__class__.__name__}: {exc}", flush=True)
                    continue
                print(f"  kernel block={block:4} warps={warps}: {size * size / tk / 1e9:.2f} GPix/s", flush=True)
                if best is None or tk < best[0]:
                    best = (tk, block, warps)
            t_default = self.network("kernel", size)
            self.record("kernel", t_default, size * size, canvas=size, vs_eager=round(t / t_default, 2))
            if best:
                self.record("kernel (best block)", best[0], size * size, block=best[1], warps=best[2],
                            vs_eager=round(t / best[0], 2))
            torch.cuda.empty_cache()
        self.agreement()

    def agreement(self) -> None:
        """Kernel vs PyTorch on one canvas: max difference in 8-bit levels and the share of pixels that differ."""
        import numpy as np

        from bigcppn.network.strips import Renderer, renderer_for

        size = self.args.kernel_size if self.device.type == "cpu" else 4096
        cfg = self.config(size, "render.kernel=eager")
        eager, plan = renderer_for(cfg, self.device)
        fused = Renderer(eager.model, plan.canvas, eager.sampling.view, self.device, kernel="triton")
        a, b = eager.render(plan), fused.render(plan)
        d = np.abs(a.astype(int) - b.astype(int))
        self.results["agreement"] = {"canvas": size, "max_levels": int(d.max()), "share_differing": float((d > 0).mean())}
        print(f"agreement kernel vs eager at {size}²: max {d.max()} level(s), {100 * (d > 0).mean():.4f}% of samples differ",
              flush=True)

    def renderer(self) -> None:
        """Strips into host memory exactly as the sink gets them (workers, pinned copies), nothing encoded."""
        from bigcppn.network.strips import StripStream, renderer_for
        from bigcppn.network.backend import strip_workers

        size = self.args.net_size
        cfg = self.config(size)
        r, plan = renderer_for(cfg, self.device)
        next(iter(r.strips(plan)))  # warm-up
        t = time.perf_counter()
        for _ in StripStream(r, plan, queue_size=cfg.render.queue, workers=strip_workers(self.device, cfg.render.workers)):
            pass
        self.record("renderer", time.perf_counter() - t, size * size, canvas=size, kernel=r.kernel)

    # ------------------------------------------------------------------ the output

    def end_to_end(self, tmp: Path, fmt: str) -> None:
        from bigcppn.cli import main

        suffix, sets = FORMATS[fmt]
        out = tmp / f"e2e{suffix}"
        size = self.args.size
        args = ["render", "-o", str(out), "--width", str(size), "--height", str(size), "-q",
                "--device", self.device.type]
        for s in [*self.args.set, *sets]:
            args += ["--set", s]
        t = time.perf_counter()
        rc = main(args)
        seconds = time.perf_counter() - t
        assert rc == 0, f"bigcppn render exited {rc}"
        self.record(f"e2e:{fmt}", seconds, size * size, mb=round(_size(out) / 1e6, 1))
        _clean(tmp)

    def picture(self):
        """The whole --size² picture in host memory, rendered by the renderer (not timed)."""
        import numpy as np

        from bigcppn.network.strips import StripStream, renderer_for

        from bigcppn.network.backend import strip_workers

        cfg = self.config(self.args.size)
        r, plan = renderer_for(cfg, self.device)
        img = np.empty((self.args.size, self.args.size, 3), dtype=np.uint8)
        y = 0
        for strip in StripStream(r, plan, workers=strip_workers(self.device, cfg.render.workers)):
            img[y : y + strip.shape[0]] = strip
            y += strip.shape[0]
        return img, cfg

    def from_memory(self, tmp: Path, fmt: str, img, base_cfg) -> None:
        import pyvips

        from bigcppn.formats.registry import format_for
        from bigcppn.formats.writers import open_writer

        suffix, sets = FORMATS[fmt]
        cfg = self.config(self.args.size, *sets)
        path = tmp / f"vips{suffix}"
        h, w, bands = img.shape
        t = time.perf_counter()
        image = pyvips.Image.new_from_memory(img.data, w, h, bands, "uchar")
        format_for(path).save(image, path, cfg.output, dpi=cfg.canvas.dpi)
        seconds = time.perf_counter() - t
        self.record(f"vips:{fmt}", seconds, w * h, mb=round(_size(path) / 1e6, 1))
        _clean(tmp)
        if format_for(path).own_writer(cfg.output):  # bigcppn writes this format itself
            path = tmp / f"writer{suffix}"
            t = time.perf_counter()
            writer = open_writer(path, format_for(path), w, h, bands, cfg.output, dpi=cfg.canvas.dpi)
            for y in range(0, h, 256):
                writer.write(img[y : y + 256])
            writer.close()
            seconds = time.perf_counter() - t
            self.record(f"writer:{fmt}", seconds, w * h, mb=round(_size(path) / 1e6, 1))
            _clean(tmp)


def _size(p: Path) -> int:
    files = [p]
    if p.suffix == ".dzi":
        files += list(p.with_name(p.stem + "_files").rglob("*"))
    return sum(f.stat().st_size for f in files if f.is_file())


def _clean(tmp: Path) -> None:
    for p in tmp.iterdir():
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def ratios(res: dict) -> list[str]:
    lines = []

    def sec(k):
        return res.get(k, {}).get("seconds")

    if sec("kernel") and sec("eager"):
        best = min(sec("kernel"), sec("kernel (best block)") or sec("kernel"))
        lines.append(f"kernel vs eager: {sec('eager') / best:.2f}x faster (target >= 2.5x)")
    if sec("renderer") and sec("baseline"):
        rb = res["renderer"]["mpix_s"] / res["baseline"]["mpix_s"]
        lines.append(f"renderer vs whole-grid baseline: {rb:.2f}x the MPix/s")
    for fmt in ("tiff-jpeg", "dz"):
        if sec(f"e2e:{fmt}") and sec(f"vips:{fmt}"):
            lines.append(f"{fmt}: end to end {sec(f'e2e:{fmt}') / sec(f'vips:{fmt}'):.2f}x libvips from memory "
                         "(target <= 1.3x)")
    for fmt in ("tiff-jpeg", "dz", "tiff-deflate", "tiff-lzw"):
        if sec(f"writer:{fmt}") and sec(f"vips:{fmt}"):
            lines.append(f"{fmt}: the parallel writer from memory {sec(f'vips:{fmt}') / sec(f'writer:{fmt}'):.2f}x "
                         "faster than libvips from memory")
    if sec("e2e:tiff-deflate") and sec("vips:tiff-deflate"):
        lines.append(f"tiff-deflate: end to end {sec('vips:tiff-deflate') / sec('e2e:tiff-deflate'):.2f}x faster "
                     "than libvips from memory (target >= 4x with 16 cores)")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--size", type=int, default=32768, help="canvas side of the end-to-end renders (default 32768)")
    ap.add_argument("--net-size", type=int, default=None,
                    help="canvas side of the network measurements (default: 16384 on CUDA, --size on a CPU)")
    ap.add_argument("--grid-size", type=int, default=None,
                    help="canvas side of the whole-grid baseline (default: 8192 on CUDA, 2048 on a CPU)")
    ap.add_argument("--kernel-size", type=int, default=128, help="canvas side of the interpreted kernel on a CPU")
    ap.add_argument("--formats", default=",".join(FORMATS), help=f"end-to-end formats, from {', '.join(FORMATS)}")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: baseline,network,renderer,e2e,vips")
    ap.add_argument("--set", action="append", default=[], help="config override for every measurement")
    ap.add_argument("--json", help="write the results here (rewritten after every measurement)")
    ap.add_argument("--tmp", default=None, help="folder for the outputs (default: a temporary folder)")
    args = ap.parse_args()
    cuda = args.device == "cuda"
    args.net_size = args.net_size or (min(16384, args.size) if cuda else args.size)
    args.grid_size = args.grid_size or (8192 if cuda else 2048)
    skip = set(filter(None, args.skip.split(",")))
    if not cuda and "network" not in skip:
        # Triton reads this when imported: the kernel runs in its interpreter on the CPU.
        os.environ["TRITON_INTERPRET"] = "1"

    import torch

    if cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda but no CUDA device is available; use --device cpu")
    if not cuda:
        torch.set_num_threads(1)  # as the renderer runs: a worker per core, one torch thread each
    b = Bench(args)
    b.machine = machine(b.device)
    print(f"machine: {b.machine}")
    print(f"canvas: {args.size}² end to end, {args.net_size}² network, {min(args.grid_size, args.size)}² baseline; "
          f"overrides: {args.set or 'none'}", flush=True)
    if "baseline" not in skip:
        b.baseline()
    if "network" not in skip:
        b.eager_and_kernel()
    if "renderer" not in skip:
        b.renderer()
    fmts = [f for f in args.formats.split(",") if f]
    tmp = Path(tempfile.mkdtemp(prefix="bench-gpu-", dir=args.tmp))
    try:
        if "e2e" not in skip or "vips" not in skip:
            for fmt in fmts:
                if fmt not in FORMATS:
                    raise SystemExit(f"unknown format {fmt}; choose from {', '.join(FORMATS)}")
        img = cfg = None
        for fmt in fmts:  # e2e and from-memory side by side, format by format
            if "e2e" not in skip:
                b.end_to_end(tmp, fmt)
            if "vips" not in skip:
                if img is None:
                    img, cfg = b.picture()
                b.from_memory(tmp, fmt, img, cfg)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    for line in ratios(b.results):
        print(line)
    b.results["ratios"] = ratios(b.results)
    if b.json:
        b.json.write_text(json.dumps({"machine": b.machine, "args": vars(args), "results": b.results}, indent=1))


if __name__ == "__main__":
    main()
