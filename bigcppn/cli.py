"""The command line: ``bigcppn render`` and ``bigcppn plan``.

Everything that can be wrong with the input is checked before rendering starts
and reported as one line with exit status 2; a failure while rendering exits
with status 1 and Ctrl-C with 130, and neither leaves a file at the output path.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .config import Config, config_to_dict, load_config
from .errors import RenderError, UserError
from .formats import Format, check_canvas, estimate_output_bytes, format_for
from .plan import Plan, estimate_peak_bytes
from .system import available_cores
from .units import PrintSize, parse_length_in, parse_paper_in, print_canvas

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
    p.add_argument("--from", dest="from_image", metavar="IMAGE",
                   help="start from the config embedded in an earlier bigcppn output (a .dzi: its sidecar)")
    p.add_argument("--seed", type=_seed, metavar="N", help="the seed that draws the weights")
    pr = p.add_argument_group("print size (instead of --width/--height)")
    pr.add_argument("--size", metavar="PAPER",
                    help="A0..A6, letter, legal, tabloid, or WxHmm / WxHcm / WxHin (e.g. 50x70cm)")
    pr.add_argument("--dpi", type=float, metavar="N",
                    help="print resolution, written into TIFF, PNG and JPEG (default 300)")
    pr.add_argument("--landscape", action="store_true", help="turn the paper so its long side is horizontal")
    pr.add_argument("--bleed", metavar="LEN",
                    help="extend the picture past the trim edge on every side, e.g. 3mm or 0.125in")
    p.add_argument("--depth", type=int, choices=(8, 16), help="bits per sample: 16 for TIFF and PNG (default 8)")
    p.add_argument("--tile", type=_positive_int, metavar="T", help="render tile size, also the strip height (default 256)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where to evaluate the network (default auto)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set network.hidden=[32,32] (repeatable)")
    p.add_argument("-v", "--verbose", action="store_true", help="show tracebacks and details")


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (what was wrong, where to look) and exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bigcppn", description=DESCRIPTION,
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

    sheet = sub.add_parser("sheet", help="a contact sheet of seeds, to pick one before a long render",
                           description="Render one thumbnail per seed in one batched pass, labelled with its "
                                       "seed, into a grid.")
    sheet.add_argument("config", nargs="?", metavar="CONFIG", help="a TOML config (default: the article's network)")
    sheet.add_argument("-o", "--output", metavar="OUT", default="sheet.png",
                       help="output image: .png, .jpg, .webp or .tif (default sheet.png)")
    sheet.add_argument("--seeds", default="0-15", metavar="SEEDS", help="e.g. 0-15 or 1,5,9 (default 0-15)")
    sheet.add_argument("--cell", type=_positive_int, default=256, metavar="PX",
                       help="thumbnail size, longer side (default 256)")
    sheet.add_argument("--columns", type=_positive_int, metavar="N", help="thumbnails per row (default: square)")
    sheet.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where to evaluate (default auto)")
    sheet.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value (repeatable)")
    sheet.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    sheet.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")
    _add_pyramid_parsers(sub)
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
    if args.depth is not None:
        extra["output.depth"] = args.depth
    if args.dpi is not None:
        extra["canvas.dpi"] = args.dpi
    base = None
    if args.from_image is not None:
        if args.config is not None:
            raise UserError("give either a CONFIG or --from IMAGE, not both")
        from .metadata import read_config_from

        base = config_to_dict(read_config_from(args.from_image))
        # the picture comes from the network, view and canvas; how this machine renders it is its own affair
        for key in ("device", "kernel", "workers", "batch"):
            base["render"].pop(key, None)
    cfg = load_config(args.config, args.overrides, extra, base=base)
    extra.update(_canvas_size(args, cfg))
    if extra:
        cfg = load_config(args.config, args.overrides, extra, base=base)
    out = Path(args.output) if args.output else Path(f"cppn-{cfg.seed}-{cfg.canvas.width}x{cfg.canvas.height}.tif")
    fmt = format_for(out)
    check_canvas(fmt, cfg.canvas.width, cfg.canvas.height, cfg.output.depth)
    if fmt.name == "tiff" and cfg.output.compression == "jpeg" and cfg.output.depth == 16:
        raise UserError("JPEG-compressed TIFF holds 8 bits; use --set output.compression=deflate for 16 bits")
    return Job(cfg, out, fmt)


def _canvas_size(args: argparse.Namespace, cfg: Config) -> dict:
    """Canvas keys from --size/--dpi/--landscape/--bleed or --width/--height, on top of ``cfg``."""
    if args.size is not None and (args.width is not None or args.height is not None):
        raise UserError("give either --size or --width/--height, not both")
    if args.landscape and args.size is None:
        raise UserError("--landscape turns a paper size; give --size too")
    dpi = cfg.canvas.dpi
    bleed_in = parse_length_in(args.bleed) if args.bleed is not None else None
    if args.size is not None:
        p = print_canvas(parse_paper_in(args.size), dpi, bleed_in or 0.0, args.landscape)
        return {"canvas.width": p.width, "canvas.height": p.height, "canvas.bleed": p.bleed}
    w, h = args.width, args.height
    cw, ch, bleed = cfg.canvas.width, cfg.canvas.height, cfg.canvas.bleed
    out: dict = {}
    if w is not None or h is not None:
        w = w if w is not None else max(1, round(h * cw / ch))
        h = h if h is not None else max(1, round(w * ch / cw))
        # a config's bleed scales with the picture, unless --bleed sets it anew
        bleed = round(bleed * w / cw)
        out = {"canvas.width": w, "canvas.height": h, "canvas.bleed": bleed}
    if bleed_in is not None:
        # --bleed adds to the picture: the sizes given are the trimmed ones
        trim_w, trim_h = out.get("canvas.width", cw) - 2 * bleed, out.get("canvas.height", ch) - 2 * bleed
        b = round(bleed_in * dpi)
        out = {"canvas.width": trim_w + 2 * b, "canvas.height": trim_h + 2 * b, "canvas.bleed": b}
    return out


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
    out_bytes = estimate_output_bytes(job.fmt, c.width, c.height, bands, cfg.output.depth, _lossy(job),
                                      uncompressed=job.fmt.name == "tiff" and cfg.output.compression == "none")
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
        "output": {"path": str(job.output), "format": job.fmt.name, "estimated_bytes": out_bytes,
                   "writer": _writer(job)},
        "estimated_peak_bytes": peak,
    }
    ps = PrintSize(c.width, c.height, c.bleed, cfg.canvas.dpi)
    d["print"] = {"dpi": ps.dpi, "bleed_px": ps.bleed,
                  "mm": [round(v, 1) for v in ps.mm()], "trimmed_mm": [round(v, 1) for v in ps.mm(trimmed=True)]}
    if rate_mpix_s:
        from .sink import own_writer

        encode = job.fmt.encode_mpix_s
        if job.fmt.name == "tiff":
            # deflate, LZW, JPEG: bigcppn's TIFF writer on all cores (measured per core here)
            cores = available_cores()
            encode = {"none": 150.0, "lzw": 20.0 * cores, "deflate": 39.0 * cores,
                      "jpeg": 55.0 * cores}[cfg.output.compression]
        elif own_writer(job.fmt, cfg.output):
            encode = 50.0 * available_cores()  # bigcppn's DeepZoom writer, measured per core here
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
        f"output    {d['output']['path']} ({d['output']['format']}), about {_size(d['output']['estimated_bytes'])}, "
        f"written by {d['output']['writer']}",
        f"memory    about {_size(d['estimated_peak_bytes'])} peak",
    ]
    pr = d["print"]
    (w, h), (tw, th) = pr["mm"], pr["trimmed_mm"]
    if pr["bleed_px"]:
        lines.append(f"print     {w:.0f} × {h:.0f} mm with bleed, {tw:.0f} × {th:.0f} mm trimmed, "
                     f"at {pr['dpi']:g} dpi (bleed {pr['bleed_px']} px a side)")
    else:
        lines.append(f"print     {w:.0f} × {h:.0f} mm at {pr['dpi']:g} dpi")
    if "estimated_seconds" in d:
        lines.append(f"time      about {_duration(d['estimated_seconds'])} "
                     f"(network measured at {d['network_mpix_per_s']} MPix/s)")
    return "\n".join(lines)


def _writer(job: Job) -> str:
    """Who writes the output: bigcppn's TIFF or DeepZoom writer on every core, or libvips."""
    from .sink import own_writer  # (imports pyvips; plan and render load it anyway)

    out = job.config.output
    tiff = job.fmt.name == "tiff"
    if own_writer(job.fmt, out):
        kind, tiles = ("TIFF", out.compression) if tiff else ("DeepZoom", out.dz_suffix)
        return f"bigcppn's {kind} writer, {tiles} tiles on {available_cores()} cores"
    if tiff:
        return f"libvips, {'uncompressed' if out.compression == 'none' else out.compression} tiles"
    return "libvips"


