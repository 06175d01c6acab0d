"""Deep-zoom pyramids rendered level by level, straight from the network.

A pyramid made the usual way renders the base image and lets libvips shrink it
level by level. Here every tile of every level is sampled from the CPPN at that
level's own resolution: level pixel ``i`` at ``shift`` covers base pixels
``[i * 2**shift, (i + 1) * 2**shift)``, and is the mean of ``K×K`` samples at
the sub-pixel centres ``(i + (k + 0.5) / K) * 2**shift`` (a box filter, so the
small levels do not alias), mapped to the plane exactly as
:func:`bigcppn.plan.pixel_coord` maps pixel centres, in float64.

The base level goes through the renderer's own strips, so it is the very image
``bigcppn render`` makes, pixel for pixel. Every tile is written atomically
(a hidden temporary name, then a rename), and the tiles are grouped into jobs
that do not depend on what is already on disk, so a run that was interrupted
resumes by skipping the finished tiles and ends with the same pyramid, byte for
byte, as an uninterrupted one. The metadata file and the viewer page are
written last: a pyramid with its ``.dzi`` / ``info.json`` is complete.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import pyvips
import torch

from . import __version__
from .config import Config, config_to_dict
from .errors import RenderError, UserError
from .limits import PID_DIGITS, check_name_lengths, check_output_name
from .model import CPPN
from .plan import Canvas, Plan, View
from .pyramid_plan import LevelTile, Pyramid
from .render import CPU_CHUNK, Renderer

__all__ = ["LevelSampler", "encode_tile", "TileStore", "PyramidOutput", "PyramidStats", "render_pyramid",
           "pyramid_output", "MANIFEST_NAME"]

MANIFEST_NAME = "bigcppn.json"
# Samples (pixels x K²) evaluated in one job on a CPU; a GPU takes the renderer's batch.
CPU_JOB_SAMPLES = 1 << 18
_PARTIAL = re.compile(r"^\..+\.partial-\d+(-\d+)?$")


# --------------------------------------------------------------------------- sampling


class LevelSampler:
    """Evaluates rectangles of pyramid levels: any shift, ``K×K`` samples per pixel, box-filtered."""

    def __init__(self, model: CPPN, canvas: Canvas, view: View, device: torch.device,
                 chunk: int | None = None) -> None:
        self.device = device
        self.model = model.to(device).eval()
        self.canvas = canvas
        self.view = view
        self.pitch = view.pitch(canvas)
        self.chunk = chunk or (CPU_CHUNK if device.type == "cpu" else 1 << 22)
        self.bands = model.bands

    def axis(self, start: int, count: int, shift: int, k: int, horizontal: bool) -> torch.Tensor:
        """Plane coordinates of the ``count * k`` samples of level pixels ``start ..`` on one axis, float64.

        The positions of :func:`bigcppn.pyramid_plan.sample_positions` mapped by
        :func:`~bigcppn.pyramid_plan.level_coord`, ``center + (u - size / 2) * pitch``;
        at shift 0 with k = 1 these are exactly the renderer's pixel centres (every
        step is exact in float64 up to the multiplication by the pitch).
        """
        size = self.canvas.width if horizontal else self.canvas.height
        center = self.view.center_x if horizontal else self.view.center_y
        idx = torch.arange(start, start + count, dtype=torch.float64, device=self.device)
        step = 2.0**shift
        a = idx * step
        if k == 1 and shift <= 0:
            u = a + 0.5 * step
        else:
            width = (torch.clamp(a + step, max=float(size)) - a) if shift > 0 else torch.full_like(a, step)
            sub = (torch.arange(k, dtype=torch.float64, device=self.device) + 0.5) / k
            u = (a[:, None] + sub[None, :] * width[:, None]).reshape(-1)
        return (u - size / 2) * self.pitch + center

    @torch.no_grad()
    def sample(self, shift: int, x: int, y: int, width: int, height: int, k: int = 1) -> torch.Tensor:
        """Mean colour of each level pixel of the rectangle, (height, width, bands) float32 in [0, 1]."""
        return self.sample_many([(shift, x, y, width, height)], k)[0]

    @torch.no_grad()
    def sample_many(self, rects: Sequence[tuple[int, int, int, int, int]], k: int = 1) -> list[torch.Tensor]:
        """Several rectangles (shift, x, y, width, height) evaluated together, in one run of device chunks."""
        xs, ys = [], []
        for shift, x, y, w, h in rects:
            ax = self.axis(x, w, shift, k, True)
            ay = self.axis(y, h, shift, k, False)
            xs.append(ax.repeat(h * k))
            ys.append(ay.repeat_interleave(w * k))
        px = torch.cat(xs) if len(xs) > 1 else xs[0]
        py = torch.cat(ys) if len(ys) > 1 else ys[0]
        n = px.shape[0]
        out = torch.empty((n, self.bands), dtype=torch.float32, device=self.device)
        for s in range(0, n, self.chunk):
            e = min(n, s + self.chunk)
            out[s:e] = self.model.evaluate(px[s:e], py[s:e])
        result, off = [], 0
        for _shift, _x, _y, w, h in rects:
            m = w * h * k * k
            v = out[off : off + m]
            off += m
            if k == 1:
                result.append(v.view(h, w, self.bands))
            else:
                result.append(v.view(h, k, w, k, self.bands).mean(dim=(1, 3)))
        return result

    @staticmethod
    def quantise(v: torch.Tensor) -> np.ndarray:
        """[0, 1] → uint8 exactly as the renderer does it: floor(v * 255 + 0.5)."""
        return v.mul(255.0).add_(0.5).floor_().to(torch.uint8).cpu().numpy()

    def render_many(self, rects: Sequence[tuple[int, int, int, int, int]], k: int = 1) -> list[np.ndarray]:
        return [self.quantise(v) for v in self.sample_many(rects, k)]


# --------------------------------------------------------------------------- encoding and writing


def encode_tile(arr: np.ndarray, suffix: str, quality: int, pad: tuple[int, int] | None = None) -> bytes:
    """One tile image as JPEG, WebP or PNG bytes (no metadata, as dzsave writes them).

    ``pad`` grows the image to that size with white, as Google tiles are.
    """
    bands = arr.shape[2]
    img = pyvips.Image.new_from_array(np.ascontiguousarray(arr), interpretation="srgb" if bands >= 3 else "b-w")
    if pad is not None and (pad[0] != img.width or pad[1] != img.height):
        img = img.embed(0, 0, pad[0], pad[1], extend="background", background=[255] * bands)
    if suffix == "jpeg":
        return img.jpegsave_buffer(Q=quality, keep="none")
    if suffix == "webp":
        return img.webpsave_buffer(Q=quality, keep="none")
    return img.pngsave_buffer(compression=6, keep="none")


class TileStore:
    """Files under a root, each written atomically: ``.NAME.partial-PID-THREAD`` beside it, then a rename."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._dirs: set[Path] = set()
        self._lock = threading.Lock()

    def path(self, rel: str) -> Path:
        return self.root / rel

    def exists(self, rel: str) -> bool:
        return (self.root / rel).is_file()

    def write(self, rel: str, data: bytes) -> None:
        p = self.root / rel
        d = p.parent
        if d not in self._dirs:
            d.mkdir(parents=True, exist_ok=True)
            with self._lock:
                self._dirs.add(d)
        tmp = d / f".{p.name}.partial-{os.getpid()}-{threading.get_ident()}"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, p)
        except BaseException:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
            raise

    def remove_partials(self, top: Path | None = None) -> int:
        """Delete temporary files an interrupted run left behind; returns how many."""
        n = 0
        for dirpath, _dirs, files in os.walk(top or self.root):
            for f in files:
                if _PARTIAL.match(f):
                    try:
                        os.unlink(os.path.join(dirpath, f))
                        n += 1
                    except FileNotFoundError:
                        pass
        return n


