"""From the explore page to the product: the print file and the pyramid a page asks for, as jobs.

Both go through the API the CLI uses (:func:`bigcppn.plan`, :func:`bigcppn.render_file`,
:func:`bigcppn.render_pyramid`), with sizes read by the CLI's own rules
(:class:`~bigcppn.job.Sizing`: paper, DPI, bleed, or pixels). The page names settings, never paths:
the output's name is the job's (``job-N-seedS.EXT``, or the folder ``job-N/``) under the output folder.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..config import Config
from ..errors import UserError
from ..job import Sizing, resolve_config
from .jobs import Job

__all__ = ["PRINT_FORMATS", "PYRAMID_LAYOUTS", "VIDEO_FORMATS", "print_config", "print_plan", "print_job",
           "pyramid_job", "video_job"]

PRINT_FORMATS = ("tif", "png", "jpg", "pdf")
PYRAMID_LAYOUTS = ("dz", "iiif3", "zoomify", "google")
MAX_PYRAMID_SIDE = 1 << 20
VIDEO_FORMATS = ("mp4", "webm", "gif")
# Clips from the page are at most one segment long, so a cancelled one is one temporary file, removed.
MAX_VIDEO_SECONDS = 10.0


def _int(q: dict, key: str) -> int | None:
    v = q.get(key, "")
    if v == "":
        return None
    if not v.isdigit() or len(v) > 10:
        raise UserError(f"{key} must be a whole number of pixels, got '{v[:20]}'")
    return int(v)


def _float(q: dict, key: str) -> float | None:
    v = q.get(key, "")
    if v == "":
        return None
    try:
        f = float(v)
    except ValueError:
        raise UserError(f"{key} must be a number, got '{v[:20]}'") from None
    if not math.isfinite(f):
        raise UserError(f"{key} must be a finite number")
    return f


def print_config(cfg: Config, q: dict) -> tuple[Config, str]:
    """The config of a print (paper or pixels, DPI, bleed, CMYK) and its file extension."""
    ext = q.get("format", "tif")
    if ext not in PRINT_FORMATS:
        raise UserError(f"format '{ext[:10]}' is not offered here; choose {', '.join(PRINT_FORMATS)}")
    paper = q.get("paper") or None
    width, height = _int(q, "width"), _int(q, "height")
    if paper is not None and (width or height):
        raise UserError("give a paper size or pixels, not both")
    sizing = Sizing(width=width, height=height, size=paper, dpi=_float(q, "dpi"),
                    landscape=q.get("landscape") == "1", bleed=q.get("bleed") or None)
    output = {"cmyk": "cmyk"} if q.get("cmyk") == "1" else {}
    return resolve_config(cfg, sizing=sizing, output=output), ext


def print_plan(cfg: Config, q: dict, out: Path) -> dict:
    """What the print would take: pixels, time and bytes (:func:`bigcppn.plan`, measured here)."""
    from ..api import plan

    pcfg, ext = print_config(cfg, q)
    info = plan(pcfg, out / f"plan-seed{pcfg.seed}.{ext}", measure=True)
    return {"width": info.width, "height": info.height, "megapixels": info.megapixels,
            "seconds": info.estimated_seconds, "bytes": info.estimated_bytes, "format": info.format,
            "dpi": info.dpi, "mm": info.mm, "writer": info.writer}


def print_job(cfg: Config, q: dict, out: Path, job_id: int) -> Job:
    """A job that renders the print to ``out/job-N-seedS.EXT`` (checked now: UserError)."""
    from ..api import plan, render_file

    pcfg, ext = print_config(cfg, q)
    path = out / f"job-{job_id}-seed{pcfg.seed}.{ext}"
    plan(pcfg, path, measure=False)  # what the render would refuse, refused before it waits in the queue

    def run(job: Job) -> str:
        render_file(pcfg, path, progress=job.progress)
        return path.name

    c = pcfg.canvas
    return Job(job_id, "print", f"{path.name} ({c.width}x{c.height})", run, None)


def pyramid_job(cfg: Config, q: dict, out: Path, job_id: int) -> Job:
    """A job that renders a pyramid into ``out/job-N/``; its result is the viewer page."""
    from ..api import render_pyramid

    layout = q.get("layout", "dz")
    if layout not in PYRAMID_LAYOUTS:
        raise UserError(f"layout '{layout[:10]}' is not offered here; choose {', '.join(PYRAMID_LAYOUTS)}")
    side = _int(q, "size") or 4096
    if not 64 <= side <= MAX_PYRAMID_SIDE:
        raise UserError(f"a pyramid's longer side must be 64 to {MAX_PYRAMID_SIDE} px, got {side}")
    c = cfg.canvas
    sizing = Sizing(width=side) if c.width >= c.height else Sizing(height=side)
    pcfg = resolve_config(cfg, sizing=sizing)
    folder = out / f"job-{job_id}"
    path = folder / ("pyramid.dzi" if layout == "dz" else "pyramid")

    def run(job: Job) -> str:
        folder.mkdir()
        r = render_pyramid(pcfg, path, layout=layout, progress=lambda p: job.progress(p.samples, p.samples_total))
        return Path(r.page).resolve().relative_to(out.resolve()).as_posix()

    pc = pcfg.canvas
    return Job(job_id, "pyramid", f"{folder.name}/ ({layout}, {pc.width}x{pc.height})", run, folder)


def video_job(cfg: Config, q: dict, out: Path, job_id: int) -> Job:
    """A job that renders a clip (:func:`bigcppn.render_video`) to ``out/job-N-seedS.EXT``; checked now."""
    from ..animate.api import render_video, timeline_for

    ext = q.get("format", "mp4")
    if ext not in VIDEO_FORMATS:
        raise UserError(f"format '{ext[:10]}' is not offered here; choose {', '.join(VIDEO_FORMATS)}")
    seconds, fps = _float(q, "seconds") or 4.0, _float(q, "fps") or 30.0
    if not 0 < seconds <= MAX_VIDEO_SECONDS:
        raise UserError(f"seconds must be more than 0 and at most {MAX_VIDEO_SECONDS:g} here "
                        "(longer clips: bigcppn animate)")
    c = cfg.canvas
    side = _int(q, "size") or 640
    if not 16 <= side <= 8192:
        raise UserError(f"a clip's longer side must be 16 to 8192 px, got {side}")
    # both sides even (H.264 and VP9 take yuv420p), the canvas's shape kept as near as that allows
    side -= side % 2
    other = max(2, 2 * round(side * min(c.width, c.height) / max(c.width, c.height) / 2))
    size = {"width": side, "height": other} if c.width >= c.height else {"width": other, "height": side}
    clip = dict(seconds=seconds, fps=fps, zoom=q.get("zoom") or None, ease=q.get("ease") or "linear",
                z_loop=_float(q, "z_loop"), tween=[q["tween"]] if q.get("tween") else [], **size)
    timeline = timeline_for(cfg, **clip)  # every motion checked before the job waits in the queue
    path = out / f"job-{job_id}-seed{cfg.seed}.{ext}"

    def run(job: Job) -> str:
        render_video(timeline, path, progress=job.progress)
        return path.name

    tc = timeline.base.canvas
    return Job(job_id, "video", f"{path.name} ({tc.width}x{tc.height}, {timeline.frames} frames)", run, None)
