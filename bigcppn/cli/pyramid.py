"""``bigcppn pyramid``: a deep-zoom pyramid, every level straight from the network."""

from __future__ import annotations

import argparse
import sys

from .. import api
from ..errors import RenderError
from ..pyramid_plan import LAYOUTS, TILE_FORMATS
from .common import (LazyBar, Terminated, add_config_options, add_executor_options, add_sizing_options, config_from,
                     executor_kwargs, positive_int)


def add_parser(sub) -> None:
    p = sub.add_parser("pyramid", help="render a deep-zoom pyramid, every level straight from the network",
                       description="Render every tile of every level of a DeepZoom, IIIF 3 (level 0), Zoomify "
                                   "or Google pyramid straight from the network, with a viewer page "
                                   "(index.html). Tiles are written atomically; running the same command "
                                   "again after an interruption skips the finished tiles.")
    add_config_options(p, "the pyramid: DIR/NAME.dzi for --layout dz, a folder DIR/NAME for the others "
                          "(default: cppn-SEED-WxH)")
    add_sizing_options(p, paper=False)
    p.add_argument("--depth", type=int, choices=(8, 16), help=argparse.SUPPRESS)  # refused with a clear line
    p.add_argument("--tile", dest="pyramid_tile", type=positive_int, metavar="T",
                   help="pyramid tile size (default: 254 for dz, 256 for the others)")
    p.add_argument("--layout", choices=LAYOUTS, default="dz", help="pyramid layout (default dz)")
    p.add_argument("--overlap", type=int, metavar="PX", help="dz tile overlap in pixels (default 1)")
    p.add_argument("--format", choices=TILE_FORMATS, default="jpeg", help="tile format (default jpeg)")
    p.add_argument("--quality", type=int, metavar="Q", help="JPEG / WebP quality, 1-100 (default: the config's, 90)")
    p.add_argument("--supersample", type=positive_int, default=2, metavar="K",
                   help="K×K samples per pixel, box-filtered, on the levels below the base (default 2)")
    p.add_argument("--base-url", metavar="URL",
                   help="iiif3: the URL the pyramid folder is published at, info.json's id "
                        "(default http://localhost:8000/NAME)")
    p.add_argument("--max-size", type=positive_int, metavar="PX",
                   help="iiif3: the largest width and height served (maxWidth/maxHeight); full/max/0/default.jpg "
                        "is the whole image shrunk to fit it (default 2048, or the tile size when larger)")
    add_executor_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Validate everything, then render; 0, or 130 on Ctrl-C, 1 on a failure (the finished tiles are kept)."""
    cfg = config_from(args)
    bar = LazyBar(disable=args.quiet, desc=str(args.output or "pyramid"), unit="tile")
    done = {"n": 0}

    def on_start(pending: int, total: int) -> None:
        if pending < total and not args.quiet:
            bar.write(f"resuming: {total - pending} of {total} tiles are already written")
        if pending:
            bar.progress(0, pending)

    def on_tile(_t) -> None:
        done["n"] += 1
        bar.progress(done["n"], bar.bar.total if bar.bar is not None else done["n"])

    try:
        r = api.render_pyramid(cfg, args.output, layout=args.layout, tile=args.pyramid_tile, overlap=args.overlap,
                               format=args.format, quality=args.quality, supersample=args.supersample,
                               base_url=args.base_url, max_size=args.max_size, on_start=on_start, on_tile=on_tile,
                               **executor_kwargs(args))
    except KeyboardInterrupt as exc:
        bar.close()
        where = api.pyramid_place(cfg, args.output, args.layout).root
        what, status = ("terminated", 143) if isinstance(exc, Terminated) else ("interrupted", 130)
        print(f"bigcppn: {what}; {done['n']} new tiles are kept in {where}; run the same command "
              "again to resume", file=sys.stderr)
        return status
    except RenderError as exc:
        bar.close()
        if args.verbose:
            raise
        print(f"bigcppn: {exc}", file=sys.stderr)
        return 1
    bar.close()
    if args.quiet:
        return 0
    if r.written == 0:
        print(f"{r.path} is complete: all {r.tiles} tiles were already written; wrote {r.page}", file=sys.stderr)
    else:
        skipped = f", {r.skipped} already there" if r.skipped else ""
        print(f"wrote {r.path} ({r.width}x{r.height}, {r.levels} levels, {r.written} tiles{skipped}, "
              f"{r.tiles_per_s:.0f} tiles/s, {r.mpix_per_s:.2f} MPix/s) and {r.page}", file=sys.stderr)
    return 0