# --------------------------------------------------------------------------- where a pyramid goes


@dataclass(frozen=True)
class PyramidOutput:
    """Where a pyramid's files go.

    ``dz``: ``-o DIR/NAME.dzi`` writes ``NAME.dzi``, ``NAME_files/``, the manifest
    ``NAME.bigcppn.json`` and ``index.html`` in DIR. The other layouts: ``-o DIR/NAME``
    is a folder holding everything, ``bigcppn.json`` and ``index.html`` included.
    """

    root: Path
    name: str
    layout: str

    @property
    def manifest(self) -> Path:
        return self.root / (f"{self.name}.{MANIFEST_NAME}" if self.layout == "dz" else MANIFEST_NAME)

    @property
    def tiles_dir(self) -> Path:
        return self.root / f"{self.name}_files" if self.layout == "dz" else self.root

    @property
    def page(self) -> Path:
        return self.root / "index.html"


def pyramid_output(out: str | Path, layout: str) -> PyramidOutput:
    """Check ``-o`` for a layout (before anything is rendered); UserError when it cannot be used."""
    check_output_name(out)
    p = Path(out)
    if layout == "dz":
        if p.suffix.lower() not in (".dzi", ""):
            raise UserError(f"a DeepZoom pyramid is written as NAME.dzi; got '{out}' (or choose --layout)")
        name = p.stem if p.suffix else p.name
        root = p.parent
        if not name or name.startswith("."):
            raise UserError(f"'{out}' does not name a pyramid; give -o DIR/NAME.dzi")
    else:
        if p.suffix.lower() == ".dzi":
            raise UserError(f"the {layout} layout is a folder, not a .dzi file; give -o DIR/NAME")
        name, root = p.name, p
        if not name or name in (".", ".."):
            raise UserError(f"'{out}' does not name a folder for the pyramid; give -o DIR/NAME")
    parent = p.parent
    if not parent.is_dir():
        raise UserError(f"output directory '{parent}' does not exist; create it first")
    if not os.access(parent, os.W_OK):
        raise UserError(f"cannot write in output directory '{parent}'; choose another -o")
    if layout != "dz" and root.exists() and not root.is_dir():
        raise UserError(f"'{root}' exists and is not a folder; choose another -o")
    # every name it writes, temporary ones (.NAME.partial-PID) included, must fit the file system
    pid = "9" * PID_DIGITS
    names = [f"{name}.html", f".{name}.html.partial-{pid}"]
    if layout == "dz":
        names += [f"{name}.dzi", f"{name}_files", f".{name}.dzi.partial-{pid}", f"{name}.{MANIFEST_NAME}",
                  f".{name}.{MANIFEST_NAME}.partial-{pid}"]
    check_name_lengths(p, [name, *names])
    return PyramidOutput(root, name, layout)


