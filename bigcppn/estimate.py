"""What a render will take, before it runs: tiles, batches, memory, bytes on disk and time.

:func:`describe` turns a job and its plan into a :class:`PlanInfo` (what
``bigcppn plan`` prints); :func:`measure_rate` times the network on this
machine; :func:`check_disk` refuses a render the disk cannot hold.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass

from .errors import UserError
from .formats import estimate_output_bytes
from .job import Job
from .plan import Plan, Window, estimate_peak_bytes
from .system import available_cores
from .units import PrintSize

__all__ = ["PlanInfo", "describe", "measure_rate", "check_disk", "human_size", "human_duration"]


@dataclass(frozen=True)
class PlanInfo:
    """What a render will do: the canvas, its tiles and batches, the output and the estimates."""

    width: int
    height: int
    bands: int
    depth: int
    tile: int
    tiles: int
    strips: int
    strip_height: int
    batches: int
    batch_pixels: int
    device: str
    path: str
    format: str
    estimated_bytes: int
    writer: str
    estimated_peak_bytes: int
    dpi: float
    bleed_px: int
    mm: tuple[float, float]
    trimmed_mm: tuple[float, float]
    network_mpix_per_s: float | None = None
    estimated_seconds: float | None = None

    @property
    def megapixels(self) -> float:
        return round(self.width * self.height / 1e6, 3)

    def as_dict(self) -> dict:
        """The plan as ``bigcppn plan --json`` prints it."""
        d = {
            "canvas": {"width": self.width, "height": self.height, "megapixels": self.megapixels,
                       "bands": self.bands, "depth": self.depth},
            "tile": self.tile, "tiles": self.tiles, "strips": self.strips, "strip_height": self.strip_height,
            "batches": self.batches, "batch_pixels": self.batch_pixels, "device": self.device,
            "output": {"path": self.path, "format": self.format, "estimated_bytes": self.estimated_bytes,
                       "writer": self.writer},
            "estimated_peak_bytes": self.estimated_peak_bytes,
            "print": {"dpi": self.dpi, "bleed_px": self.bleed_px, "mm": list(self.mm),
                      "trimmed_mm": list(self.trimmed_mm)},
        }
        if self.estimated_seconds is not None:
            d["network_mpix_per_s"] = self.network_mpix_per_s
            d["estimated_seconds"] = self.estimated_seconds
        return d

    def __str__(self) -> str:
        mode = {1: "grey", 3: "RGB"}[self.bands]
        lines = [
            f"canvas    {self.width} x {self.height} px ({self.megapixels:.1f} MPix), {mode} {self.depth}-bit",
            f"tiles     {self.tile} px: {self.strips} strips x {self.tiles // self.strips} columns = {self.tiles} tiles",
            f"batches   {self.batches} of up to {self.batch_pixels} px on {self.device}",
            f"output    {self.path} ({self.format}), about {human_size(self.estimated_bytes)}, "
            f"written by {self.writer}",
            f"memory    about {human_size(self.estimated_peak_bytes)} peak",
        ]
        (w, h), (tw, th) = self.mm, self.trimmed_mm
        if self.bleed_px:
            lines.append(f"print     {w:.0f} × {h:.0f} mm with bleed, {tw:.0f} × {th:.0f} mm trimmed, "
                         f"at {self.dpi:g} dpi (bleed {self.bleed_px} px a side)")
        else:
            lines.append(f"print     {w:.0f} × {h:.0f} mm at {self.dpi:g} dpi")
        if self.estimated_seconds is not None:
            lines.append(f"time      about {human_duration(self.estimated_seconds)} "
                         f"(network measured at {self.network_mpix_per_s} MPix/s)")
        return "\n".join(lines)


def describe(job: Job, plan: Plan, device: str, rate_mpix_s: float | None) -> PlanInfo:
    """The plan of ``job``; with the network's measured speed, its time too."""
    cfg, out = job.config, job.config.output
    c = plan.canvas
    bands = cfg.network.bands
    cores = available_cores()
    seconds = None
    if rate_mpix_s:
        encode = job.fmt.encode_rate(out, cores)
        mpix = c.pixels / 1e6
        # On a CPU the network and the encoder share the cores; on a GPU they overlap.
        seconds = mpix / rate_mpix_s + (mpix / encode if device == "cpu" else 0.0)
        if device != "cpu":
            seconds = max(seconds, mpix / encode)
        seconds = round(seconds, 1)
    ps = PrintSize(c.width, c.height, c.bleed, cfg.canvas.dpi)
    return PlanInfo(
        width=c.width, height=c.height, bands=bands, depth=out.depth, tile=plan.tile, tiles=plan.tile_count,
        strips=plan.strip_count, strip_height=plan.strip_height, batches=plan.batch_count,
        batch_pixels=plan.batch_pixels, device=device, path=str(job.output), format=job.fmt.name,
        estimated_bytes=estimate_output_bytes(job.fmt, c.width, c.height, bands, out),
        writer=job.fmt.writer_text(out, cores),
        estimated_peak_bytes=estimate_peak_bytes(plan, bands, out.depth, cfg.render.queue,
                                                 max(cfg.network.hidden, default=3)),
        dpi=ps.dpi, bleed_px=ps.bleed,
        mm=tuple(round(v, 1) for v in ps.mm()), trimmed_mm=tuple(round(v, 1) for v in ps.mm(trimmed=True)),
        network_mpix_per_s=round(rate_mpix_s, 2) if rate_mpix_s else None, estimated_seconds=seconds,
    )


def measure_rate(renderer, plan: Plan, workers: int) -> float:
    """MPix/s of the network here: one 256² window timed after a warm-up, times the workers."""
    c = plan.canvas
    win = Window(0, 0, max(1, min(256, c.width)), max(1, min(256, c.height)))
    renderer.render_window(win)
    t = time.perf_counter()
    renderer.render_window(win)
    one = win.pixels / max(time.perf_counter() - t, 1e-6) / 1e6
    # workers share the cores with the encoder: count them at 80%
    return one * (1 + 0.8 * (workers - 1))


def check_disk(path, needed: int) -> None:
    """UserError when the folder of ``path`` has less than ``needed`` bytes free."""
    from pathlib import Path

    p = Path(path)
    free = shutil.disk_usage(p.parent if str(p.parent) else ".").free
    if needed > free:
        raise UserError(f"not enough free disk for {p}: about {human_size(needed)} needed, "
                        f"{human_size(free)} free; free some space or write elsewhere")


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def human_duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