def _check_disk(job: Job, needed: int) -> None:
    free = shutil.disk_usage(job.output.parent if str(job.output.parent) else ".").free
    if needed > free:
        raise UserError(f"not enough free disk for {job.output}: about {_size(needed)} needed, "
                        f"{_size(free)} free; free some space or write elsewhere")


def _measure_rate(renderer, plan: Plan, workers: int) -> float:
    """MPix/s of the network here: one 256² window timed after a warm-up, times the workers."""
    from .plan import Window

    c = plan.canvas
    win = Window(0, 0, max(1, min(256, c.width)), max(1, min(256, c.height)))
    renderer.render_window(win)
    t = time.perf_counter()
    renderer.render_window(win)
    one = win.pixels / max(time.perf_counter() - t, 1e-6) / 1e6
    # workers share the cores with the encoder: count them at 80%
    return one * (1 + 0.8 * (workers - 1))


def cmd_plan(args: argparse.Namespace) -> int:
    from .render import pick_device, renderer_for, strip_workers

    job = resolve(args)
    device = pick_device(job.config.render.device)
    workers = strip_workers(device, job.config.render.workers)
    renderer, plan = renderer_for(job.config, device)
    d = describe(job, plan, device.type, _measure_rate(renderer, plan, workers))
    print(json.dumps(d, indent=2) if args.json else format_plan(d))
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .render import StripStream, pick_device, renderer_for, strip_workers
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
    needed = info["output"]["estimated_bytes"]
    if job.fmt.name == "tiff":
        needed = needed * 5 // 4  # lower pyramid levels spool beside the output until they are appended
    _check_disk(job, needed)

    cfg = job.config
    c = plan.canvas
    workers = strip_workers(device, cfg.render.workers)
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
                    poll=poll, cancel=stream.cancel, config=cfg)
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