# --------------------------------------------------------------------------- the render


@dataclass
class PyramidStats:
    tiles: int = 0
    written: int = 0
    skipped: int = 0
    base_strips: int = 0
    jobs: int = 0
    seconds: float = 0.0
    pixels: int = 0  # level pixels written (not counting samples)
    page: Path | None = None  # the viewer page written

    @property
    def tiles_per_s(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0


def _manifest_key(cfg: Config, params: dict) -> dict:
    c = config_to_dict(cfg)
    # How many threads and how deep a queue change nothing in the pixels.
    c.get("render", {}).pop("workers", None)
    c.get("render", {}).pop("queue", None)
    return {"config": c, "pyramid": params}


def _check_manifest(out: PyramidOutput, key: dict) -> bool:
    """True when resuming a pyramid of the same render; UserError when ``out`` holds something else."""
    m = out.manifest
    if m.is_file():
        try:
            data = json.loads(m.read_text(encoding="utf-8"))
            old = {"config": data["config"], "pyramid": data["pyramid"]}
            old["config"].get("render", {}).pop("workers", None)
            old["config"].get("render", {}).pop("queue", None)
        except (ValueError, KeyError, TypeError):
            raise UserError(f"'{m}' is not a bigcppn pyramid manifest; "
                            "remove the pyramid or choose another -o") from None
        if old != key:
            diff = sorted(k for k in ("config", "pyramid") if old[k] != key[k])
            what = ", ".join(
                f"{sect}.{k}" for sect in diff for k in sorted(set(old[sect]) | set(key[sect]))
                if old[sect].get(k) != key[sect].get(k))
            raise UserError(f"'{out.root / out.name}' holds a pyramid of another render (differs in {what}); "
                            "remove it or choose another -o")
        return True
    # Nothing of ours: refuse to mix tiles into something that is already there.
    if out.layout == "dz":
        clash = [p for p in (out.tiles_dir, out.root / f"{out.name}.dzi") if p.exists()]
    else:
        clash = [out.root] if out.root.is_dir() and any(out.root.iterdir()) else []
    if clash:
        raise UserError(f"'{clash[0]}' already exists and was not made by bigcppn pyramid; "
                        "remove it or choose another -o")
    return False


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _jobs(p: Pyramid, level: int, per_job: int) -> list[list[LevelTile]]:
    """Consecutive tiles of a level, grouped by sample count; fixed by the plan, not by what is on disk."""
    jobs, cur, n = [], [], 0
    for t in p.tiles(level):
        if cur and n + t.pixels > per_job:
            jobs.append(cur)
            cur, n = [], 0
        cur.append(t)
        n += t.pixels
    if cur:
        jobs.append(cur)
    return jobs


class _Writer:
    """Encodes and writes tiles on a thread pool, with a bounded number in flight."""

    def __init__(self, store: TileStore, p: Pyramid, suffix: str, quality: int, threads: int,
                 stats: PyramidStats, on_tile: Callable[[LevelTile], None] | None) -> None:
        self.store, self.p, self.suffix, self.quality = store, p, suffix, quality
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="bigcppn-encode")
        self.inflight: deque[Future] = deque()
        self.limit = 4 * threads
        self.stats = stats
        self.on_tile = on_tile
        self._lock = threading.Lock()

    def _one(self, t: LevelTile, arr: np.ndarray) -> None:
        pad = (t.image_width, t.image_height) if self.p.layout == "google" else None
        self.store.write(t.path, encode_tile(arr, self.suffix, self.quality, pad))
        with self._lock:
            self.stats.written += 1
            self.stats.pixels += t.pixels
        if self.on_tile is not None:
            self.on_tile(t)

    def submit(self, t: LevelTile, arr: np.ndarray) -> None:
        while len(self.inflight) >= self.limit:
            self.inflight.popleft().result()
        self.inflight.append(self.pool.submit(self._one, t, arr))

    def drain(self) -> None:
        while self.inflight:
            self.inflight.popleft().result()

    def close(self, cancel: bool = False) -> None:
        if cancel:
            for f in self.inflight:
                f.cancel()
        self.pool.shutdown(wait=True, cancel_futures=cancel)


