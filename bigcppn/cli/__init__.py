"""The command line: argparse on top of the Python API (:mod:`bigcppn.api`), one module per subcommand.

Everything that can be wrong with the input is checked before rendering starts
and reported as one line with exit status 2; a failure while rendering exits
with status 1, Ctrl-C with 130 and SIGTERM with 143, and none of them leaves a
file at the output path.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .. import __version__
from . import plan, pyramid, render, serve, sheet
from .common import Parser, Terminated, run_reporting

__all__ = ["main", "entry", "build_parser"]

DESCRIPTION = """\
Render CPPN art at any size, from a thumbnail to a gigapixel poster, with
memory that does not grow with the canvas. The output format follows the
extension: .tif (tiled pyramidal TIFF), .png, .jpg, .webp, .dzi (DeepZoom
folder) or .szi (DeepZoom zip)."""

SUBCOMMANDS = (render, plan, sheet, pyramid, serve)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="bigcppn", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"bigcppn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def _terminate(signum, frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    args = build_parser().parse_args(argv)
    return run_reporting(args.run, args)


def entry() -> None:
    """The ``bigcppn`` program: :func:`main`, then exit with its status."""
    status = main()
    # The work is done and reported: a late Ctrl-C must not break the exit with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(status)
