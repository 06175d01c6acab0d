"""``bigcppn plan``: what a render would do, and how long it would take, without rendering."""

from __future__ import annotations

import argparse
import json

from .. import api
from .animate import add_clip_options, timeline_from, wants_clip
from .common import config_from
from .render import add_render_options


def add_parser(sub) -> None:
    p = sub.add_parser("plan", help="show what a render would do and take, without rendering",
                       description="Show the canvas, tiles, strips, batches, estimated memory, output size and "
                                   "time of a render, without rendering. The time comes from the network and "
                                   "the output's writer timed on this machine (about a second), the size from "
                                   "sample tiles of every level rendered and encoded as the output encodes them "
                                   "(about a second more). For a pyramid: bigcppn pyramid --dry-run. For a "
                                   "clip (-o clip.mp4 with animate's options: --seconds, --fps, motions, --preset; "
                                   "--size 1080p): its frames, size and time, from a few frames rendered and "
                                   "encoded, as animate --dry-run prints them.")
    add_render_options(p)
    add_clip_options(p, sizes=False)
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="ray: also show how the file is cut into bands for the actors (Ray is not started)")
    p.add_argument("--workers", type=int, metavar="N", help="with --executor ray: the actors to plan for (default 1)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if wants_clip(args):
        return _clip(args)
    info = api.plan(config_from(args), args.output, compression=args.out_compression, quality=args.out_quality,
                    executor=args.executor, workers=args.workers)
    print(json.dumps(info.as_dict(), indent=2) if args.json else info)
    return 0


# plan's still options that mean nothing to a clip (dest, flag)
STILL_ONLY = (("dpi", "--dpi"), ("landscape", "--landscape"), ("bleed", "--bleed"), ("depth", "--depth"),
              ("tile", "--tile"), ("out_compression", "--compression"), ("cmyk", "--cmyk"), ("flat", "--flat"),
              ("pdfx", "--pdfx"), ("crop_marks", "--crop-marks"), ("intent", "--intent"), ("frame", "--frame"))


def _clip(args: argparse.Namespace) -> int:
    from ..animate.api import plan_video
    from ..errors import UserError

    for dest, flag in STILL_ONLY:
        if getattr(args, dest, None) not in (None, False):
            raise UserError(f"{flag} is for stills; a clip's plan takes animate's options (--seconds, --fps, "
                            "motions, --size 1080p, --quality, --preset)")
    if args.executor != "local":
        raise UserError("a clip's plan is for this machine; leave --executor out")
    plan = plan_video(timeline_from(args), args.output, quality=args.out_quality, preset=args.preset,
                      palette=args.palette)
    print(json.dumps(plan.as_dict(), indent=2) if args.json else plan)
    return 0
