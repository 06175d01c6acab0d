"""What every subcommand shares: the parser class, value types, the config and sizing options, exit codes."""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Callable

from ..config import Config
from ..errors import RenderError, UserError
from ..job import Sizing, parse_seeds, resolve_config

MAX_PRINT_DPI = 2400  # the finest a print user asks for (imagesetters: 2400-2540); above it, --force

__all__ = ["LazyBar", "Parser", "positive_int", "seed_value", "add_config_options", "add_sizing_options",
           "add_overwrite_option", "config_from", "add_executor_options", "executor_kwargs", "Terminated",
           "RECEIVED", "stopped_by",
           "add_storage_options", "storage_kwargs",
           "run_reporting"]


class Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (what was wrong, where to look) and exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {v}")
    return v


def seed_value(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if not 0 <= v < 2**63:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to 2**63-1, got {v}")
    return v


def add_config_options(p: argparse.ArgumentParser, output_help: str) -> None:
    """CONFIG, -o, --from, --seed, --device, --set, -v: how every rendering subcommand gets its config."""
    p.add_argument("config", nargs="?", metavar="CONFIG", help="a TOML config (default: the article's network)")
    p.add_argument("-o", "--output", metavar="OUT", help=output_help)
    p.add_argument("--from", dest="from_image", metavar="IMAGE",
                   help="start from the config embedded in an earlier bigcppn output (a .dzi: its sidecar)")
    p.add_argument("--seed", type=seed_value, metavar="N", help="the seed that draws the weights")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where to evaluate the network (default auto)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set network.hidden=[32,32] (repeatable)")
    p.add_argument("-v", "--verbose", action="store_true", help="show tracebacks and details")


def add_sizing_options(p: argparse.ArgumentParser, width_help: str = "canvas width in pixels",
                       paper: bool = True) -> None:
    """--width/--height, and (``paper``) the print size options."""
    p.add_argument("--width", type=positive_int, metavar="W", help=width_help)
    p.add_argument("--height", type=positive_int, metavar="H",
                   help="canvas height in pixels (with only one of --width/--height the config's aspect is kept)")
    if not paper:
        return
    pr = p.add_argument_group("print size (instead of --width/--height)")
    pr.add_argument("--size", metavar="PAPER",
                    help="A0..A6, letter, legal, tabloid, or WxHmm / WxHcm / WxHin (e.g. 50x70cm)")
    pr.add_argument("--dpi", type=float, metavar="N",
                    help="print resolution, written into TIFF, PNG and JPEG (default 300)")
    pr.add_argument("--landscape", action="store_true", help="turn the paper so its long side is horizontal")
    pr.add_argument("--bleed", metavar="LEN",
                    help="extend the picture past the trim edge on every side, e.g. 3mm or 0.125in")
    pr.add_argument("--force", action="store_true",
                    help=f"accept --size with a DPI over {MAX_PRINT_DPI} (more than presses and printers resolve: "
                         "usually a typo that makes a render of hours)")


def add_overwrite_option(p: argparse.ArgumentParser, what: str = "OUT when it exists") -> None:
    p.add_argument("--overwrite", action="store_true",
                   help=f"replace {what}; without it an existing output stops the command before it renders")


def add_storage_options(p: argparse.ArgumentParser) -> None:
    """--endpoint-url, --cache-control: how an s3:// output is reached and served."""
    g = p.add_argument_group("object storage (-o s3://BUCKET/PREFIX/...; pip install 'bigcppn[s3]')")
    g.add_argument("--endpoint-url", metavar="URL",
                   help="an S3-compatible service's endpoint (default: AWS_ENDPOINT_URL, else AWS); credentials "
                        "come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with boto3")
    g.add_argument("--cache-control", metavar="VALUE",
                   help="the Cache-Control of every object written, e.g. 'public, max-age=31536000'")


def storage_kwargs(args: argparse.Namespace) -> dict:
    """The API's storage keywords from the options of :func:`add_storage_options`."""
    return {"endpoint_url": args.endpoint_url, "cache_control": args.cache_control}


def add_executor_options(p: argparse.ArgumentParser, pyramid: bool = False) -> None:
    """--executor, --ray-address, --workers: where the work runs (this machine, or a Ray cluster)."""
    g = p.add_argument_group("where to run (a Ray cluster needs pip install \"bigcppn[ray]\")")
    where = ("the pyramid's folder must be on a filesystem every node shares" if pyramid else
             "for a tiled TIFF or a .dzi/.szi, which this machine writes from the tiles the actors encode")
    g.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: threads on this machine (default); ray: actors on a Ray cluster, one per GPU "
                        f"or per CPU-only node; {where}")
    g.add_argument("--ray-address", metavar="ADDRESS",
                   help="the Ray cluster to join: HOST:PORT, ray://HOST:PORT or auto (default: start or join "
                        "a local Ray)")
    g.add_argument("--workers", type=positive_int, metavar="N",
                   help="ray: the number of actors (default one per GPU, or one per CPU-only node); "
                        "local: render threads (default: one per core, two on a GPU)")


