"""``bigcppn plan``: what a render would do, and how long it would take, without rendering."""

from __future__ import annotations

import argparse
import json

from .. import api
from .common import config_from
from .render import add_render_options


def add_parser(sub) -> None:
    p = sub.add_parser("plan", help="show what a render would do and take, without rendering",
                       description="Show the canvas, tiles, strips, batches, estimated memory, output size and "
                                   "time of a render, without rendering. The time comes from the network and "
                                   "the output's writer timed on this machine (about a second), the size from "
                                   "sample tiles of every level rendered and encoded as the output encodes them "
                                   "(about a second more). For a pyramid: bigcppn pyramid --dry-run.")
    add_render_options(p)
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="ray: also show how the file is cut into bands for the actors (Ray is not started)")
    p.add_argument("--workers", type=int, metavar="N", help="with --executor ray: the actors to plan for (default 1)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    info = api.plan(config_from(args), args.output, compression=args.out_compression, quality=args.out_quality,
                    executor=args.executor, workers=args.workers)
    print(json.dumps(info.as_dict(), indent=2) if args.json else info)
    return 0
