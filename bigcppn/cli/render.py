"""``bigcppn render``: one picture to a file, with a progress bar."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import api
from ..config import INTENTS
from ..estimate import human_duration
from ..job import default_name
from .common import (LazyBar, Terminated, add_config_options, add_executor_options, add_sizing_options,
                     config_from, executor_kwargs, positive_int)

HELP = "render a picture to a file"
DESCRIPTION = "Render the config's CPPN to OUT, streaming strips into libvips."


def add_render_options(p: argparse.ArgumentParser) -> None:
    """The options ``render`` and ``plan`` share: config, size, depth, tile."""
    add_config_options(p, "output file; the extension picks the format (default: cppn-SEED-WxH.tif)")
    add_sizing_options(p)
    p.add_argument("--depth", type=int, choices=(8, 16), help="bits per sample: 16 for TIFF and PNG (default 8)")
    p.add_argument("--tile", type=positive_int, metavar="T",
                   help="render tile size, also the strip height (default 256)")
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
    pr.add_argument("--crop-marks", action="store_true",
                    help="PDF: crop marks on the trim lines, outside the bleed; the page grows by half an inch a "
                         "side (output.crop_marks=true)")


def add_parser(sub) -> None:
    p = sub.add_parser("render", help=HELP, description=DESCRIPTION)
    add_render_options(p)
    add_executor_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    name = Path(args.output).name if args.output else default_name(cfg)
    bar = LazyBar(disable=args.quiet, desc=name, unit="px", unit_scale=True, unit_divisor=1000)
    result = None
    try:
        try:
            result = api.render_file(cfg, args.output, progress=bar.progress, **executor_kwargs(args))
        finally:
            bar.close()
        if not args.quiet:
            print(f"wrote {result.path} ({result.width}x{result.height}, {result.mpix_per_s:.2f} MPix/s, "
                  f"{human_duration(result.seconds)})", file=sys.stderr)
    except KeyboardInterrupt as exc:
        if isinstance(exc, api.CompletedInterrupt):
            result, exc = exc.result, exc.__context__ or exc
        if result is None:
            raise  # stopped before the file was complete: nothing was written
        # Ctrl-C (or SIGTERM) in the last moments, after the file was complete: it stays
        print(f"bigcppn: interrupted after {result.path} was complete; it is kept", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    return 0
