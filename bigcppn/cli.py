"""The command line: ``bigcppn render`` and ``bigcppn plan``.

Everything that can be wrong with the input is checked before rendering starts
and reported as one line with exit status 2; a failure while rendering exits
with status 1 and Ctrl-C with 130, and neither leaves a file at the output path.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .config import Config, load_config
from .errors import RenderError, UserError
from .formats import Format, check_canvas, estimate_output_bytes, format_for
from .plan import Plan, estimate_peak_bytes

__all__ = ["main", "build_parser"]

DESCRIPTION = """\
Render CPPN art at any size, from a thumbnail to a gigapixel poster, with
memory that does not grow with the canvas. The output format follows the
extension: .tif (tiled pyramidal TIFF), .png, .jpg, .webp, .dzi (DeepZoom
folder) or .szi (DeepZoom zip)."""


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {v}")
    return v


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if not 0 <= v < 2**63:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to 2**63-1, got {v}")
    return v


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", metavar="CONFIG", help="a TOML config (default: the article's network)")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output file; the extension picks the format (default: cppn-SEED-WxH.tif)")
    p.add_argument("--width", type=_positive_int, metavar="W", help="canvas width in pixels")
    p.add_argument("--height", type=_positive_int, metavar="H",
                   help="canvas height in pixels (with only one of --width/--height the config's aspect is kept)")
    p.add_argument("--seed", type=_seed, metavar="N", help="the seed that draws the weights")
    p.add_argument("--tile", type=_positive_int, metavar="T", help="render tile size, also the strip height (default 256)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where to evaluate the network (default auto)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set network.hidden=[32,32] (repeatable)")
    p.add_argument("-v", "--verbose", action="store_true", help="show tracebacks and details")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bigcppn", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"bigcppn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    render = sub.add_parser("render", help="render a picture to a file",
                            description="Render the config's CPPN to OUT, streaming strips into libvips.")
    _add_common(render)
    render.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    plan = sub.add_parser("plan", help="show what a render would do, without rendering",
                          description="Show the canvas, tiles, strips, batches, estimated memory, "
                                      "output size and time of a render, without rendering.")
    _add_common(plan)
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    return parser


@dataclass(frozen=True)
class Job:
    """A validated render request: the resolved config, where it goes and how."""

    config: Config
    output: Path
    fmt: Format


def resolve(args: argparse.Namespace) -> Job:
    """Turn parsed arguments into a validated job; raises UserError on any bad input."""
    extra: dict = {}
    if args.seed is not None:
        extra["seed"] = args.seed
    if args.tile is not None:
        extra["render.tile"] = args.tile
    if args.device is not None:
        extra["render.device"] = args.device
    cfg = load_config(args.config, args.overrides, extra)
    w, h = args.width, args.height
    if w is not None or h is not None:
        cw, ch = cfg.canvas.width, cfg.canvas.height
        w = w if w is not None else max(1, round(h * cw / ch))
        h = h if h is not None else max(1, round(w * ch / cw))
        cfg = load_config(args.config, args.overrides, {**extra, "canvas.width": w, "canvas.height": h})
    out = Path(args.output) if args.output else Path(f"cppn-{cfg.seed}-{cfg.canvas.width}x{cfg.canvas.height}.tif")
    fmt = format_for(out)
    check_canvas(fmt, cfg.canvas.width, cfg.canvas.height, cfg.output.depth)
    if fmt.name == "tiff" and cfg.output.compression == "jpeg" and cfg.output.depth == 16:
        raise UserError("JPEG-compressed TIFF holds 8 bits; use --set output.compression=deflate for 16 bits")
    return Job(cfg, out, fmt)


def _lossy(job: Job) -> bool:
    if job.fmt.name == "tiff":
        return job.config.output.compression == "jpeg"
    if job.fmt.name in ("dz", "szi"):
        return job.config.output.dz_suffix != "png"
    return job.fmt.name in ("jpeg", "webp")


def describe(job: Job, plan: Plan, device: str, rate_mpix_s: float | None) -> dict:
    cfg = job.config
    c = plan.canvas
    bands = cfg.network.bands
    out_bytes = estimate_output_bytes(job.fmt, c.width, c.height, bands, cfg.output.depth, _lossy(job))
    peak = estimate_peak_bytes(plan, bands, cfg.output.depth, cfg.render.queue, max(cfg.network.hidden, default=3))
    d = {
        "canvas": {"width": c.width, "height": c.height, "megapixels": round(c.pixels / 1e6, 3),
                   "bands": bands, "depth": cfg.output.depth},
        "tile": plan.tile,
        "tiles": plan.tile_count,
        "strips": plan.strip_count,
        "strip_height": plan.strip_height,
        "batches": plan.batch_count,
        "batch_pixels": plan.batch_pixels,
        "device": device,
        "output": {"path": str(job.output), "format": job.fmt.name, "estimated_bytes": out_bytes},
        "estimated_peak_bytes": peak,
    }
    if rate_mpix_s:
        encode = job.fmt.encode_mpix_s
        if job.fmt.name == "tiff":
            encode = {"none": 150.0, "lzw": 35.0, "deflate": 30.0, "jpeg": 100.0}[cfg.output.compression]
        mpix = c.pixels / 1e6
        # On a CPU the network and the encoder share the cores; on a GPU they overlap.
        seconds = mpix / rate_mpix_s + (mpix / encode if device == "cpu" else 0.0)
        if device != "cpu":
            seconds = max(seconds, mpix / encode)
        d["network_mpix_per_s"] = round(rate_mpix_s, 2)
        d["estimated_seconds"] = round(seconds, 1)
    return d


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def _duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def format_plan(d: dict) -> str:
    c = d["canvas"]
    mode = {1: "grey", 3: "RGB"}[c["bands"]]
    lines = [
        f"canvas    {c['width']} x {c['height']} px ({c['megapixels']:.1f} MPix), {mode} {c['depth']}-bit",
        f"tiles     {d['tile']} px: {d['strips']} strips x {d['tiles'] // d['strips']} columns = {d['tiles']} tiles",
        f"batches   {d['batches']} of up to {d['batch_pixels']} px on {d['device']}",
        f"output    {d['output']['path']} ({d['output']['format']}), about {_size(d['output']['estimated_bytes'])}",
        f"memory    about {_size(d['estimated_peak_bytes'])} peak",
    ]
    if "estimated_seconds" in d:
        lines.append(f"time      about {_duration(d['estimated_seconds'])} "
                     f"(network measured at {d['network_mpix_per_s']} MPix/s)")
    return "\n".join(lines)


def _check_disk(job: Job, needed: int) -> None:
    free = shutil.disk_usage(job.output.parent if str(job.output.parent) else ".").free
    if needed > free:
        raise UserError(f"not enough free disk for {job.output}: about {_size(needed)} needed, "
                        f"{_size(free)} free; free some space or write elsewhere")


def _measure_rate(renderer, plan: Plan) -> float:
    """Time one batch-sized window of the network (after a warm-up), in MPix/s."""
    from .plan import Window

    c = plan.canvas
    side = max(1, min(256, c.width, c.height))
    win = Window(0, 0, side, side)
    renderer.render_window(win)
    t = time.perf_counter()
    renderer.render_window(win)
    return win.pixels / max(time.perf_counter() - t, 1e-6) / 1e6


def cmd_plan(args: argparse.Namespace) -> int:
    from .render import pick_device, renderer_for

    job = resolve(args)
    device = pick_device(job.config.render.device)
    renderer, plan = renderer_for(job.config, device)
    d = describe(job, plan, device.type, _measure_rate(renderer, plan))
    print(json.dumps(d, indent=2) if args.json else format_plan(d))
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .render import StripStream, cpu_workers, pick_device, renderer_for
    from .sink import OutputTarget, save_strips

    job = resolve(args)
    device = pick_device(job.config.render.device)
    target = OutputTarget(job.output, job.fmt)
    try:
        target.probe()
    except OSError as exc:
        raise UserError(str(exc)) from None
    renderer, plan = renderer_for(job.config, device)
    info = describe(job, plan, device.type, None)
    _check_disk(job, info["output"]["estimated_bytes"])

    cfg = job.config
    c = plan.canvas
    workers = cpu_workers(device, cfg.render.workers)
    stream = StripStream(renderer, plan, depth=cfg.render.queue, workers=workers)
    done = {"rows": 0}

    def counted():
        for strip in stream:
            done["rows"] += strip.shape[0]
            yield strip

    bar = tqdm(total=c.pixels, unit="px", unit_scale=True, unit_divisor=1000, disable=args.quiet,
               desc=job.output.name, dynamic_ncols=True, file=sys.stderr, smoothing=0.1)

    def poll() -> None:
        if done["rows"] * c.width > bar.n:
            bar.update(done["rows"] * c.width - bar.n)

    t0 = time.perf_counter()
    try:
        save_strips(counted(), target, c.width, c.height, cfg.network.bands, cfg.output,
                    poll=poll, cancel=stream.cancel)
    finally:
        stream.cancel()
        stream.join()  # no rendering thread may outlive the command
        poll()
        bar.close()
    seconds = time.perf_counter() - t0
    if not args.quiet:
        print(f"wrote {job.output} ({c.width}x{c.height}, {c.pixels / 1e6 / seconds:.2f} MPix/s, "
              f"{_duration(seconds)})", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = getattr(args, "verbose", False)
    try:
        return {"render": cmd_render, "plan": cmd_plan}[args.command](args)
    except UserError as exc:
        if verbose:
            traceback.print_exc()
        print(f"bigcppn: error: {exc}", file=sys.stderr)
        return 2
    except RenderError as exc:
        if verbose:
            traceback.print_exc()
        print(f"bigcppn: {exc}; no file was written", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bigcppn: interrupted; no file was written", file=sys.stderr)
        return 130
