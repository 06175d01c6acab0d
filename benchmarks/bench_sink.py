"""The sink alone: a picture already in memory, written by each output path, in one run.

    python3 benchmarks/bench_sink.py [--size 4096] [--repeat 3] [--formats tiff-jpeg,dz,szi,tiff-none,tiff-deflate,tiff-lzw]

For each format, three ways of writing the same rendered picture:

  memory   libvips saving it from memory (pyvips.Image.new_from_memory): the floor
  stream   the render path: strips through bigcppn's sink (save_strips), as `bigcppn render` writes them
  vips     where bigcppn writes the format itself (deflate/LZW/JPEG TIFF, DeepZoom with JPEG tiles): the
           stream path forced through libvips instead (the writers' own baseline)

It prints MPix/s and stream/memory time ratios (1.00x: streaming costs nothing). The picture is rendered
first (not timed). Repeats are interleaved and the best kept: machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FORMATS = {
    "tiff-jpeg": (".tif", "jpeg"),
    "dz": (".dzi", "deflate"),
    "szi": (".szi", "deflate"),
    "tiff-none": (".tif", "none"),
    "tiff-deflate": (".tif", "deflate"),
    "tiff-lzw": (".tif", "lzw"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--formats", default=",".join(FORMATS))
    args = ap.parse_args()

    import numpy as np
    import pyvips

    import bigcppn.formats.deepzoom.format as dz_format
    import bigcppn.formats.tiff.format as tiff_format
    import bigcppn.formats.target as sink
    from bigcppn.config import OutputConfig, load_config
    from bigcppn.formats.registry import format_for
    from bigcppn.network.strips import StripStream, renderer_for
    from bigcppn.network.backend import strip_workers

    pyvips.cache_set_max(0)
    cfg = load_config(None, [], {"canvas.width": args.size, "canvas.height": args.size, "seed": 7})
    r, plan = renderer_for(cfg)
    img = np.concatenate(list(StripStream(r, plan, workers=strip_workers(r.device, 0))))
    h, w, bands = img.shape
    rows = plan.rows
    print(f"picture: {w}x{h} RGB (seed 7), strips of {rows} rows; libvips "
          f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}")

    tmp = Path(tempfile.mkdtemp(prefix="bench-sink-", dir="."))

    def clean() -> None:
        for p in tmp.iterdir():
            shutil.rmtree(p) if p.is_dir() else p.unlink()

    def memory(path, fmt, out):
        fmt.save(pyvips.Image.new_from_memory(img.data, w, h, bands, "uchar"), path, out)

    def stream(path, fmt, out):
        sink.save_strips((img[y : y + rows] for y in range(0, h, rows)), sink.OutputTarget(path, fmt),
                         w, h, bands, out)

    def vips(path, fmt, out):
        saved = tiff_format.PARALLEL_TIFF, dz_format.PARALLEL_DZ
        tiff_format.PARALLEL_TIFF = dz_format.PARALLEL_DZ = ()  # every output through libvips
        try:
            stream(path, fmt, out)
        finally:
            tiff_format.PARALLEL_TIFF, dz_format.PARALLEL_DZ = saved

    try:
        for name in args.formats.split(","):
            suffix, comp = FORMATS[name]
            out = OutputConfig(compression=comp)
            path = tmp / f"x{suffix}"
            fmt = format_for(path)
            ways = {"memory": memory, "stream": stream}
            if fmt.own_writer(out):
                ways["vips"] = vips
            best: dict[str, float] = {}
            for _ in range(args.repeat):
                for way, fn in ways.items():
                    t = time.perf_counter()
                    fn(path, fmt, out)
                    best[way] = min(best.get(way, 1e9), time.perf_counter() - t)
                    clean()
            line = "  ".join(f"{way} {w * h / s / 1e6:6.1f} MPix/s" for way, s in best.items())
            extra = f"  vips/stream {best['vips'] / best['stream']:.2f}x" if "vips" in best else ""
            print(f"{name:13} {line}  stream/memory {best['stream'] / best['memory']:.2f}x{extra}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
