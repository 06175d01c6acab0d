"""The animation API: :func:`render_video` (a clip file), :func:`frames` (arrays, for notebooks), :func:`plan_video`.

Everything wrong with a request (seconds, fps, size, motions, the output's name and format, an existing
output) raises :class:`~bigcppn.errors.UserError` before a frame is rendered.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..config import Config
from ..errors import UserError
from ..job import Sizing, resolve_config
from ..formats.video.base import VideoSpec
from .motions import MotionSpec, build_timeline, frame_count
from .plan import VideoPlan, checked_request, plan_video
from .timeline import Timeline

__all__ = ["render_video", "frames", "plan_video", "timeline_for", "VideoPlan", "VIDEO_SIZES"]

# --size names of video frames.
VIDEO_SIZES = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080), "1440p": (2560, 1440),
               "4k": (3840, 2160), "8k": (7680, 4320)}
DEFAULT_SIZE = "1080p"


def _sized(config, width: int | None, height: int | None, size: str | None, seed: int | None,
           overrides, device: str | None, center: str | None, from_image=None) -> Config:
    if size is not None:
        if width is not None or height is not None:
            raise UserError("give either --size or --width/--height, not both")
        key = size.lower()
        if key not in VIDEO_SIZES:
            raise UserError(f"--size '{size}' is unknown; choose from {', '.join(VIDEO_SIZES)} or give --width/--height")
        width, height = VIDEO_SIZES[key]
    if width is None and height is None:
        width, height = VIDEO_SIZES[DEFAULT_SIZE]
    extra = list(overrides or ())
    if center is not None:
        try:
            x, y = (float(v) for v in center.split(","))
        except ValueError:
            raise UserError(f"--center takes X,Y, e.g. 0.1,-0.2, got '{center}'") from None
        extra.append(f"view.center=[{x!r}, {y!r}]")
    return resolve_config(config, from_image=from_image, overrides=extra, sizing=Sizing(width=width, height=height),
                          seed=seed, device=device)


def timeline_for(config=None, *, seconds: float = 4.0, fps: float = 30.0, width: int | None = None,
                 height: int | None = None, size: str | None = None, seed: int | None = None,
                 overrides=(), device: str | None = None, center: str | None = None,
                 z_loop: float | None = None, z_walk: str | None = None, zoom: str | None = None,
                 pan: str | None = None, tween=(), ease: str = "linear", from_image=None) -> Timeline:
    """The checked timeline of a clip: ``seconds`` at ``fps`` of ``config`` moved by the motions.

    ``z_loop`` (a radius; 0 = half of network.z_scale), ``z_walk`` ("3:7:3": seeds), ``zoom`` ("1:100"),
    ``pan`` ("0,0:0.5,0"), ``tween`` (["network.weight_scale=0.5:2"]), ``ease`` (linear, smooth);
    ``center`` ("X,Y") is the view's centre (what a zoom closes in on); ``from_image``: start from the config
    of an earlier output (a still, or frame 0 of a clip).
    """
    n = frame_count(seconds, fps)
    cfg = _sized(config, width, height, size, seed, overrides, device, center, from_image)
    spec = MotionSpec(z_loop, z_walk, zoom, pan, tuple([tween] if isinstance(tween, str) else tween), ease)
    return build_timeline(cfg, n, fps, spec)


def frames(config=None, *, start: int = 0, stop: int | None = None, **clip) -> Iterator[np.ndarray]:
    """The clip's frames as (height, width, 3) uint8 arrays, one at a time (the keywords of :func:`timeline_for`).

    >>> import bigcppn
    >>> [f.shape for f in bigcppn.frames(width=32, height=18, seconds=0.1, fps=20, zoom="1:2", device="cpu")]
    [(18, 32, 3), (18, 32, 3)]
    """
    from .frames import frame_arrays

    timeline = config if isinstance(config, Timeline) else timeline_for(config, **clip)
    return frame_arrays(timeline, start, stop)


def _check_renders(timeline: Timeline) -> None:
    """The network fits and stays finite at the clip's ends and middle (UserError otherwise)."""
    from ..network.strips import renderer_for

    for i in sorted({0, timeline.frames // 2, timeline.frames - 1}):
        renderer_for(timeline.config_at(i))


def render_video(config, path, *, quality: int | None = None, overwrite: bool = False,
                 progress: Callable[[int, int], None] | None = None, executor: str = "local",
                 ray_address: str | None = None, workers: int | None = None, preset: str | None = None,
                 palette: str | None = None, **clip):
    """Render a clip to ``path``; the name picks the format (.mp4, .webm, .gif, .webp, frames/f-{frame}.png).

    The keywords of :func:`timeline_for` describe the clip (``config`` may be a :class:`Timeline` instead).
    ``quality`` (1-100) maps to the codec's own scale (default the config's output.quality, 90).
    ``preset``: the encoder's speed preset (.mp4: x264's, default superfast; .webm: VP9's, "realtime" (the
    default) or "good"); ``palette``: a GIF's, "frame" (a palette a frame, the default) or "clip" (one for the whole clip). ``progress(done, total)`` counts
    frames. Returns a :class:`~bigcppn.animate.video.ClipResult`. An MP4 or WebM longer than a segment (10 s)
    is rendered in segments kept beside it, so that the same call after an interruption resumes
    (:mod:`bigcppn.animate.segments`). ``executor="ray"`` renders the segments on Ray's
    actors (``ray_address``, ``workers`` as :func:`bigcppn.render_file`); the output folder must be shared.
    """
    from ..engines import engine_for
    from .segments import segment_bounds, write_segmented
    from .video import ClipResult, write_clip

    engine = engine_for(executor, ray_address, workers)
    timeline = config if isinstance(config, Timeline) else timeline_for(config, **clip)
    out, fmt, q = checked_request(timeline, path, quality, overwrite, preset, palette)
    _check_renders(timeline)
    c = timeline.base.canvas
    remuxable = fmt.remux_settings(VideoSpec(out, c.width, c.height, timeline.frames, timeline.fps, q, "")) is not None
    with engine.segment_runner() as runner:
        if runner is not None and not remuxable:
            raise UserError(f"{fmt.label} cannot be cut into segments for --executor ray; write .mp4 or .webm")
        if runner is None and (not remuxable or len(segment_bounds(timeline)) < 2):
            return write_clip(timeline, out, fmt, q, progress, queue=timeline.base.render.queue, preset=preset,
                              palette=palette)
        t0 = time.perf_counter()
        write_segmented(timeline, out, fmt, q, progress, runner, preset)
    size = sum(p.stat().st_size for p in fmt.written(out, timeline.frames) if p.is_file())
    return ClipResult(out, c.width, c.height, timeline.frames, timeline.fps, size, time.perf_counter() - t0)
