"""Contact sheets: one thumbnail per seed, rendered in one batched pass, to pick a seed.

The networks of all seeds share a shape, so their weights stack into
(seeds, in, out) tensors and every layer is one batched matrix product over all
seeds at once (``torch.baddbmm``), on the same coordinates.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyvips
import torch

from .config import Config
from .errors import UserError
from .network.model import _ACTIVATIONS_, CPPN
from .core.geometry import Canvas, View
from .network.backend import Sampling, check_network_fits, quantise_, sheet_chunk

if TYPE_CHECKING:
    from .results import RenderResult

__all__ = ["SeedBatch", "render_cells", "compose_sheet", "render_sheet", "sheet_provenance"]

class SeedBatch:
    """The networks of several seeds, stacked so one batched pass evaluates them all."""

    def __init__(self, cfg: Config, seeds: list[int], device: torch.device) -> None:
        self.models = [CPPN(cfg.network, s) for s in seeds]
        self.head = self.models[0]  # features and output mapping are shared
        self.core = self.head.fast_core
        self.w = [torch.stack([m.fast_wt[i] for m in self.models]).to(device) for i in range(len(self.core) + 1)]
        self.b = [torch.stack([m.fast_b[i] for m in self.models])[:, None, :].to(device)
                  for i in range(len(self.core) + 1)]
        self.device = device

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(seeds, N, bands) colours in [0, 1] for N shared coordinates."""
        s, n = len(self.models), x.shape[0]
        f = self.head.features(x, y).expand(s, n, -1)
        h = torch.baddbmm(self.b[0], f, self.w[0]).float()
        for i, act in enumerate(self.core):
            h = _ACTIVATIONS_[act](h)
            h = torch.baddbmm(self.b[i + 1], h, self.w[i + 1])
        return self.head._finish(h.reshape(s * n, -1)).reshape(s, n, -1)


# All thumbnails together at most (they are held in memory): 768 MB of RGB8.
MAX_SHEET_PIXELS = 256 * 1024**2


def cell_size(cfg: Config, cell: int, aspect: float | None = None) -> tuple[int, int]:
    """A thumbnail's (width, height): ``aspect`` (width / height, default the config's canvas), the longer side ``cell``."""
    cw, ch = (cfg.canvas.width, cfg.canvas.height) if aspect is None else (aspect, 1.0)
    return (cell, max(1, round(cell * ch / cw))) if cw >= ch else (max(1, round(cell * cw / ch)), cell)