def cmd_sheet(args: argparse.Namespace) -> int:
    from .render import pick_device, strip_workers
    from .sheet import compose_sheet, parse_seeds, render_cells, sheet_size
    from .sink import OutputTarget, write_image

    seeds = parse_seeds(args.seeds)
    extra = {"render.device": args.device} if args.device else {}
    cfg = load_config(args.config, args.overrides, extra)
    out = Path(args.output)
    fmt = format_for(out)
    if fmt.name in ("dz", "szi"):
        raise UserError("a contact sheet is one picture; write .png, .jpg, .webp or .tif")
    if args.cell > 4096:
        raise UserError(f"--cell {args.cell} is too large for a contact sheet; use at most 4096")
    check_canvas(fmt, *sheet_size(cfg, len(seeds), args.cell, args.columns), 8)
    device = pick_device(cfg.render.device)
    target = OutputTarget(out, fmt)
    try:
        target.probe()
    except OSError as exc:
        raise UserError(str(exc)) from None
    if device.type == "cpu":
        import torch

        torch.set_num_threads(strip_workers(device, cfg.render.workers))  # one batched pass: let torch thread it
    t0 = time.perf_counter()
    cells = render_cells(cfg, seeds, args.cell, device)
    image = compose_sheet(cells, seeds, args.columns)
    target.prepare()
    try:
        write_image(image, target.temp, fmt, dataclasses.replace(cfg.output, depth=8))
        target.commit()
    except BaseException:
        target.cleanup()
        raise
    if not args.quiet:
        print(f"wrote {out} ({len(seeds)} seeds, {image.width}x{image.height}, "
              f"{_duration(time.perf_counter() - t0)})", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- pyramid and serve


def _rehelp(p: argparse.ArgumentParser, dest: str, text: str) -> None:
    """Give a shared option (from _add_common) the meaning it has in this subcommand."""
    for action in p._actions:
        if action.dest == dest:
            action.help = text


def _add_pyramid_parsers(sub) -> None:
    from .pyramid_plan import LAYOUTS, TILE_FORMATS

    pyr = sub.add_parser("pyramid", help="render a deep-zoom pyramid, every level straight from the network",
                         description="Render every tile of every level of a DeepZoom, IIIF 3 (level 0), Zoomify "
                                     "or Google pyramid straight from the network, with a viewer page "
                                     "(index.html). Tiles are written atomically; running the same command "
                                     "again after an interruption skips the finished tiles.")
    _add_common(pyr)
    _rehelp(pyr, "output", "the pyramid: DIR/NAME.dzi for --layout dz, a folder DIR/NAME for the others "
                           "(default: cppn-SEED-WxH)")
    _rehelp(pyr, "tile", "pyramid tile size (default: 254 for dz, 256 for the others)")
    pyr.add_argument("--layout", choices=LAYOUTS, default="dz", help="pyramid layout (default dz)")
    pyr.add_argument("--overlap", type=int, metavar="PX", help="dz tile overlap in pixels (default 1)")
    pyr.add_argument("--format", choices=TILE_FORMATS, default="jpeg", help="tile format (default jpeg)")
    pyr.add_argument("--quality", type=int, metavar="Q", help="JPEG / WebP quality, 1-100 (default: the config's, 90)")
    pyr.add_argument("--supersample", type=_positive_int, default=2, metavar="K",
                     help="K×K samples per pixel, box-filtered, on the levels below the base (default 2)")
    pyr.add_argument("--base-url", metavar="URL",
                     help="iiif3: the URL the pyramid folder is published at, info.json's id "
                          "(default http://localhost:8000/NAME)")
    pyr.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    srv = sub.add_parser("serve", help="serve a viewer that zooms on forever, tiles rendered on demand",
                         description="Serve a viewer page at /, a DeepZoom description at /image.dzi and tiles at "
                                     "/image_files/LEVEL/COL_ROW.jpeg, rendered on demand (batched on the "
                                     "device, cached), with levels past the base size down to float64's limit.")
    _add_common(srv)
    _rehelp(srv, "output", argparse.SUPPRESS)
    _rehelp(srv, "width", "base canvas width in pixels: the size at which the picture is the config's view")
    _rehelp(srv, "tile", "tile size served (default 254, with 1 px overlap)")
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    srv.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    srv.add_argument("--extra-levels", type=int, metavar="N",
                     help="levels past the base size (default: as deep as float64 resolves)")
    srv.add_argument("--supersample", type=_positive_int, default=2, metavar="K",
                     help="K×K samples per pixel on the levels below the base (default 2)")
    srv.add_argument("--quality", type=int, metavar="Q", help="JPEG quality, 1-100 (default: the config's, 90)")
    srv.add_argument("--cache-mb", type=_positive_int, default=256, metavar="MB",
                     help="memory for encoded tiles (default 256)")
    srv.add_argument("--cors", action="store_true", help="send Access-Control-Allow-Origin: * (for pages elsewhere)")


def _pyramid_config(args: argparse.Namespace) -> Config:
    """The config of ``pyramid`` and ``serve``: resolve() without an output file; their --tile is the pyramid's."""
    job = resolve(argparse.Namespace(**{**vars(args), "tile": None, "output": None}))
    if job.config.output.depth != 8:
        raise UserError("pyramid tiles are 8-bit; leave out --depth 16 (or output.depth)")
    return job.config


def cmd_pyramid(args: argparse.Namespace) -> int:
    from .pyramid import command

    return command(args, _pyramid_config(args))


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import command

    if args.output is not None:
        raise UserError("serve writes no file; leave out -o (use bigcppn pyramid to write a pyramid)")
    return command(args, _pyramid_config(args))


class Terminated(KeyboardInterrupt):
    """SIGTERM (kill, timeout, a closed terminal): cleaned up like Ctrl-C."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = getattr(args, "verbose", False)
    try:
        return {"render": cmd_render, "plan": cmd_plan, "sheet": cmd_sheet,
                "pyramid": cmd_pyramid, "serve": cmd_serve}[args.command](args)
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
    except Terminated:
        print("bigcppn: terminated; no file was written", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("bigcppn: interrupted; no file was written", file=sys.stderr)
        return 130
