"""The command line: argparse on top of the Python API (:mod:`bigcppn.api`), one module per subcommand.

Everything that can be wrong with the input is checked before rendering starts
and reported as one line with exit status 2; a failure while rendering exits
with status 1, Ctrl-C with 130 and SIGTERM with 143, and none of them leaves a
file at the output path. Output cut short by its reader (``bigcppn plan | head -1``)
ends quietly with 141, as SIGPIPE ends other tools.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from .._version import __version__
from . import animate, explore, plan, pyramid, render, serve, sheet
from .common import RECEIVED, Parser, Terminated, run_reporting, stopped_by

__all__ = ["main", "entry", "build_parser", "BROKEN_PIPE"]

DESCRIPTION = """\
Render CPPN art at any size, from a thumbnail to a gigapixel poster, with
memory that does not grow with the canvas. The output format follows the
extension: .tif (tiled pyramidal TIFF), .png, .jpg, .webp, .pdf (a print
page), .dzi (DeepZoom folder) or .szi (DeepZoom zip)."""

SUBCOMMANDS = (render, plan, sheet, pyramid, serve, animate, explore)


class TopParser(Parser):
    """The ``bigcppn`` parser: an unknown flag is reported by its subcommand, which points to its own --help."""

    subcommands: dict[str, argparse.ArgumentParser] = {}

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        words = list(sys.argv[1:] if args is None else args)
        if words and not words[0].startswith("-") and words[0] not in self.subcommands:
            import difflib

            near = difflib.get_close_matches(words[0], list(self.subcommands), n=1, cutoff=0.6)
            hint = f" (did you mean '{near[0]}'?)" if near else f"; choose from {', '.join(self.subcommands)}"
            self.error(f"unknown command '{words[0]}'{hint}")
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            where = self.subcommands.get(getattr(ns, "command", None), self)
            where.error(f"unrecognized arguments: {' '.join(extras)}")
        return ns


def build_parser() -> argparse.ArgumentParser:
    parser = TopParser(prog="bigcppn", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"bigcppn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    parser.subcommands = dict(sub.choices)
    return parser


def _in_foreign_callback(frame) -> bool:
    """Whether ``frame`` runs inside a callback that libvips made into Python (pyvips' log handler, say)
    with no bigcppn code between: an exception raised there is printed as "Exception ignored" and lost."""
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name == "bigcppn" or name.startswith("bigcppn."):
            return False  # bigcppn's own callbacks keep the exception and end the stream
        code = frame.f_code.co_name
        if name.startswith("pyvips") and (code.endswith("_callback") or code.startswith("_marshal")):
            return True
        frame = frame.f_back
    return False


def _on_signal(signum, frame) -> None:
    """SIGTERM (Terminated) and SIGINT (KeyboardInterrupt), raised where Python code can catch them: a
    signal that lands inside a foreign callback is sent again a moment later, once out of it."""
    RECEIVED.append(signum)
    if _in_foreign_callback(frame):
        again = threading.Timer(0.05, os.kill, (os.getpid(), signum))
        again.daemon = True
        again.start()
        return
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def main(argv: list[str] | None = None) -> int:
    RECEIVED.clear()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
    args = build_parser().parse_args(argv)
    return run_reporting(args.run, args)


# The exit status when the reader of stdout has gone (``bigcppn plan | head -1``): 128 + SIGPIPE (13),
# what the shell reports for a tool that SIGPIPE stopped, such as ``yes | head -1``. Python ignores
# SIGPIPE, so here the write fails instead; the status tells a script (``set -o pipefail``) the
# same thing: the output was cut short by its reader, not that the command failed.
BROKEN_PIPE = 141


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null, so that Python's own flush at exit finds no reader gone and says nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no stdout, or not a file
        pass


def entry() -> None:
    """The ``bigcppn`` program: :func:`main`, then exit with its status.

    When the reader of stdout goes away early, it stops quietly with :data:`BROKEN_PIPE`
    (the recipe in Python's documentation of SIGPIPE), not with a BrokenPipeError traceback.
    """
    try:
        try:
            status = main()
        except SystemExit as exc:  # argparse's --help, --version and usage errors
            status = exc.code
        except KeyboardInterrupt as exc:  # before a subcommand ran (parsing the arguments): one line
            what, status = stopped_by(exc)
            print(f"bigcppn: {what}; nothing was done", file=sys.stderr)
        # Flushed here, so that a reader that has gone is noticed here rather than at exit.
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_to_devnull()
        sys.exit(BROKEN_PIPE)
    # The work is done and reported: a late Ctrl-C or SIGTERM must not break the exit with a traceback
    # (or an "Exception ignored ... Terminated" from the interpreter's shutdown).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The interpreter's last garbage collection walks every object torch and libvips created on import:
    # 0.3 s of a 0.45 s stop (serve after Ctrl-C, and every command's end). Frozen objects are skipped;
    # finalizers registered to run at exit (weakref.finalize, atexit: Ray's shutdown, temp folders) still run.
    import gc

    gc.freeze()
    sys.exit(status)