def executor_kwargs(args: argparse.Namespace) -> dict:
    """The API's executor keywords from the options of :func:`add_executor_options`."""
    return {"executor": args.executor, "ray_address": args.ray_address, "workers": args.workers}


def is_url(text) -> bool:
    from ..storage.base import is_url as url

    return url(text)


def config_from(args: argparse.Namespace) -> Config:
    """The resolved config of a subcommand's arguments (options a subcommand lacks count as not given)."""
    get = lambda name, default=None: getattr(args, name, default)  # noqa: E731
    cmyk = get("cmyk")
    if cmyk and get("config") is None and cmyk.lower().endswith(".toml"):  # --cmyk took the config as its profile
        raise UserError(f"--cmyk took '{cmyk}' as its ICC profile; put the config first: "
                        f"bigcppn {get('command', 'render')} {cmyk} --cmyk [PROFILE.icc] ...")
    sizing = Sizing(width=get("width"), height=get("height"), size=get("size"), dpi=get("dpi"),
                    landscape=get("landscape", False), bleed=get("bleed"))
    output = {key: value for key, value in (("pyramid", False if get("flat") else None),
                                            ("crop_marks", True if get("crop_marks") else None),
                                            ("pdfx", "x4" if get("pdfx") else None),
                                            ("cmyk", get("cmyk")), ("intent", get("intent")))
              if value is not None}
    from_image = get("from_image")
    if from_image and is_url(from_image):  # an earlier render in a bucket: fetched to a temporary file
        from ..formats.upload import fetch_to_temp
        from ..storage.base import StorageOptions

        from_image = fetch_to_temp(from_image, StorageOptions(get("endpoint_url") or ""))
    seed = get("seed")
    if seed is None and from_image and get("seeds"):  # a series (or a sheet) of seeds: from a contact sheet too
        seed = parse_seeds(get("seeds"))[0]
    cfg = resolve_config(get("config"), from_image=from_image, overrides=get("overrides", []),
                         sizing=sizing, seed=seed, depth=get("depth"), tile=get("tile"),
                         device=get("device"), output=output, frame=get("frame"))
    if cfg.canvas.dpi > MAX_PRINT_DPI and get("size") and not get("force", False):  # (pixels from the DPI)
        raise UserError(f"--dpi {cfg.canvas.dpi:g} is over {MAX_PRINT_DPI}, more than presses and printers "
                        f"resolve ({cfg.canvas.width}x{cfg.canvas.height} px); give a lower --dpi, or add --force")
    if get("intent") and not cfg.output.cmyk:
        raise UserError("--intent is the rendering intent of the CMYK conversion; give --cmyk too")
    return cfg


class LazyBar:
    """A tqdm progress bar on stderr that appears at the first :meth:`progress` call.

    The checks before a render may still fail with one line; a bar drawn
    before them would be a second one.
    """

    def __init__(self, disable: bool = False, **options) -> None:
        self.disable = disable
        self.options = options
        self.bar = None

    def progress(self, done: int, total: int) -> None:
        if self.disable:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, dynamic_ncols=True, file=sys.stderr, smoothing=0.1, **self.options)
        if self.bar.total != total:
            self.bar.reset(total=total)
        if done > self.bar.n:
            self.bar.update(done - self.bar.n)

    def write(self, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(text, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Terminated(KeyboardInterrupt):
    """SIGTERM (kill, timeout, a closed terminal): cleaned up like Ctrl-C."""


# The signals the CLI's handler has taken during this command (cli.main empties it). A library may turn the
# Terminated it raised into a plain KeyboardInterrupt (Ray's blocking calls report any interrupt so), and the
# command is still terminated, not interrupted.
RECEIVED: list[int] = []


def stopped_by(exc: BaseException) -> tuple[str, int]:
    """How ``exc`` (a KeyboardInterrupt) stopped the command: ("terminated", 143) for SIGTERM, else
    ("interrupted", 130), the word its one line says and the exit status."""
    import signal

    if isinstance(exc, Terminated) or signal.SIGTERM in RECEIVED:
        return "terminated", 143
    return "interrupted", 130


def run_reporting(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a subcommand, turning bigcppn's errors into one line and an exit status.

    2: bad input (nothing was rendered); 1: rendering failed; 130: Ctrl-C; 143: SIGTERM.
    """
    verbose = getattr(args, "verbose", False)
    try:
        return command(args)
    except UserError as exc:
        if verbose:
            traceback.print_exc()
        print(f"bigcppn: error: {exc}", file=sys.stderr)
        return 2
    except RenderError as exc:
        if verbose:
            traceback.print_exc()
        print(f"bigcppn: {exc}; no file was written", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        what, status = stopped_by(exc)
        print(f"bigcppn: {what}; no file was written", file=sys.stderr)
        return status