def _ordered(pool: ThreadPoolExecutor, fn, items: Iterable, lookahead: int) -> Iterator[tuple]:
    """``(item, fn(item))`` in order, ``lookahead`` computed ahead on ``pool``."""
    pending: deque = deque()
    try:
        for item in items:
            pending.append((item, pool.submit(fn, item)))
            if len(pending) > lookahead:
                it, fut = pending.popleft()
                yield it, fut.result()
        while pending:
            it, fut = pending.popleft()
            yield it, fut.result()
    finally:
        for _it, fut in pending:
            fut.cancel()


def _render_base(renderer: Renderer, plan: Plan, p: Pyramid, todo: list[LevelTile], pool: ThreadPoolExecutor,
                 workers: int, writer: _Writer, stats: PyramidStats) -> None:
    """The base level through the renderer's own strips, cut into pyramid tiles."""
    if not todo:
        return
    rows: dict[int, list[LevelTile]] = {}
    for t in todo:
        rows.setdefault(t.row, []).append(t)
    sh = plan.strip_height
    bands: list[tuple[int, int, list[LevelTile]]] = []  # (first strip, last strip, tiles)
    for r in sorted(rows):
        t0 = rows[r][0]
        bands.append((t0.y // sh, (t0.y + t0.height - 1) // sh, rows[r]))
    needed = sorted({i for a, b, _ in bands for i in range(a, b + 1)})
    buffer: dict[int, np.ndarray] = {}
    k = 0
    for i, arr in _ordered(pool, lambda i: renderer.render_strip(plan.strip(i)), needed, workers):
        buffer[i] = arr
        stats.base_strips += 1
        while k < len(bands) and bands[k][1] <= i:
            a, b, tiles = bands[k]
            for t in tiles:  # each tile's rows from the strips it spans, no copy of whole strips
                parts = [buffer[j][max(t.y - j * sh, 0) : t.y + t.height - j * sh, t.x : t.x + t.width]
                         for j in range(a, b + 1)]
                writer.submit(t, np.ascontiguousarray(np.concatenate(parts, axis=0) if b > a else parts[0]))
            k += 1
            keep = bands[k][0] if k < len(bands) else i + 1
            for j in [j for j in buffer if j < keep]:
                del buffer[j]


def render_pyramid(
    cfg: Config,
    p: Pyramid,
    out: PyramidOutput,
    renderer: Renderer,
    plan: Plan,
    supersample: int = 2,
    quality: int = 90,
    workers: int = 1,
    encoders: int | None = None,
    base_url: str = "",
    title: str = "",
    on_start: Callable[[int, int], None] | None = None,
    on_tile: Callable[[LevelTile], None] | None = None,
) -> PyramidStats:
    """Render every missing tile of ``p`` into ``out``, then the metadata and the viewer page.

    ``on_start(pending, total)`` is called once the finished tiles are counted;
    ``on_tile`` after each tile is written (from encoder threads).
    """
    from .viewer import GENERATOR_META, install_openseadragon, static_page

    t_start = time.perf_counter()
    stats = PyramidStats(tiles=p.tile_count)
    params = {"layout": p.layout, "width": p.width, "height": p.height, "tile": p.tile, "overlap": p.overlap,
              "format": p.suffix, "quality": quality, "supersample": supersample, "name": p.name}
    if p.layout == "iiif3":
        params["base_url"] = base_url
    key = _manifest_key(cfg, params)
    resuming = _check_manifest(out, key)
    out.root.mkdir(exist_ok=True)
    store = TileStore(out.root)
    if resuming:
        store.remove_partials(out.tiles_dir)
        for f in out.root.glob(".*.partial-*"):  # a manifest, page or descriptor cut short
            if f.is_file():
                f.unlink()
    else:
        _write_text(out.manifest, json.dumps({"generator": f"bigcppn {__version__}", **key}, indent=2) + "\n")

    base = p.base_level
    todo_base = [t for t in p.tiles(base.index) if not store.exists(t.path)]
    lower: list[tuple[list[LevelTile], list[LevelTile]]] = []  # (job, its missing tiles)
    per_job = max(1, (CPU_JOB_SAMPLES if renderer.device.type == "cpu" else plan.batch_pixels)
                  // (supersample * supersample))
    for lv in reversed(p.levels[: base.index]):
        for job in _jobs(p, lv.index, per_job):
            missing = [t for t in job if not store.exists(t.path)]
            if missing:
                lower.append((job, missing))
    pending = len(todo_base) + sum(len(m) for _j, m in lower)
    stats.skipped = p.tile_count - pending
    if on_start is not None:
        on_start(pending, p.tile_count)

    sampler = LevelSampler(renderer.model, renderer.canvas, renderer.sampling.view, renderer.device)
    writer = _Writer(store, p, p.suffix, quality, encoders or max(1, os.cpu_count() or 1), stats, on_tile)
    pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="bigcppn-level")
    ok = False
    try:
        _render_base(renderer, plan, p, todo_base, pool, max(1, workers), writer, stats)

        def run_job(item):
            job, _missing = item
            rects = [(t.shift, t.x, t.y, t.width, t.height) for t in job]
            return sampler.render_many(rects, supersample)

        for (job, missing), arrays in _ordered(pool, run_job, lower, max(1, workers)):
            stats.jobs += 1
            wanted = {id(t) for t in missing}
            for t, arr in zip(job, arrays):
                if id(t) in wanted:
                    writer.submit(t, arr)
        writer.drain()
        ok = True
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        writer.close(cancel=not ok)

    if p.layout == "google":
        blank = pyvips.Image.black(p.tile, p.tile) + 255
        _write_bytes_atomic(out.root / "blank.png", blank.cast("uchar").pngsave_buffer(keep="none"))
    local = install_openseadragon(out.root)
    info = (f"bigcppn {__version__} · seed {cfg.seed} · {p.width}×{p.height} px · {p.layout} · "
            f"{len(p.levels)} levels · supersampled {supersample}×{supersample}")
    page_html = static_page(p, title or f"{out.name} (bigcppn)", info, local)
    page = out.page
    if page.exists() and GENERATOR_META not in page.read_text(encoding="utf-8", errors="replace"):
        page = out.root / f"{out.name}.html"  # someone's own index.html stays as it is
    _write_text(page, page_html)
    stats.page = page
    if p.descriptor_path:
        _write_text(out.root / p.descriptor_path, p.descriptor(base_url or f"http://localhost:8000/{out.name}"))
    stats.seconds = time.perf_counter() - t_start
    return stats


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- the command


def command(args, cfg: Config) -> int:
    """``bigcppn pyramid``: validate everything, then render; 0, or 130 on Ctrl-C, 1 on a failure."""
    import shutil
    import sys

    from tqdm import tqdm

    from .formats import FORMATS, estimate_output_bytes
    from .pyramid_plan import DEFAULT_OVERLAP, DEFAULT_TILE, MAX_TILE
    from .render import pick_device, renderer_for, strip_workers

    layout = args.layout
    tile = args.tile or DEFAULT_TILE[layout]
    if args.overlap is not None and layout != "dz":
        raise UserError(f"--overlap applies to the dz layout only; the {layout} layout has none")
    overlap = args.overlap if args.overlap is not None else DEFAULT_OVERLAP[layout]
    if tile > MAX_TILE:
        raise UserError(f"--tile {tile} is too large; use at most {MAX_TILE}")
    if not 0 <= overlap < tile:
        raise UserError(f"--overlap must be between 0 and the tile size - 1 ({tile - 1}), got {overlap}")
    quality = args.quality if args.quality is not None else cfg.output.quality
    if not 1 <= quality <= 100:
        raise UserError(f"--quality must be between 1 and 100, got {quality}")
    if args.supersample > 16:
        raise UserError(f"--supersample {args.supersample} is more than needed; use at most 16")
    base_url = args.base_url or ""
    if base_url and not re.match(r"^https?://[^\s/]+", base_url):
        raise UserError(f"--base-url must be an http(s) URL, got '{base_url}'")
    if base_url and layout != "iiif3":
        raise UserError("--base-url is for the iiif3 layout (its info.json names its own URL)")
    default = f"cppn-{cfg.seed}-{cfg.canvas.width}x{cfg.canvas.height}" + (".dzi" if layout == "dz" else "")
    out = pyramid_output(args.output or default, layout)
    device = pick_device(cfg.render.device)
    renderer, plan = renderer_for(cfg, device)
    c = renderer.canvas
    p = Pyramid(c.width, c.height, layout, tile, overlap, args.format, name=out.name if layout == "dz" else "image")
    need = estimate_output_bytes(FORMATS["dz"], c.width, c.height, cfg.network.bands, 8, args.format != "png")
    free = shutil.disk_usage(out.root if out.root.is_dir() else out.root.parent).free
    if need > free:
        raise UserError(f"not enough free disk for the pyramid: about {need / 1e9:.1f} GB needed, "
                        f"{free / 1e9:.1f} GB free; free some space or write elsewhere")
    workers = strip_workers(device, cfg.render.workers)
    bar = tqdm(total=0, unit="tile", disable=args.quiet, desc=out.name, dynamic_ncols=True, file=sys.stderr,
               smoothing=0.1)
    done = {"n": 0}

    def on_start(pending: int, total: int) -> None:
        bar.reset(total=pending)
        if pending < total and not args.quiet:
            bar.write(f"resuming: {total - pending} of {total} tiles are already written", file=sys.stderr)

    def on_tile(_t) -> None:
        done["n"] += 1
        bar.update(1)

    label = out.root / p.descriptor_path if p.descriptor_path else out.root
    try:
        stats = render_pyramid(cfg, p, out, renderer, plan, supersample=args.supersample, quality=quality,
                               workers=workers, base_url=base_url, on_start=on_start, on_tile=on_tile)
    except KeyboardInterrupt:
        bar.close()
        print(f"bigcppn: interrupted; {done['n']} new tiles are kept in {out.root}; run the same command "
              "again to resume", file=sys.stderr)
        return 130
    except (UserError, RenderError):
        bar.close()
        raise
    except (OSError, pyvips.Error, RuntimeError) as exc:
        bar.close()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        if getattr(args, "verbose", False):
            raise
        print(f"bigcppn: writing the pyramid failed: {first}; the finished tiles are kept, "
              "run the same command again to resume", file=sys.stderr)
        return 1
    bar.close()
    if not args.quiet and stats.written == 0:
        print(f"{label} is complete: all {stats.tiles} tiles were already written; wrote {stats.page}",
              file=sys.stderr)
    elif not args.quiet:
        skipped = f", {stats.skipped} already there" if stats.skipped else ""
        print(f"wrote {label} ({p.width}x{p.height}, {len(p.levels)} levels, {stats.written} tiles{skipped}, "
              f"{stats.tiles_per_s:.0f} tiles/s, {stats.pixels / 1e6 / max(stats.seconds, 1e-9):.2f} MPix/s) "
              f"and {stats.page}", file=sys.stderr)
    return 0
