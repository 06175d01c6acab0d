"""The size of an output, estimated from the picture: sample tiles rendered and encoded as the output encodes them.

A file's size depends on the picture (a smooth gradient deflates to a tenth of
its raw bytes, a busy one hardly at all), so a fixed ratio was off by 0.2x to
5x. Here, for each level the output holds (:meth:`~bigcppn.formats.base.Format.level_sizes`),
:data:`TILES` tiles of :data:`SIDE`² pixels spread over the level (one in each
cell of a grid, at a fixed place inside it) are rendered at the level's own
resolution, put side by side into a mosaic and encoded by the output's own
format and settings (:meth:`~bigcppn.formats.base.Format.encoded_bytes`: the same
writer, tile codec, compression and quality). The bytes the mosaic took
beyond a tiny image's (the header, profile and embedded config, written
once) are scaled to the level's pixels. A level no larger than the mosaic is
rendered whole and encoded as it is. Levels below the first are rendered at
their size (one sample a pixel), as the writers' 2×2 averages nearly are.

Measured against real files (``benchmarks/bench_estimate.py``, 2600² and
6000×4000, smooth and busy pictures, TIFF, PNG, JPEG, DeepZoom): within the
:data:`SPREAD` either way; :class:`SizeEstimate` carries that range.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..core.geometry import Window

__all__ = ["SizeEstimate", "TILES", "SIDE", "SPREAD", "sample_windows", "estimate_output", "estimate_levels"]

TILES = 16  # sample tiles on the first level (fewer below: their levels are smaller)
SIDE = 256  # their side in pixels
SPREAD = 0.25  # the estimate's measured accuracy either way (the benchmark's worst case, rounded up)


@dataclass(frozen=True)
class SizeEstimate:
    """Bytes an output will take: the estimate, the range it is sure of, and how it was found."""

    bytes: int
    low: int
    high: int
    sampled_pixels: int  # pixels rendered and encoded to find it
    total_pixels: int  # pixels of every level of the output

    @property
    def exact(self) -> bool:
        """Whether every level was rendered and encoded whole (then the range is the file's overhead only)."""
        return self.sampled_pixels >= self.total_pixels

    def describe(self) -> str:
        """How sure it is, in words (for the free-space check)."""
        from .plan import human_size

        if self.exact:
            return "encoded in full"
        share = self.sampled_pixels / max(self.total_pixels, 1)
        return (f"likely {human_size(self.low)}-{human_size(self.high)}: from {share:.1%} of the pixels "
                f"rendered and encoded as sample tiles")


def sample_windows(width: int, height: int, side: int, count: int) -> list[Window]:
    """``count`` windows of ``side``² (cut to the picture) spread over ``width`` x ``height``: one in each cell
    of a near-square grid, at a place inside the cell that varies from cell to cell (so a periodic picture
    is not sampled in phase)."""
    side_w, side_h = min(side, width), min(side, height)
    cols = max(1, min(count, round((count * width / max(height, 1)) ** 0.5), width // side_w))
    rows = max(1, min(-(-count // cols), height // side_h))
    wins = []
    for r in range(rows):
        for c in range(cols):
            k = r * cols + c
            fx, fy = ((k * 0.618034) % 1.0), ((k * 0.414214 + 0.5) % 1.0)  # golden-ratio offsets in the cell
            cw, ch = width / cols, height / rows
            x = int(c * cw + fx * max(0.0, cw - side_w))
            y = int(r * ch + fy * max(0.0, ch - side_h))
            wins.append(Window(min(x, width - side_w), min(y, height - side_h), side_w, side_h))
    return wins


def _mosaic(tiles: list[np.ndarray]) -> np.ndarray:
    """Tiles of one size side by side in a near-square grid (missing cells: the first tiles again, flipped)."""
    cols = max(1, round(len(tiles) ** 0.5))
    rows = -(-len(tiles) // cols)
    cells = tiles + [t[::-1] for t in tiles][: rows * cols - len(tiles)]
    return np.ascontiguousarray(np.concatenate(
        [np.concatenate(cells[r * cols : (r + 1) * cols], axis=1) for r in range(rows)], axis=0))


def _level_pixels(renderer, shift: int, wins: list[Window], depth: int, k: int = 1) -> list[np.ndarray]:
    """The pixels of ``wins`` on the level of ``shift`` (0: the canvas as a render renders it), ``k``² samples
    a pixel below it."""
    from concurrent.futures import ThreadPoolExecutor

    from ..core.system import available_cores

    def one(w: Window) -> np.ndarray:
        if shift == 0:
            return renderer.render_window(w)
        rect = [(shift, w.x, w.y, w.width, w.height)]
        if depth == 8:
            return renderer.render_many(rect, k)[0]
        return np.clip(renderer.sample_many(rect, k)[0].cpu().numpy() * 65535 + 0.5, 0, 65535).astype(np.uint16)

    if len(wins) == 1 or not renderer.policy.shares_cores_with_writer:  # one device: one window at a time
        return [one(w) for w in wins]
    with ThreadPoolExecutor(available_cores(), thread_name_prefix="bigcppn-size") as pool:
        return list(pool.map(one, wins))


def _whole(renderer, shift: int, width: int, height: int, depth: int, k: int = 1) -> np.ndarray:
    rows = max(1, (1 << 18) // max(width, 1))
    wins = [Window(0, y, width, min(rows, height - y)) for y in range(0, height, rows)]
    return np.concatenate(_level_pixels(renderer, shift, wins, depth, k), axis=0)


def estimate_levels(encode, renderer, levels: list[tuple[int, int, int]], depth: int,
                    tiles: int = TILES, side: int = SIDE, k: int = 1) -> SizeEstimate:
    """The bytes of an output of ``levels`` ((shift, width, height), the first the largest), whose level
    images ``encode(image) -> (bytes, fixed)`` encodes (``fixed``: the bytes written once a file);
    ``side``: the sample tiles' (a tiled output's own tile, so that no seam falls inside one); ``k``: samples
    a pixel below the first level (a pyramid renders its levels with ``k``², the writers average 2×2)."""
    total = sampled = 0
    fixed_once = None
    pixels = sum(w * h for _s, w, h in levels)
    for i, (shift, w, h) in enumerate(levels):
        count = max(4, tiles >> i)
        if w * h <= count * side * side:
            n, fixed = encode(_whole(renderer, shift, w, h, depth, k if shift else 1))
            total += n - fixed
            sampled += w * h
        else:
            mosaic = _mosaic(_level_pixels(renderer, shift, sample_windows(w, h, side, count), depth,
                                           k if shift else 1))
            n, fixed = encode(mosaic)
            m = mosaic.shape[0] * mosaic.shape[1]
            total += (n - fixed) * (w * h) / m
            sampled += m
        fixed_once = fixed if fixed_once is None else fixed_once
    est = int(total + (fixed_once or 0))
    spread = 0.0 if sampled >= pixels else SPREAD
    return SizeEstimate(est, int(est * (1 - spread)), int(est * (1 + spread)) + 4096, sampled, pixels)


def estimate_output(job, renderer) -> SizeEstimate:
    """The bytes ``job``'s output will take: its format's levels, sampled through its own encoder."""
    fmt, cfg = job.fmt, job.config
    c, out = cfg.canvas, cfg.output
    levels = [(shift, w, h) for shift, (w, h) in enumerate(fmt.level_sizes(c.width, c.height, out))]
    with tempfile.TemporaryDirectory(prefix="bigcppn-size-") as d:
        folder = Path(d)

        def encode(image: np.ndarray) -> tuple[int, int]:
            own = fmt.encoded_bytes(image, out, cfg, folder)
            return own if own is not None else _written_bytes(fmt, image, out, cfg, folder)

        return estimate_levels(encode, renderer, levels, out.depth, side=fmt.sample_side(out))


def _written_bytes(fmt, image: np.ndarray, out, config, folder: Path) -> tuple[int, int]:
    """``image`` written through ``fmt``'s own writer as one level (:meth:`~bigcppn.formats.base.Format.one_level`),
    and a tiny image likewise (what a file writes once): their bytes on disk."""
    from ..formats.target import OutputTarget, save_strips

    flat = fmt.one_level(out)

    def size(pixels: np.ndarray, name: str) -> int:
        h, w, bands = pixels.shape
        target = OutputTarget(folder / f"{name}{fmt.extensions[0]}", fmt)
        save_strips(iter([pixels]), target, w, h, bands, flat, config=config)
        paths = fmt.produced(target.path)
        n = sum(_disk_bytes(p) for p in paths)
        for p in paths:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        return n

    return size(image, "sample"), size(np.ascontiguousarray(image[:8, :8]), "tiny")


def _disk_bytes(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (0 for nothing there)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def estimate_pyramid(request, renderer) -> SizeEstimate:
    """The bytes of a :class:`~bigcppn.pyramid.request.PyramidRequest`'s tiles: each level sampled and its
    tiles encoded with the pyramid's codec and quality."""
    from ..formats.registry import FORMATS

    p = request.pyramid
    out = replace(request.config.output, depth=8, dz_suffix=p.codec.name, dz_tile=p.tile, dz_overlap=p.overlap,
                  quality=request.quality, cmyk="")
    levels = [(lv.shift, lv.width, lv.height) for lv in sorted(p.levels, key=lambda lv: lv.shift)
              if lv.shift >= 0]
    fmt = FORMATS["dz"]
    return estimate_levels(lambda image: fmt.encoded_bytes(image, out, None, Path(".")), renderer, levels, 8,
                           side=fmt.sample_side(out), k=request.supersample)
