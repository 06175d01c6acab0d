"""Long clips in segments of whole GOPs, kept beside the output, resumed after an interruption, remuxed at the end.

A clip of more than one segment (:data:`SEGMENT_SECONDS` of frames) in a format that can be remuxed (MP4,
WebM) is encoded one segment at a time, each a file of its own that starts with a keyframe, into the hidden
folder ``.NAME.segments/`` beside the output; a segment appears there (renamed from a partial name) only when
complete, with ``clip.json`` recording which clip they belong to. Run the same command again after Ctrl-C or
a crash and the finished segments are kept: rendering resumes at the first missing one. When all are there,
their packets are copied into the final container, timestamps shifted, never re-encoded, under the output's
hidden temporary name, which is renamed over the output; then the folder is removed.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

from ..core.atomic import partial_name, write_atomic
from ..formats.video.base import VideoFormat, VideoSpec
from .clip import clip_text
from .frames import Prefetch, encoder_threads, frame_arrays
from .timeline import Timeline

__all__ = ["SEGMENT_SECONDS", "segment_folder", "segment_bounds", "write_segmented", "SegmentJob", "encode_segment"]

# Seconds of frames in a segment (whole GOPs: every segment starts with a keyframe).
SEGMENT_SECONDS = 10.0


def segment_folder(path: Path) -> Path:
    return path.with_name(f".{path.name}.segments")


def segment_bounds(timeline: Timeline, seconds: float | None = None) -> list[tuple[int, int]]:
    """(start, stop) frames of each segment (of ``seconds``, default :data:`SEGMENT_SECONDS`)."""
    per = max(1, round((seconds or SEGMENT_SECONDS) * timeline.fps))
    return [(s, min(timeline.frames, s + per)) for s in range(0, timeline.frames, per)]


def _folder_for(path: Path, text: str) -> Path:
    """The segments folder of this clip; an earlier one of another clip (or settings) is cleared."""
    folder = segment_folder(path)
    stamp = folder / "clip.json"
    if folder.is_dir():
        try:
            same = stamp.read_text(encoding="utf-8") == text
        except OSError:
            same = False
        if not same:
            shutil.rmtree(folder)
    folder.mkdir(exist_ok=True)
    if not stamp.exists():
        write_atomic(stamp, text)
    return folder


def _encode(timeline: Timeline, fmt: VideoFormat, spec: VideoSpec, start: int, stop: int, seg: Path,
            progress: Callable[[], None]) -> None:
    """Frames ``start .. stop`` as the segment file ``seg`` (written under a partial name, then renamed)."""
    tmp = partial_name(seg)
    writer = fmt.open(VideoSpec(tmp, spec.width, spec.height, stop - start, spec.fps, spec.quality, spec.text,
                                preset=spec.preset, threads=encoder_threads(timeline)))
    frames = Prefetch(lambda cancel: frame_arrays(timeline, start, stop, cancel=cancel), timeline.base.render.queue)
    try:
        for frame in frames:
            writer.write(frame)
            progress()
        writer.close()
        tmp.replace(seg)
    except BaseException:
        frames.cancel()
        writer.abort()
        tmp.unlink(missing_ok=True)
        raise


def _remux(segments: list[tuple[Path, int]], out: Path, fps: float, container: str, options: dict, tags: dict) -> None:
    """The segments' packets, timestamps shifted by each segment's first frame, in one container at ``out``."""
    import av

    from ..formats.video.pyav import rate_of

    with av.open(str(segments[0][0])) as first:
        dst = av.open(str(out), "w", format=container, options=options)
        stream = dst.add_stream_from_template(first.streams.video[0])
    try:
        for k, v in tags.items():
            dst.metadata[k] = v
        next_dts = None
        for seg, start in segments:
            with av.open(str(seg)) as src:
                s = src.streams.video[0]
                shift = round(Fraction(start) / rate_of(fps) / s.time_base)
                dts_shift = None
                for packet in src.demux(s):
                    if packet.dts is None:  # the demuxer's end marker
                        continue
                    if dts_shift is None:
                        # Decode times carry on from the last segment's, where that keeps them before the
                        # presentation times: a short last segment has fewer B-frames to wait for.
                        dts_shift = shift if next_dts is None else min(shift, next_dts - packet.dts)
                    packet.pts += shift
                    packet.dts += dts_shift
                    next_dts = packet.dts + (packet.duration or 1)
                    packet.stream = stream
                    dst.mux(packet)
    finally:
        dst.close()


@dataclass(frozen=True)
class SegmentJob:
    """One segment to render and encode, wherever it runs (an actor rebuilds the network from the config)."""

    timeline: Timeline
    fmt: VideoFormat
    spec: VideoSpec
    start: int
    stop: int
    path: Path


def encode_segment(job: SegmentJob) -> int:
    """Render and encode one segment into its file; the frames it holds."""
    _encode(job.timeline, job.fmt, job.spec, job.start, job.stop, job.path, lambda: None)
    return job.stop - job.start


def write_segmented(timeline: Timeline, path: Path, fmt: VideoFormat, quality: int,
                    progress: Callable[[int, int], None] | None = None, executor=None,
                    preset: str | None = None) -> None:
    """Render ``timeline`` to ``path`` in segments (resuming finished ones), then remux; atomic.

    ``executor``: one whose ``map_ordered`` runs :func:`encode_segment` (Ray's actors), or None: here, one
    segment after another, the progress counted a frame at a time.
    """
    c = timeline.base.canvas
    text = clip_text(timeline)
    folder = _folder_for(path, json.dumps({"clip": text, "quality": quality, "format": fmt.name,
                                           "preset": preset or fmt.default_preset}))
    spec = VideoSpec(path, c.width, c.height, timeline.frames, timeline.fps, quality, text, preset=preset)
    segments = [(folder / f"seg-{k:05d}{path.suffix}", start) for k, (start, _stop) in enumerate(segment_bounds(timeline))]
    jobs = [SegmentJob(timeline, fmt, spec, start, stop, seg)
            for (seg, start), (_s, stop) in zip(segments, segment_bounds(timeline)) if not seg.is_file()]
    done = timeline.frames - sum(j.stop - j.start for j in jobs)  # finished by an earlier run
    if progress is not None:
        progress(done, timeline.frames)

    def step(n: int = 1) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, timeline.frames)

    if executor is None:
        for job in jobs:
            _encode(timeline, fmt, spec, job.start, job.stop, job.path, step)
    else:
        actors = len(getattr(executor, "actors", ())) or getattr(executor, "workers", 1)
        for _job, n in executor.map_ordered(encode_segment, jobs, actors):
            step(n)
    target = fmt.target(path)
    target.prepare()
    try:
        container, options, tags = fmt.remux_settings(spec)
        _remux(segments, target.temp, timeline.fps, container, options, tags)
        fmt.finish(target.temp, text)
        target.commit()
    except BaseException:
        target.cleanup()
        raise
    shutil.rmtree(folder, ignore_errors=True)
