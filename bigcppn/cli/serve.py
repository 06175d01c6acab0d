"""``bigcppn serve``: a live viewer that zooms on forever, tiles rendered on demand."""

from __future__ import annotations

import argparse
import sys

from ..errors import UserError
from .common import add_config_options, add_sizing_options, config_from, positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve a viewer that zooms on forever, tiles rendered on demand",
                       description="Serve a viewer page at /, a DeepZoom description at /image.dzi and tiles at "
                                   "/image_files/LEVEL/COL_ROW.jpeg, rendered on demand (batched on the "
                                   "device, cached), with levels past the base size down to float64's limit.")
    add_config_options(p, argparse.SUPPRESS)
    add_sizing_options(p, "base canvas width in pixels: the size at which the picture is the config's view",
                       paper=False)
    p.add_argument("--depth", type=int, choices=(8, 16), help=argparse.SUPPRESS)  # refused with a clear line
    p.add_argument("--tile", dest="serve_tile", type=positive_int, metavar="T",
                   help="tile size served (default 254, with 1 px overlap)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--extra-levels", type=int, metavar="N",
                   help="levels past the base size (default: as deep as float64 resolves)")
    p.add_argument("--supersample", type=positive_int, default=2, metavar="K",
                   help="K×K samples per pixel on the levels below the base (default 2)")
    p.add_argument("--quality", type=int, metavar="Q", help="JPEG quality, 1-100 (default: the config's, 90)")
    p.add_argument("--cache-mb", type=positive_int, default=256, metavar="MB",
                   help="memory for encoded tiles (default 256)")
    p.add_argument("--cors", action="store_true", help="send Access-Control-Allow-Origin: * (for pages elsewhere)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Bind, print the address, serve until Ctrl-C (exit 130) or SIGTERM (exit 143)."""
    from .. import api
    from ..server.app import exposure_note

    if args.output is not None:
        raise UserError("serve writes no file; leave out -o (use bigcppn pyramid to write a pyramid)")
    cfg = config_from(args)

    def ready(server) -> None:
        p = server.service.pyramid
        print(f"serving seed {cfg.seed} at {server.url} ({p.width}x{p.height} base, {p.extra} levels past it, "
              f"{p.virtual_width}x{p.virtual_height} in all); Ctrl-C stops", flush=True)
        note = exposure_note(server)
        if note:
            print(note, file=sys.stderr, flush=True)

    r = api.serve(cfg, host=args.host, port=args.port, tile=args.serve_tile, extra_levels=args.extra_levels,
                  supersample=args.supersample, quality=args.quality, cache_mb=args.cache_mb, cors=args.cors,
                  verbose=args.verbose, on_ready=ready)
    print(f"stopped after {r.requests} requests, {r.tiles_rendered} tiles rendered in {r.batches} batches",
          file=sys.stderr)
    return r.status
