"""The clip formats FFmpeg encodes through PyAV: MP4 (H.264), WebM (VP9), GIF and animated WebP.

``--quality`` (1-100, default the config's output.quality, 90) maps to each codec's own scale: H.264's CRF
(51..14 at x264's preset "faster": 90 is 18, visually lossless; other presets shift it so that the same
quality gives the same PSNR, see :data:`X264_CRF_SHIFT`), VP9's CRF (63..15: 90 is 20 at VP9's preset "good",
18 at "realtime", see :data:`VP9_PRESETS`), WebP's quality (100 = lossless). ``--preset`` picks x264's speed
preset (default :data:`X264_DEFAULT_PRESET`) or VP9's (default :data:`VP9_DEFAULT_PRESET`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import FrameWriter, VideoFormat, VideoSpec
from .pyav import TAG, PyAVWriter, rate_of, read_tag

__all__ = ["H264", "VP9", "GifFormat", "AnimatedWebp", "MP4", "WEBM", "GIF", "AWEBP", "crf", "x264_crf", "X264_PRESETS",
           "VP9_PRESETS", "vp9_crf"]


def crf(quality: int, best: float, worst: float) -> int:
    """``quality`` 100 -> ``best``, 1 -> ``worst``, linearly."""
    return round(best + (100 - quality) * (worst - best) / 99)


# x264's speed presets, fastest first.
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
# The default: about a third of "faster"'s CPU a frame, so that encoding a 1080p clip hides behind rendering on
# a CPU that renders on every core (benchmarks/bench_animate.py; figures in docs/benchmarks.md).
X264_DEFAULT_PRESET = "superfast"
# CRF added to the quality's CRF at a preset, so that a quality gives about the PSNR "faster" gave it: measured
# on 1080p CPPN clips, one smooth and one detailed (docs/benchmarks.md, #18). The faster presets spend more bits
# for the same PSNR, where they lack the slower ones' psycho-visual tuning; the slower ones are left at 0.
X264_CRF_SHIFT = {"ultrafast": 3, "superfast": 2, "veryfast": -1}


def x264_crf(quality: int, preset: str) -> int:
    return max(0, min(51, crf(quality, 14, 51) + X264_CRF_SHIFT.get(preset, 0)))


# Frames of this many pixels or more: a short look-ahead, so the encoder holds few of them (8K: 50 MB each).
LARGE_FRAME = 3840 * 2160


@dataclass(frozen=True)
class H264(VideoFormat):
    def open(self, spec: VideoSpec) -> FrameWriter:
        preset = spec.preset or self.default_preset or "faster"
        opts = {"crf": str(x264_crf(spec.quality, preset)), "preset": preset}
        if spec.threads:
            opts["threads"] = str(spec.threads)
        if spec.width * spec.height >= LARGE_FRAME:
            opts["x264-params"] = "rc-lookahead=8"
        return PyAVWriter(spec, *self.muxing(spec), codec="libx264", pix_fmt="yuv420p", options=opts)

    def muxing(self, spec: VideoSpec) -> tuple[str, dict, dict]:
        return "mp4", {"movflags": "+faststart+use_metadata_tags"}, {TAG: spec.text}

    def remux_settings(self, spec: VideoSpec) -> tuple[str, dict, dict] | None:
        return self.muxing(spec)

    def read_text(self, path: Path) -> str | None:
        return read_tag(path)


# VP9's speed presets, named after libvpx's deadlines: (deadline, cpu-used, CRF added to the quality's CRF).
# "realtime" at its fastest speed spends about a quarter of "good"'s CPU a frame, so that encoding a 1080p clip
# hides behind rendering on a CPU; it spends more bits for the same PSNR, and its CRF is 2 lower so that a quality
# gives about the PSNR "good" gives it (1080p CPPN clips, one smooth and one detailed: docs/benchmarks.md, #18).
# "good" at cpu-used 4 is the slower, smaller default of before; its slower speeds (cpu-used 2) cost 1.6x more
# CPU for the same bytes and PSNR on those clips, so they are not offered.
VP9_PRESETS = {"realtime": ("realtime", 8, -2), "good": ("good", 4, 0)}
VP9_DEFAULT_PRESET = "realtime"


def vp9_crf(quality: int, preset: str) -> int:
    return max(0, min(63, crf(quality, 15, 63) + VP9_PRESETS[preset][2]))


@dataclass(frozen=True)
class VP9(VideoFormat):
    def open(self, spec: VideoSpec) -> FrameWriter:
        preset = spec.preset or self.default_preset or VP9_DEFAULT_PRESET
        deadline, speed, _shift = VP9_PRESETS[preset]
        opts = {"crf": str(vp9_crf(spec.quality, preset)), "b": "0", "row-mt": "1", "deadline": deadline,
                "cpu-used": str(speed)}
        if spec.threads:
            opts["threads"] = str(spec.threads)
        if spec.width * spec.height >= LARGE_FRAME:
            opts["lag-in-frames"] = "8"  # ("realtime" holds no frames back at all)
        return PyAVWriter(spec, *self.remux_settings(spec), codec="libvpx-vp9", pix_fmt="yuv420p", options=opts)

    def remux_settings(self, spec: VideoSpec) -> tuple[str, dict, dict]:
        return "webm", {}, {TAG: spec.text}

    def read_text(self, path: Path) -> str | None:
        return read_tag(path)


def _palette_graph(writer: PyAVWriter):
    """split -> palettegen (one palette a frame) -> paletteuse (dithered): RGB in, pal8 out."""
    import av

    spec = writer.spec
    g = av.filter.Graph()
    src = g.add_buffer(width=spec.width, height=spec.height, format="rgb24", time_base=1 / rate_of(spec.fps))
    split = g.add("split")
    gen = g.add("palettegen", "stats_mode=single:max_colors=256")
    use = g.add("paletteuse", "new=1:dither=sierra2_4a")
    sink = g.add("buffersink")
    src.link_to(split)
    split.link_to(gen, 0, 0)
    split.link_to(use, 1, 0)
    gen.link_to(use, 0, 1)
    use.link_to(sink)
    g.configure()
    return g.push, g.pull


def clip_palette(frames, width: int, height: int, fps: float):
    """One palette (a 16x16 frame of 256 colours) for all of ``frames``: palettegen over their colours together."""
    import av

    g = av.filter.Graph()
    src = g.add_buffer(width=width, height=height, format="rgb24", time_base=1 / rate_of(fps))
    gen = g.add("palettegen", "stats_mode=full:max_colors=256")
    sink = g.add("buffersink")
    src.link_to(gen)
    gen.link_to(sink)
    g.configure()
    for i, f in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f if f.shape[2] == 3 else np.repeat(f, 3, axis=2)),
                                        format="rgb24")
        vf.pts = i
        src.push(vf)
    src.push(None)
    palette = sink.pull()
    # a frame of its own: the graph that made this one (and owns its buffers) is going away
    return av.VideoFrame.from_ndarray(palette.to_ndarray(), format=palette.format.name)


def _clip_palette_graph(writer: PyAVWriter):
    """paletteuse (dithered) with one palette for the clip, made from frames spread over it (``spec.sample``)."""
    import av

    spec = writer.spec
    palette = clip_palette(spec.sample(), spec.width, spec.height, spec.fps)
    g = av.filter.Graph()
    src = g.add_buffer(width=spec.width, height=spec.height, format="rgb24", time_base=1 / rate_of(spec.fps))
    pal = g.add_buffer(width=palette.width, height=palette.height, format=palette.format.name,
                       time_base=1 / rate_of(spec.fps))
    use = g.add("paletteuse", "dither=sierra2_4a")
    sink = g.add("buffersink")
    src.link_to(use, 0, 0)
    pal.link_to(use, 0, 1)
    use.link_to(sink)
    g.configure()
    palette.pts = 0
    pal.push(palette)
    pal.push(None)  # the one palette, kept for every frame

    def pull(graph=g):  # (holds the graph: its filters' contexts alone do not keep it alive)
        return sink.pull()

    return src.push, pull


@dataclass(frozen=True)
class GifFormat(VideoFormat):
    """Dithered (Sierra 2-4A) with a palette a frame (the default: truer colours in each frame, 2-3 dB more
    PSNR, but each frame's own dithering may flicker), or one palette for the whole clip (``--palette clip``:
    palettegen over frames spread across it, one global colour table, steady colours); a frame's delay is whole
    1/100 s."""

    def open(self, spec: VideoSpec) -> FrameWriter:
        per_clip = (spec.palette or self.default_palette) == "clip" and spec.sample is not None
        return PyAVWriter(spec, "gif", {"loop": "0"}, codec="gif", pix_fmt="pal8", options={},
                          graph=_clip_palette_graph if per_clip else _palette_graph)

    def lossy(self, quality: int) -> bool:
        return True  # 256 colours a frame


@dataclass(frozen=True)
class AnimatedWebp(VideoFormat):
    def open(self, spec: VideoSpec) -> FrameWriter:
        if spec.quality >= 100:
            return PyAVWriter(spec, "webp", {"loop": "0"}, codec="libwebp_anim", pix_fmt="bgra",
                              options={"lossless": "1"})
        return PyAVWriter(spec, "webp", {"loop": "0"}, codec="libwebp_anim", pix_fmt="yuv420p",
                          options={"quality": str(spec.quality)})

    def lossy(self, quality: int) -> bool:
        return quality < 100


MP4 = H264("mp4", (".mp4", ".m4v"), "MP4 (H.264)", even_sides=True, max_side=8192 * 2, in_tags=True,
           bits_per_pixel=0.08, presets=X264_PRESETS, default_preset=X264_DEFAULT_PRESET, keyframe_interval=250)
WEBM = VP9("webm", (".webm",), "WebM (VP9)", even_sides=True, max_side=16384, in_tags=True, bits_per_pixel=0.06,
           keyframe_interval=128, presets=tuple(VP9_PRESETS), default_preset=VP9_DEFAULT_PRESET)
GIF = GifFormat("gif", (".gif",), "GIF", max_side=4096, max_clip_pixels=150_000_000, has_quality=False,
                bits_per_pixel=3.0, palettes=("frame", "clip"), default_palette="frame")
AWEBP = AnimatedWebp("webp", (".webp",), "animated WebP", max_side=16383, bits_per_pixel=0.6)
