"""The :class:`VideoFormat` every clip format is, and what its writers are opened with.

A video format owns every decision about itself, as a still :class:`~bigcppn.formats.base.Format` does: the
frame sizes and clip lengths it refuses, whether it is lossy and what ``--quality`` means to it, the files it
makes, how the clip carries its config and timeline (its container's tags, or a ``NAME.bigcppn.json`` sidecar),
and how its frames are encoded. Callers look it up (:func:`bigcppn.formats.video.registry.video_format_for`)
and ask it. Pure knowledge at import: PyAV and pyvips load inside the methods that write or read.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ...core.limits import read_bounded, size_text

__all__ = ["VideoFormat", "VideoSpec", "FrameWriter", "sidecar_path"]


def sidecar_path(path: Path) -> Path:
    """``NAME.EXT.bigcppn.json`` beside a clip (a GIF and a WebP of one name do not share it)."""
    return path.with_name(path.name + ".bigcppn.json")


class FrameWriter(Protocol):
    """Frames in, a clip out."""

    def write(self, frame: np.ndarray) -> None:
        """The next (height, width, bands) uint8 frame."""

    def close(self) -> None:
        """Finish the clip (raises if it could not be written)."""

    def abort(self) -> None:
        """Give up; what was written is the caller's to remove."""


@dataclass(frozen=True)
class VideoSpec:
    """What a frame writer is opened with."""

    path: Path
    width: int
    height: int
    frames: int
    fps: float
    quality: int
    text: str  # the clip's config and timeline (JSON)
    frame_texts: object = None  # frame index -> that frame's config text (stills that carry their own)
    preset: str | None = None  # the encoder's speed preset (None: the format's default)
    threads: int = 0  # the encoder's threads (0: its own choice; 1 where rendering already takes every core)
    palette: str | None = None  # a palette format's: one for the whole "clip", or one a "frame" (None: its default)
    sample: object = None  # () -> frames spread over the clip (rendered when called), for a palette of the clip
    first: int = 0  # the index of the first frame written (a resumed frame sequence starts after its finished ones)


@dataclass(frozen=True)
class VideoFormat(ABC):
    """One clip format. The defaults describe a PyAV container that holds its config in its tags."""

    name: str
    extensions: tuple[str, ...]
    label: str
    even_sides: bool = False  # chroma subsampled (yuv420p): width and height must be even
    max_side: int = 16384
    max_clip_pixels: int = 0  # all frames' pixels together at most (0: no limit)
    has_quality: bool = True  # --quality means something to it
    in_tags: bool = False  # the config goes in the container's tags (else a sidecar)
    bits_per_pixel: float = 0.1  # rough size of the file, for --dry-run
    keyframe_interval: int = 0  # frames a keyframe at most (0: every frame stands alone), for estimates
    presets: tuple[str, ...] = ()  # the encoder speed presets --preset names (none: it takes no --preset)
    default_preset: str | None = None
    palettes: tuple[str, ...] = ()  # the --palette choices of a format of indexed colours (none: no --palette)
    default_palette: str | None = None

    # ---------------------------------------------------------------- what it refuses

    def refusal(self, width: int, height: int, frames: int, quality_given: bool) -> str | None:
        """Why a clip of these frames cannot be written in this format (one line), or None."""
        if max(width, height) > self.max_side:
            return f"{self.label} holds frames of at most {self.max_side} px a side; {width}x{height} is larger"
        if self.even_sides and (width % 2 or height % 2):
            even = f"{width + width % 2}x{height + height % 2}"
            return (f"{self.label} is yuv420p, which needs an even width and height; {width}x{height} is odd: "
                    f"give --width/--height {even} (or {width - width % 2}x{height - height % 2})")
        if self.max_clip_pixels and width * height * frames > self.max_clip_pixels:
            return (f"a {self.label} of {frames} frames of {width}x{height} is {width * height * frames / 1e6:.0f} "
                    f"MPix, over its budget of {self.max_clip_pixels / 1e6:.0f} MPix (it would be huge and slow to "
                    f"play); make it smaller (--width), shorter (--seconds, --fps), or write .mp4 or .webm")
        if quality_given and not self.has_quality:
            return f"{self.label} has no quality setting; leave --quality out"
        return None

    def preset_refusal(self, preset: str | None, palette: str | None = None) -> str | None:
        """Why ``--preset`` or ``--palette`` cannot be given to this format (one line), or None."""
        for flag, value, choices, what, where in (("--preset", preset, self.presets, "encoder preset", ".mp4 or .webm"),
                                                  ("--palette", palette, self.palettes, "palette", ".gif")):
            if value is None or value in choices:
                continue
            if not choices:
                return f"{self.label} has no {what}; leave {flag} out (it is for {where})"
            return f"{flag} '{value}' is unknown to {self.label}; choose one of {', '.join(choices)}"
        return None

    def lossy(self, quality: int) -> bool:
        return True

    def missing(self) -> str | None:
        """Why this machine cannot write the format (one line), or None. FFmpeg's formats need PyAV."""
        import importlib.util

        if importlib.util.find_spec("av") is None:
            return f"writing {self.label} needs PyAV: pip install \"bigcppn[video]\" (or pip install av)"
        return None

    # ---------------------------------------------------------------- what it costs

    def estimate_bytes(self, width: int, height: int, frames: int, quality: int) -> int:
        return int(width * height * frames * self.bits_per_pixel * (1 + quality / 50) / 8) + 4096

    def size_words(self, width: int, height: int, frames: int, quality: int) -> str:
        return size_text(self.estimate_bytes(width, height, frames, quality))

    # ---------------------------------------------------------------- where it goes

    def produced(self, path: Path) -> list[Path]:
        """The paths a clip at ``path`` makes, the one that marks it complete last (the sidecar first)."""
        return [path] if self.in_tags else [sidecar_path(path), path]

    def written(self, path: Path, frames: int) -> list[Path]:
        """Every file a finished clip at ``path`` of ``frames`` frames consists of."""
        return self.produced(path)

    def target(self, path: Path):
        """Where the writer writes, renamed over ``path`` when complete (an :class:`OutputTarget`)."""
        from ..target import OutputTarget

        return OutputTarget(path, self)  # type: ignore[arg-type]  (it asks only produced())

    def frame_name(self, path: Path, i: int, frames: int) -> Path:
        """Where frame ``i`` is written as a file of its own (only a frame sequence has them)."""
        return path

    def finished_frames(self, path: Path, frames: int, text: str, frame_texts) -> int:
        """How many frames an interrupted run of this very clip (``text``; ``frame_texts(i)``: frame i's own
        config) left finished at ``path``, to be kept by a rerun (only a format of a file a frame resumes so; a
        clip file is whole or absent)."""
        return 0

    # ---------------------------------------------------------------- how it is written and read

    @abstractmethod
    def open(self, spec: VideoSpec) -> FrameWriter:
        """The writer of this clip's frames, in order."""

    def remux_settings(self, spec: VideoSpec) -> tuple[str, dict, dict] | None:
        """(muxer, its options, tags) when segments of this format can be remuxed into one clip, else None."""
        return None

    def finish(self, path: Path, text: str) -> None:
        """After the writer closed: the sidecar where the container has no room for the config."""
        if not self.in_tags:
            sidecar_path(path).write_text(text, encoding="utf-8")

    def read_text(self, path: Path) -> str | None:
        """The config and timeline text the clip at ``path`` carries, or None."""
        side = sidecar_path(path)
        if not side.is_file():
            return None
        return read_bounded(side, f"--from {path}: the sidecar").decode("utf-8", "replace")
