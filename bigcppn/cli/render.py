"""``bigcppn render``: one picture to a file, with a progress bar."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import api
from ..estimate import human_duration
from ..job import default_name
from .common import (LazyBar, add_config_options, add_executor_options, add_sizing_options, config_from,
                     executor_kwargs, positive_int)

HELP = "render a picture to a file"
DESCRIPTION = "Render the config's CPPN to OUT, streaming strips into libvips."


def add_render_options(p: argparse.ArgumentParser) -> None:
    """The options ``render`` and ``plan`` share: config, size, depth, tile."""
    add_config_options(p, "output file; the extension picks the format (default: cppn-SEED-WxH.tif)")
    add_sizing_options(p)
    p.add_argument("--depth", type=int, choices=(8, 16), help="bits per sample: 16 for TIFF and PNG (default 8)")
    p.add_argument("--tile", type=positive_int, metavar="T",
                   help="render tile size, also the strip height (default 256)")


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
    try:
        result = api.render_file(cfg, args.output, progress=bar.progress, **executor_kwargs(args))
    finally:
        bar.close()
    if not args.quiet:
        print(f"wrote {result.path} ({result.width}x{result.height}, {result.mpix_per_s:.2f} MPix/s, "
              f"{human_duration(result.seconds)})", file=sys.stderr)
    return 0
