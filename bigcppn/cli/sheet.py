"""``bigcppn sheet``: a contact sheet of seeds, to pick one before a long render."""

from __future__ import annotations

import argparse
import sys

from .. import api
from ..errors import UserError
from ..estimate.plan import human_duration
from ..job import parse_seeds, resolve_config
from ..core.units import parse_aspect
from .common import LazyBar, add_overwrite_option, add_storage_options, positive_int, storage_kwargs


def add_parser(sub) -> None:
    p = sub.add_parser("sheet", help="a contact sheet of seeds, to pick one before a long render",
                       description="Render one thumbnail per seed in one batched pass, labelled with its "
                                   "seed, into a grid. The thumbnails frame what a render of the config shows "
                                   "(its canvas), or with --aspect what a canvas of that shape shows.")
    p.add_argument("config", nargs="?", metavar="CONFIG", help="a TOML config (default: the article's network)")
    p.add_argument("-o", "--output", metavar="OUT", default="sheet.png",
                   help="output image: .png, .jpg, .webp or .tif (default sheet.png)")
    p.add_argument("--seeds", default="0-15", metavar="SEEDS", help="e.g. 0-15 or 1,5,9 (default 0-15)")
    p.add_argument("--cell", type=positive_int, default=256, metavar="PX",
                   help="thumbnail size, longer side (default 256)")
    p.add_argument("--columns", type=positive_int, metavar="N", help="thumbnails per row (default: square)")
    p.add_argument("--aspect", metavar="SHAPE",
                   help="the poster's shape, to frame the thumbnails as it will: width:height (3:2), a number "
                        "(1.5) or a paper size (A2, 50x70cm); default: the config's canvas")
    p.add_argument("--landscape", action="store_true", help="turn --aspect so its long side is horizontal")
    p.add_argument("--quality", type=int, metavar="Q",
                   help="JPEG or WebP quality of a .jpg/.webp sheet, 1-100 (default: the config's, 90)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where to evaluate (default auto)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (repeatable)")
    add_overwrite_option(p)
    add_storage_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary line")
    p.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    seeds = parse_seeds(args.seeds)
    if args.landscape and args.aspect is None:
        raise UserError("--landscape turns --aspect; give --aspect too (e.g. --aspect A2 --landscape)")
    aspect = parse_aspect(args.aspect, args.landscape) if args.aspect is not None else None
    cfg = resolve_config(args.config, overrides=args.overrides, device=args.device)
    bar = LazyBar(disable=args.quiet, desc=args.output, unit="px", unit_scale=True, unit_divisor=1000)
    try:
        result = api.render_sheet(cfg, args.output, seeds, cell=args.cell, columns=args.columns, aspect=aspect,
                                  overwrite=args.overwrite, quality=args.quality, progress=bar.progress,
                                  **storage_kwargs(args))
    finally:
        bar.close()
    if not args.quiet:
        print(f"wrote {result.path} ({len(seeds)} seeds, {result.width}x{result.height}, "
              f"{human_duration(result.seconds)})", file=sys.stderr)
    return 0
