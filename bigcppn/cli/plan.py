"""``bigcppn plan``: what a render would do, without rendering."""

from __future__ import annotations

import argparse
import json

from .. import api
from .common import config_from
from .render import add_render_options


def add_parser(sub) -> None:
    p = sub.add_parser("plan", help="show what a render would do, without rendering",
                       description="Show the canvas, tiles, strips, batches, estimated memory, "
                                   "output size and time of a render, without rendering.")
    add_render_options(p)
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    info = api.plan(config_from(args), args.output)
    print(json.dumps(info.as_dict(), indent=2) if args.json else info)
    return 0
