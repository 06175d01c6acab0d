"""What a clip would take, without rendering it: frames, bytes and time, measured on a few real frames.

:func:`plan_video` renders short runs of consecutive frames at the clip's start, middle and end (after one that
pays for torch's start), and encodes each with the clip's own encoder, settings and threads into a scratch
folder, as ``plan`` times a still's writer. The size is the runs' bytes scaled to the clip: a run's first frame
(a keyframe, with the container's header) once a keyframe interval, its other frames' mean for the rest. The time adds
the encoder's CPU to the rendering where both share the cores (a CPU renders on all of them), else it is the
slower of the two (a GPU renders while the CPU encodes). ``bigcppn plan -o clip.mp4 ...`` and
``bigcppn animate ... --dry-run`` print the same plan.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..formats.video.base import VideoFormat, VideoSpec
from .timeline import Timeline

__all__ = ["VideoPlan", "plan_video", "checked_request", "SAMPLE_PIXELS", "MAX_RUN"]

# Frames rendered and encoded for the estimate: three runs of about this many pixels together, each run 2 to
# MAX_RUN frames.
SAMPLE_PIXELS = 1 << 21
MAX_RUN = 8


@dataclass(frozen=True)
class VideoPlan:
    """What a clip would take: frames, size on disk, time (``plan -o clip.mp4``, ``animate --dry-run``)."""

    path: Path
    format: str
    width: int
    height: int
    frames: int
    fps: float
    bytes: int
    seconds_estimate: float | None
    render_s: float | None = None  # a frame's rendering (wall seconds)
    encode_s: float | None = None  # a frame's encoding (CPU seconds)
    preset: str | None = None

    def __str__(self) -> str:
        from ..estimate.plan import human_duration, human_size

        lines = [f"clip:    {self.path} ({self.format}{f', preset {self.preset}' if self.preset else ''})",
                 f"frames:  {self.frames} of {self.width}x{self.height} at {self.fps:g} fps "
                 f"({self.frames / self.fps:.2f} s)",
                 f"size:    about {human_size(self.bytes)}"]
        if self.seconds_estimate is None:
            lines.append("time:    unknown (not measured)")
        else:
            lines.append(f"time:    about {human_duration(self.seconds_estimate)} on this machine (a frame: "
                         f"{self.render_s * 1000:.0f} ms rendering, {self.encode_s * 1000:.0f} ms CPU encoding)")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"path": str(self.path), "format": self.format, "preset": self.preset, "width": self.width,
                "height": self.height, "frames": self.frames, "fps": self.fps, "bytes": self.bytes,
                "seconds_estimate": self.seconds_estimate, "render_seconds_a_frame": self.render_s,
                "encode_cpu_seconds_a_frame": self.encode_s}


def checked_request(timeline: Timeline, path, quality: int | None, overwrite: bool, preset: str | None = None,
                    palette: str | None = None):
    """(output path, its format, the quality) of a clip request; UserError for anything wrong with it."""
    from ..estimate.disk import free_bytes
    from ..estimate.plan import human_size
    from ..formats.video.registry import video_format_for
    from ..storage.base import is_url
    from .clip import clip_text, frame_text

    if is_url(path):  # (Path() would fold s3://b/c.mp4 into s3:/b/c.mp4, a folder "s3:" that does not exist)
        raise UserError(f"'{path}': a clip is written to a local file or folder, not to a bucket; write it here, "
                        "then upload it")
    out = Path(str(path))
    fmt = video_format_for(out)
    q = timeline.base.output.quality if quality is None else quality
    if not 1 <= q <= 100:
        raise UserError(f"--quality must be between 1 and 100, got {q}")
    c = timeline.base.canvas
    why = fmt.refusal(c.width, c.height, timeline.frames, quality is not None) or fmt.preset_refusal(preset, palette) or \
        fmt.missing()
    if why:
        raise UserError(why)
    target = fmt.target(out)
    try:
        target.probe()
    except OSError as exc:
        raise UserError(str(exc)) from None
    there = [p for p in [*fmt.produced(out), fmt.frame_name(out, 0, timeline.frames)] if p.exists()]
    if there and not overwrite and not fmt.finished_frames(out, timeline.frames, clip_text(timeline),
                                                                 lambda i: frame_text(timeline, i)):
        raise UserError(f"'{there[0]}' already exists; add --overwrite to replace it (the old one stays until the "
                        "new one is complete), or choose another -o")
    needed, free = fmt.estimate_bytes(c.width, c.height, timeline.frames, q), free_bytes(out)
    if needed > free:
        raise UserError(f"not enough free disk for {out}: about {human_size(needed)} needed, "
                        f"{human_size(free)} free; free some space or write elsewhere")
    return out, fmt, q


def _runs(timeline: Timeline) -> list[range]:
    """Short runs of consecutive frames at the clip's start, middle and end (one run for frames over 4K)."""
    c = timeline.base.canvas
    per = min(timeline.frames, MAX_RUN, max(2, math.ceil(SAMPLE_PIXELS / 3 / (c.width * c.height))))
    n = timeline.frames
    starts = sorted({0, max(0, n // 2 - per // 2), n - per}) if c.width * c.height <= 3840 * 2160 else [n // 2 - per // 2]
    return [range(max(0, s), max(0, s) + per) for s in starts]


def _encoded(fmt: VideoFormat, spec: VideoSpec, frames: list) -> tuple[int, float]:
    """(bytes, CPU seconds) of ``frames`` encoded as ``spec`` describes (its path in a scratch folder)."""
    t0 = time.process_time()
    writer = fmt.open(spec)
    try:
        for f in frames:
            writer.write(f)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    fmt.finish(spec.path, spec.text)
    spent = time.process_time() - t0
    return sum(p.stat().st_size for p in fmt.written(spec.path, len(frames)) if p.is_file()), spent


def _measure(timeline: Timeline, fmt: VideoFormat, quality: int, preset: str | None, palette: str | None,
             out: Path):
    """(bytes of the clip, wall s a frame rendering, CPU s a frame encoding), from runs of real frames.

    Each run is encoded alone, and its first frame alone: a keyframe with the container's header (counted once
    a keyframe interval), the run's other frames what a frame after a keyframe costs."""
    from .clip import clip_text
    from .frames import encoder_threads, frame_arrays

    c = timeline.base.canvas
    runs = _runs(timeline)
    for _ in frame_arrays(timeline, runs[0].start, runs[0].start + 1):  # the first frame pays for torch's start
        pass
    text = clip_text(timeline)
    rendered = encoded = 0.0
    firsts, rests, wholes, count = [], [], [], 0
    with tempfile.TemporaryDirectory(prefix=".bigcppn-plan-") as d:
        for k, run in enumerate(runs):
            t0 = time.perf_counter()
            frames = list(frame_arrays(timeline, run.start, run.stop))
            rendered += time.perf_counter() - t0

            def spec(n: int, name: str) -> VideoSpec:
                return VideoSpec(Path(d) / f"{name}{k}-{out.name}", c.width, c.height, n, timeline.fps, quality,
                                 text, lambda i: text, preset, encoder_threads(timeline), palette,
                                 lambda: frames)

            whole, spent = _encoded(fmt, spec(len(frames), "all"), frames)
            encoded += spent
            count += len(frames)
            wholes.append(whole / len(frames))
            if fmt.keyframe_interval and len(frames) > 1:
                first, _ = _encoded(fmt, spec(1, "one"), frames[:1])
                firsts.append(first)
                rests.append(max(0.0, (whole - first) / (len(frames) - 1)))
    if firsts:
        keys = math.ceil(timeline.frames / fmt.keyframe_interval)
        size = sum(firsts) / len(firsts) * keys + sum(rests) / len(rests) * (timeline.frames - keys)
    else:  # every frame stands alone (GIF, PNG frames), or a clip of one frame
        size = sum(wholes) / len(wholes) * timeline.frames
    return int(size), rendered / count, encoded / count


def plan_video(timeline: Timeline, path, *, quality: int | None = None, measure: bool = True,
               preset: str | None = None, palette: str | None = None) -> VideoPlan:
    """The frames, size and time a clip would take (see the module's docstring); UserError as render_video.

    Without ``measure`` nothing is rendered: the size is the format's rough rule, the time unknown.
    """
    from ..network.devices import pick_device, policy_for
    out, fmt, q = checked_request(timeline, path, quality, overwrite=True, preset=preset, palette=palette)
    c = timeline.base.canvas
    shown = (preset or fmt.default_preset) if fmt.presets else None
    if not measure:
        return VideoPlan(out, fmt.label, c.width, c.height, timeline.frames, timeline.fps,
                         fmt.estimate_bytes(c.width, c.height, timeline.frames, q), None, preset=shown)
    size, render, encode = _measure(timeline, fmt, q, preset, palette, out)
    if policy_for(pick_device(timeline.base.render.device)).shares_cores_with_writer:
        from ..core.system import available_cores

        a_frame = render + encode / max(1, available_cores())  # the encoder takes its share of the cores
    else:
        a_frame = max(render, encode)
    return VideoPlan(out, fmt.label, c.width, c.height, timeline.frames, timeline.fps, size,
                     a_frame * timeline.frames, render, encode, shown)
