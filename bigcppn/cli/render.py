"""``bigcppn render``: one picture (or one per seed) to a file, with a progress bar."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import api
from ..config import INTENTS
from ..errors import UserError
from ..estimate.plan import human_duration
from ..config import COMPRESSIONS
from ..job import default_name, parse_seeds
from .common import (LazyBar, stopped_by, add_config_options, add_executor_options, add_overwrite_option,
                     add_sizing_options, add_storage_options, config_from, executor_kwargs, positive_int,
                     storage_kwargs)

HELP = "render a picture to a file"
DESCRIPTION = ("Render the config's CPPN to OUT, streaming strips into the format's writer "
               "(never the whole image in memory).")


def add_render_options(p: argparse.ArgumentParser) -> None:
    """The options ``render`` and ``plan`` share: config, size, depth, tile, compression, quality."""
    add_config_options(p, "output file; the extension picks the format; {seed} in it is replaced by the seed "
                          "(default: cppn-SEED-WxH.tif)")
    add_sizing_options(p)
    p.add_argument("--frame", type=int, metavar="N",
                   help="with --from CLIP: the still of frame N of a clip bigcppn animate wrote (default 0)")
    p.add_argument("--depth", type=int, choices=(8, 16), help="bits per sample: 16 for TIFF and PNG (default 8)")
    p.add_argument("--tile", type=positive_int, metavar="T",
                   help="render tile size, also the strip height (default 256)")
    out = p.add_argument_group("output settings (the config's output.* keys)")
    out.add_argument("--compression", dest="out_compression", choices=COMPRESSIONS,
                     help="TIFF tile compression (default deflate); TIFF only")
    out.add_argument("--quality", dest="out_quality", type=int, metavar="Q",
                     help="quality 1-100 of lossy outputs: .jpg, .webp, .dzi/.szi tiles, --compression jpeg "
                          "(default 90)")
    pr = p.add_argument_group("print files")
    pr.add_argument("--flat", action="store_true",
                    help="TIFF: one tiled page, no reduced levels, for RIPs and layout programs that refuse "
                         "multi-page TIFFs (output.pyramid=false)")
    pr.add_argument("--cmyk", nargs="?", const="cmyk", metavar="PROFILE.icc",
                    help="TIFF, JPEG, PDF: CMYK through this output ICC profile, embedded (default: libvips' "
                         "built-in CMYK profile); give it after CONFIG (output.cmyk)")
    pr.add_argument("--intent", choices=INTENTS,
                    help="rendering intent of the CMYK conversion (default relative, with black point "
                         "compensation; output.intent)")
    pr.add_argument("--pdfx", action="store_true",
                    help="PDF: write PDF/X-4 (a printer output intent, dates, version keys; the default with "
                         "--cmyk; output.pdfx=x4, or off)")
    pr.add_argument("--crop-marks", action="store_true",
                    help="PDF: crop marks on the trim lines, outside the bleed; the page grows by half an inch a "
                         "side (output.crop_marks=true)")


def add_parser(sub) -> None:
    p = sub.add_parser("render", help=HELP, description=DESCRIPTION)
    add_render_options(p)
    p.add_argument("--seeds", metavar="SEEDS",
                   help="render one file per seed, e.g. 0-7 or 1,5,9, named by {seed} in -o (instead of --seed)")
    add_overwrite_option(p, "OUT when it exists (the old one stays until the new one is complete)")
    add_executor_options(p)
    add_storage_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    options = dict(compression=args.out_compression, quality=args.out_quality, overwrite=args.overwrite)
    if args.seeds is not None:
        if args.seed is not None:
            raise UserError("give either --seed or --seeds, not both")
        seeds = parse_seeds(args.seeds)
        name = Path(args.output).name if args.output else f"{len(seeds)} seeds"
        bar = LazyBar(disable=args.quiet, desc=name, unit="px", unit_scale=True, unit_divisor=1000)
        kept: list[Path] = []

        def done(r: api.RenderResult) -> None:
            kept.append(r.path)
            _wrote(r, bar, args.quiet)

        try:
            try:
                api.render_series(cfg, args.output, seeds, progress=bar.progress, on_done=done, **options,
                                  **executor_kwargs(args), **storage_kwargs(args))
            finally:
                bar.close()
        except KeyboardInterrupt as exc:
            return _series_stopped(exc, kept)
        return 0
    name = Path(args.output).name if args.output else default_name(cfg)
    if not args.quiet:
        _warn_if_long(cfg, args)
    bar = LazyBar(disable=args.quiet, desc=name, unit="px", unit_scale=True, unit_divisor=1000)
    result = None
    try:
        try:
            result = api.render_file(cfg, args.output, progress=bar.progress, **options, **executor_kwargs(args),
                                     **storage_kwargs(args))
        finally:
            bar.close()
        _wrote(result, bar, args.quiet)
    except KeyboardInterrupt as exc:
        if isinstance(exc, api.CompletedInterrupt):
            result, exc = exc.result, exc.__context__ or exc
        if result is None:
            raise  # stopped before the file was complete: nothing was written
        # Ctrl-C (or SIGTERM) in the last moments, after the file was complete: it stays
        print(f"bigcppn: interrupted after {result.path} was complete; it is kept", file=sys.stderr)
        return stopped_by(exc)[1]
    return 0


def _series_stopped(exc: KeyboardInterrupt, kept: list[Path]) -> int:
    """A series stopped by Ctrl-C or SIGTERM: one line naming the files it kept (the one in progress is not)."""
    if isinstance(exc, api.CompletedInterrupt):
        kept, exc = [*kept, exc.result.path], exc.__context__ or exc
    if not kept:
        raise exc  # nothing was complete: "no file was written"
    what, status = stopped_by(exc)
    names = ", ".join(str(p) for p in kept[:5]) + (f" and {len(kept) - 5} more" if len(kept) > 5 else "")
    print(f"bigcppn: {what}; kept the {len(kept)} complete file{'s' if len(kept) > 1 else ''} written before: "
          f"{names}; the one in progress was not written", file=sys.stderr)
    return status


LONG_PIXELS = 16_000_000  # a canvas this large may take over a minute: plan it first (about a second)
LONG_SECONDS = 60


def _warn_if_long(cfg, args: argparse.Namespace) -> None:
    """The plan's one-line summary before a render estimated over a minute (a typo'd size shows here)."""
    if cfg.canvas.width * cfg.canvas.height < LONG_PIXELS:
        return
    info = api.plan(cfg, args.output, compression=args.out_compression, quality=args.out_quality,
                    executor=args.executor, workers=args.workers)
    if (info.estimated_seconds or 0) > LONG_SECONDS:
        print(f"bigcppn: {info.summary()}", file=sys.stderr, flush=True)


def _wrote(result: api.RenderResult, bar: LazyBar, quiet: bool) -> None:
    if not quiet:
        bar.write(f"wrote {result.path} ({result.width}x{result.height}, {result.mpix_per_s:.2f} MPix/s, "
                  f"{human_duration(result.seconds)})")
