"""``bigcppn pyramid``: a deep-zoom pyramid, every level straight from the network."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import api
from ..errors import RenderError
from ..formats.tiles import CODECS
from ..pyramid.layouts import LAYOUTS
from ..pyramid.request import pyramid_place
from .common import (stopped_by, add_config_options, add_executor_options, add_overwrite_option, add_sizing_options,
                     add_storage_options, config_from, executor_kwargs, positive_int, storage_kwargs)


def add_parser(sub) -> None:
    p = sub.add_parser("pyramid", help="render a deep-zoom pyramid, every level straight from the network",
                       description="Render every tile of every level of a DeepZoom, IIIF 3 (level 0), Zoomify "
                                   "or Google pyramid straight from the network, with a viewer page (NAME.html "
                                   "beside a .dzi, index.html in the other layouts' folders). Tiles are written "
                                   "atomically; running the same command again after an interruption skips the "
                                   "finished tiles.")
    add_config_options(p, "the pyramid: DIR/NAME.dzi for --layout dz, a folder DIR/NAME for the others "
                          "(default: cppn-SEED-WxH)")
    add_sizing_options(p, paper=False)
    p.add_argument("--depth", type=int, choices=(8, 16), help=argparse.SUPPRESS)  # refused with a clear line
    p.add_argument("--tile", dest="pyramid_tile", type=positive_int, metavar="T",
                   help="pyramid tile size (default: 254 for dz, 256 for the others)")
    p.add_argument("--layout", choices=tuple(LAYOUTS), default="dz", help="pyramid layout (default dz)")
    p.add_argument("--overlap", type=int, metavar="PX", help="dz tile overlap in pixels (default 1)")
    p.add_argument("--format", choices=tuple(CODECS), default="jpeg", help="tile format (default jpeg)")
    p.add_argument("--quality", type=int, metavar="Q",
                   help="JPEG / WebP tile quality, 1-100 (default: the config's, 90)")
    p.add_argument("--supersample", type=positive_int, default=2, metavar="K",
                   help="K×K samples per pixel, box-filtered, on the levels below the base (default 2)")
    p.add_argument("--base-url", metavar="URL",
                   help="iiif3: the URL the pyramid folder is published at, info.json's id "
                        "(default http://localhost:8000/NAME)")
    p.add_argument("--max-size", type=positive_int, metavar="PX",
                   help="iiif3: the largest width and height served (maxWidth/maxHeight); full/max/0/default.jpg "
                        "is the whole image shrunk to fit it (default 2048, or the tile size when larger)")
    add_overwrite_option(p, "a pyramid of another render at OUT (the old one stays until the new one is "
                            "complete; in a bucket its descriptor is deleted first; the same render simply "
                            "resumes)")
    p.add_argument("--dry-run", action="store_true",
                   help="show the levels, tiles, files, bytes and time it would take, and render nothing")
    add_executor_options(p, pyramid=True)
    add_storage_options(p)
    p.add_argument("--break-lock", action="store_true",
                   help="in a bucket: take over the lock of a run on another machine that died (see the refusal's "
                        "host and age; two live runs on one pyramid would mix their tiles)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def _options(args: argparse.Namespace) -> dict:
    return dict(layout=args.layout, tile=args.pyramid_tile, overlap=args.overlap, format=args.format,
                quality=args.quality, supersample=args.supersample, base_url=args.base_url, max_size=args.max_size,
                overwrite=args.overwrite, **storage_kwargs(args))


def run(args: argparse.Namespace) -> int:
    """Validate everything, then render; 0, or 130 on Ctrl-C, 1 on a failure (the finished tiles are kept)."""
    cfg = config_from(args)
    if args.dry_run:
        print(api.plan_pyramid(cfg, args.output, **_options(args)))
        return 0
    bar = TileBar(str(args.output or "pyramid"), disable=args.quiet)
    try:
        r = api.render_pyramid(cfg, args.output, progress=bar.progress, **_options(args), **executor_kwargs(args),
                               break_lock=args.break_lock)
    except KeyboardInterrupt as exc:
        bar.close()
        place = pyramid_place(cfg, args.output, args.layout, api.storage_options(**storage_kwargs(args)))
        what, status = stopped_by(exc)
        kept = getattr(exc, "kept_in", place.root)
        kept = place.tiles_dir if kept == place.root and not place.folder else kept  # NAME_files/, not "."
        if not bar.tiles and isinstance(kept, Path) and not kept.exists():  # stopped before its first tile
            print(f"bigcppn: {what}; no tile was written", file=sys.stderr)
            return status
        where = f"{kept} (the pyramid it replaces is untouched)" if kept in place.replacements() else f"{kept}/"
        print(f"bigcppn: {what}; {bar.tiles} new tiles are kept in {where}; run the same command "
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
    if r.replaced:
        print(f"replaced the pyramid of another render at {r.path} (--overwrite)", file=sys.stderr)
    if r.written == 0:
        print(f"{r.path} is complete: all {r.tiles} tiles were already written; wrote {r.page}", file=sys.stderr)
    else:
        skipped = f", {r.skipped} already there" if r.skipped else ""
        print(f"wrote {r.path} ({r.width}x{r.height}, {r.levels} levels, {r.written} tiles{skipped}, "
              f"{r.tiles_per_s:.0f} tiles/s, {r.mpix_per_s:.2f} MPix/s) and {r.page}", file=sys.stderr)
    if r.remote:
        print("the page loads OpenSeadragon from its CDN", file=sys.stderr)
        if args.verbose:
            q = r.requests
            print(f"requests from this process: {q['puts']} PUTs, {q['lists']} LISTs, {q['gets']} GETs, "
                  f"{q['deletes']} DELETEs, {q['bytes_up'] / 1e6:.1f} MB up; {q['retries']} transient errors "
                  "retried", file=sys.stderr)
    elif r.viewer_local:
        print(f"the page uses the OpenSeadragon copied into {r.page.parent / 'openseadragon'}", file=sys.stderr)
    else:
        print("the page loads OpenSeadragon from a CDN and needs the internet: no npm copy was found here "
              "(npm install openseadragon, then run the same command again)", file=sys.stderr)
    return 0


class TileBar:
    """The pyramid's progress bar on stderr: tiles, MPix/s, and an ETA by network samples across all levels.

    Appears with the first progress that has work pending: a resumed run first
    says what is already there, a finished pyramid shows no bar at all.
    """

    FORMAT = "{desc} {percentage:3.0f}%|{bar}| {elapsed}<{remaining}"

    def __init__(self, desc: str, disable: bool = False) -> None:
        self.desc, self.disable = desc, disable
        self.bar = None
        self.tiles = 0

    def progress(self, p) -> None:
        self.tiles = p.tiles
        if self.disable or p.pending == 0:
            return
        if self.bar is None:
            from tqdm import tqdm

            if p.pending < p.total:
                tqdm.write(f"resuming: {p.total - p.pending} of {p.total} tiles are already written",
                           file=sys.stderr)
            self.bar = tqdm(total=p.samples_total, desc=f"{self.desc}: 0/{p.pending} tiles", dynamic_ncols=True,
                            file=sys.stderr, bar_format=self.FORMAT, smoothing=0.1)
        rate = p.pixels / 1e6 / p.seconds if p.seconds > 0 else 0.0
        self.bar.set_description_str(f"{self.desc}: {p.tiles}/{p.pending} tiles, {rate:.2f} MPix/s", refresh=False)
        self.bar.update(p.samples - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
