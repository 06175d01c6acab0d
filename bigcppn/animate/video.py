"""Writing a clip: frames rendered on a thread a few ahead, encoded as they come, the file renamed when complete.

The renderer (:func:`~bigcppn.animate.frames.frame_arrays` inside a :class:`~bigcppn.animate.frames.Prefetch`)
runs on its own thread, at most ``queue`` frames ahead of the encoder on this one, so memory holds a few
frames whatever the clip's length, and encoding overlaps rendering. The clip is written under a hidden
temporary name beside the output and renamed over it only when complete (the format's target); on any
failure, Ctrl-C included, the renderer is stopped, the writer aborted and the temporary removed.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..formats.video.base import VideoFormat, VideoSpec
from .clip import clip_text, frame_text
from .frames import Prefetch, encoder_threads, frame_arrays, sample_frames
from .timeline import Timeline

__all__ = ["ClipResult", "write_clip"]


@dataclass(frozen=True)
class ClipResult:
    """What :func:`bigcppn.render_video` wrote."""

    path: Path
    width: int
    height: int
    frames: int
    fps: float
    bytes: int
    seconds: float  # wall time of the render
    rendered: int | None = None  # frames rendered by this run (a resumed one kept the others), None: all

    @property
    def frames_per_s(self) -> float:
        done = self.frames if self.rendered is None else self.rendered
        return done / self.seconds if self.seconds > 0 else float("inf")


def write_clip(timeline: Timeline, path: Path, fmt: VideoFormat, quality: int,
               progress: Callable[[int, int], None] | None = None, device=None, queue: int = 2,
               preset: str | None = None, palette: str | None = None) -> ClipResult:
    """Render ``timeline`` into ``path`` as ``fmt``; atomic (see the module's docstring)."""
    from ..formats.target import writing

    c = timeline.base.canvas
    t0 = time.perf_counter()
    target = fmt.target(path)
    text = clip_text(timeline)
    spec = VideoSpec(target.temp, c.width, c.height, timeline.frames, timeline.fps, quality, text,
                     lambda i: frame_text(timeline, i), preset, encoder_threads(timeline, device), palette,
                     lambda: sample_frames(timeline, device))
    first = fmt.finished_frames(target.temp, timeline.frames, text, spec.frame_texts)  # a frame sequence resumed: kept as they are
    spec = dataclasses.replace(spec, first=first)
    frames = Prefetch(lambda cancel: frame_arrays(timeline, first, device=device, cancel=cancel), queue)
    writer = None
    try:
        target.prepare()
        writer = writing(target, lambda: fmt.open(spec))
        if progress is not None and first:
            progress(first, timeline.frames)
        for i, frame in enumerate(frames, first):
            writing(target, lambda: writer.write(frame))
            if progress is not None:
                progress(i + 1, timeline.frames)
        writing(target, writer.close)
        writer = None
        fmt.finish(target.temp, text)
        target.commit()
    except BaseException:
        frames.cancel()
        if writer is not None:
            writer.abort()
        target.cleanup()
        raise
    size = sum(p.stat().st_size for p in fmt.written(path, timeline.frames) if p.is_file())
    return ClipResult(path, c.width, c.height, timeline.frames, timeline.fps, size, time.perf_counter() - t0,
                      timeline.frames - first)
