"""``bigcppn explore``: a local page to find a picture, then print it or make a pyramid of it."""

from __future__ import annotations

import argparse
import sys

from .common import add_config_options


def add_parser(sub) -> None:
    p = sub.add_parser("explore", help="a local web page to find a picture: seed grid, live settings, print",
                       description="Serve a page at http://HOST:PORT/ with a grid of seeds, a live zoomable view "
                                   "of the chosen one, a control for every network and view setting, the "
                                   "config as TOML (downloadable, in the URL), history and favourites, and "
                                   "panels that start a print or a pyramid job. Jobs write only under --out. "
                                   "The page needs no internet.")
    add_config_options(p, argparse.SUPPRESS)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--out", default="explore-out", metavar="DIR",
                   help="the folder jobs write into, and the only one files are sent from (default ./explore-out)")
    p.add_argument("--open", dest="open_browser", action="store_true", help="open the page in a browser")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..studio.run import explore
    from ..errors import UserError
    from ..server.app import exposure_note
    from .common import config_from

    if args.output is not None:
        raise UserError("explore writes its jobs under --out DIR; leave out -o")
    cfg = config_from(args)

    def ready(server) -> None:
        print(f"explore seed {cfg.seed} at {server.url} (jobs write under {server.out}); Ctrl-C stops", flush=True)
        note = exposure_note(server)
        if note:
            print(note, file=sys.stderr, flush=True)

    r = explore(cfg, host=args.host, port=args.port, out=args.out, open_browser=args.open_browser,
                    verbose=args.verbose, on_ready=ready)
    print(f"stopped after {r.requests} requests", file=sys.stderr)
    return r.status