def _layout(w: int, h: int, n: int, columns: int | None) -> tuple[int, int, int, int]:
    """(columns, rows, label height, gap) of a sheet of ``n`` cells of w x h."""
    columns = min(n, columns or math.ceil(math.sqrt(n)))
    return columns, math.ceil(n / columns), max(14, min(40, w // 9)), max(4, w // 32)


def sheet_size(cfg: Config, n: int, cell: int, columns: int | None = None,
               aspect: float | None = None) -> tuple[int, int]:
    """The (width, height) of the sheet :func:`compose_sheet` will make; refuses one too large to hold."""
    w, h = cell_size(cfg, cell, aspect)
    if n * w * h > MAX_SHEET_PIXELS:
        raise UserError(f"{n} cells of {w}x{h} px are too many to hold at once; use fewer seeds or a smaller --cell")
    cols, rows, label_h, gap = _layout(w, h, n, columns)
    return cols * w + (cols + 1) * gap, rows * (h + label_h) + (rows + 1) * gap


def render_cells(cfg: Config, seeds: list[int], cell: int, device: torch.device,
                 aspect: float | None = None, progress=None) -> np.ndarray:
    """(seeds, height, width, bands) uint8 thumbnails, the longer side ``cell``.

    They frame what a render of the config shows (its canvas, bleed included),
    or with ``aspect`` (width / height) what a canvas of that shape shows.
    """
    cw = cfg.canvas.width
    w, h = cell_size(cfg, cell, aspect)
    chunk = sheet_chunk(device, len(seeds))
    check_network_fits(cfg.network, device, min(chunk, w * h) * len(seeds), workers=1, copies=len(seeds))
    bleed = 0 if aspect is not None else round(cfg.canvas.bleed * w / cw)
    canvas = Canvas(w, h, min(bleed, (min(w, h) - 1) // 2))
    sampling = Sampling(canvas, View(cfg.view.center[0], cfg.view.center[1], cfg.view.zoom))
    batch = SeedBatch(cfg, seeds, device)
    x = sampling.axis(0, w, True, device).repeat(h)
    y = sampling.axis(0, h, False, device).repeat_interleave(w)
    out = torch.empty((len(seeds), w * h, batch.head.bands), dtype=torch.uint8)
    for s in range(0, w * h, chunk):
        e = min(w * h, s + chunk)
        v = batch.evaluate(x[s:e], y[s:e])
        out[:, s:e] = quantise_(v, 8, torch.uint8).cpu()
        if progress is not None:
            progress(e * len(seeds), w * h * len(seeds))
    return out.reshape(len(seeds), h, w, -1).numpy()


def compose_sheet(cells: np.ndarray, seeds: list[int], columns: int | None = None) -> pyvips.Image:
    """A grid of the thumbnails, each labelled with its seed, on a dark background."""
    n, h, w, bands = cells.shape
    columns, _rows, label_h, gap = _layout(w, h, n, columns)
    tiles = []
    for seed, cell in zip(seeds, cells):
        img = pyvips.Image.new_from_array(np.ascontiguousarray(cell))
        if bands == 1:
            img = img.bandjoin([img, img])
        # at the default 12 pt, text is about 0.12 px per dpi high
        text = pyvips.Image.text(f"seed {seed}", dpi=max(40, round(label_h * 0.55 / 0.12)), font="sans")
        ink = text.ifthenelse([235, 235, 235], [24, 24, 24], blend=True)
        label = ink.embed(max(0, (w - text.width) // 2), max(0, (label_h - text.height) // 2), w, label_h,
                          extend="background", background=[24, 24, 24])
        tiles.append(img.join(label, "vertical").cast("uchar"))
    sheet = pyvips.Image.arrayjoin(tiles, across=columns, shim=gap, background=[24, 24, 24])
    return sheet.embed(gap, gap, sheet.width + 2 * gap, sheet.height + 2 * gap,
                       extend="background", background=[24, 24, 24]).copy(interpretation="srgb")


def sheet_provenance(cfg: Config, seeds: list[int], aspect: float | None = None) -> str:
    """What a contact sheet carries (in its image metadata, as every output does): the config of its first
    cell, framed as the cells are, and a ``[sheet]`` table of its seeds. ``render --from SHEET --seed K``
    renders the cell of seed K; without a seed, ``--from`` says to pick one (``errors.ContactSheet``)."""
    from .formats.provenance import config_text

    canvas = cfg.canvas
    if aspect is not None:  # the cells frame a canvas of that shape, no bleed
        canvas = dataclasses.replace(canvas, height=max(1, round(canvas.width / aspect)), bleed=0)
    first = dataclasses.replace(cfg, seed=seeds[0], canvas=canvas)
    return (f"{config_text(first)}\n[sheet]  # a contact sheet: render a cell with --from THIS_FILE --seed K\n"
            f"seeds = [{', '.join(map(str, seeds))}]\n")


def sheet_format(out: Path):
    """The format of a contact sheet at ``out``: a picture file (not a DeepZoom pyramid, not a PDF page);
    UserError naming those it can be."""
    from .formats.registry import FORMATS, format_for, is_folder

    ok = sorted(ext for f in FORMATS.values() if f.single_image() and not f.page for ext in f.extensions[:1])
    one = "a contact sheet is one picture; write " + ", ".join(ok[:-1]) + f" or {ok[-1]}"
    known = {ext for f in FORMATS.values() for ext in f.extensions}
    if out.suffix.lower() not in known and not is_folder(out):
        what = f"extension '{out.suffix}'" if out.suffix else "no extension"
        raise UserError(f"output '{out}' has {what}; {one}")
    fmt = format_for(out)
    if not fmt.single_image() or fmt.page:
        raise UserError(f"{one}, not {fmt.extensions[0]}")
    return fmt


def render_sheet(cfg: Config, path: str | Path, seeds: list[int], cell: int = 256,
                 columns: int | None = None, aspect: float | None = None,
                 overwrite: bool = False, quality: int | None = None, progress=None) -> "RenderResult":
    """A contact sheet of ``seeds`` written to ``path`` (.png, .jpg, .webp or .tif), atomically, at the
    config's DPI.

    UserError before anything is rendered when the format, the size or the
    output folder cannot be used, or the file exists and ``overwrite`` is not given.
    ``progress(done, total)``: thumbnail pixels rendered.
    """
    from .results import RenderResult
    from .network.backend import threads_for_one_pass
    from .network.devices import pick_device
    from .formats.registry import check_canvas
    from .job import Job, check_overwrite
    from .formats.target import OutputTarget
    from .formats.writers import write_image

    out = Path(path)
    fmt = sheet_format(out)
    if quality is not None:
        if not 1 <= quality <= 100:
            raise UserError(f"--quality must be between 1 and 100, got {quality}")
        cfg = dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, quality=quality))
        if not fmt.lossy(cfg.output):
            raise UserError(f"--quality is for .jpg and .webp sheets (or .tif with output.compression=jpeg); "
                            f"{out.name} is lossless; leave --quality out")
    if cell > 4096:
        raise UserError(f"--cell {cell} is too large for a contact sheet; use at most 4096")
    if aspect is not None and not (0.01 <= aspect <= 100):
        raise UserError(f"--aspect {aspect:g} is too extreme for thumbnails; give a width:height between 1:100 "
                        "and 100:1")
    check_canvas(fmt, *sheet_size(cfg, len(seeds), cell, columns, aspect), 8)
    check_overwrite(Job(cfg, out, fmt), overwrite)
    device = pick_device(cfg.render.device)
    target = OutputTarget(out, fmt)
    try:
        target.probe()
    except OSError as exc:
        raise UserError(str(exc)) from None
    threads_for_one_pass(device, cfg.render.workers)
    t0 = time.perf_counter()
    image = compose_sheet(render_cells(cfg, seeds, cell, device, aspect, progress), seeds, columns)
    target.prepare()
    try:
        write_image(image, target.temp, fmt, dataclasses.replace(cfg.output, depth=8), dpi=cfg.canvas.dpi,
                    description=sheet_provenance(cfg, seeds, aspect))
        target.commit()
    except BaseException:
        target.cleanup()
        raise
    return RenderResult(out, image.width, image.height, out.stat().st_size, time.perf_counter() - t0)
