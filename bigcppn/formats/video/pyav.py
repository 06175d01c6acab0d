"""The frame writer of every PyAV (FFmpeg) clip: frames in, encoded packets muxed into a container.

PyAV converts each RGB frame to the codec's pixel format (yuv420p, pal8 ...) itself; an optional filter graph
(a GIF's per-frame palette) goes between. FFmpeg's encoders run threads of their own, so encoding overlaps the
rendering thread that hands the frames over.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from .base import VideoSpec

__all__ = ["PyAVWriter", "rate_of", "TAG"]

# The container tag that holds the clip's config and timeline (Matroska upper-cases it).
TAG = "bigcppn"


def rate_of(fps: float) -> Fraction:
    """``fps`` as the exact fraction a container stores (29.97 -> 30000/1001)."""
    return Fraction(fps).limit_denominator(1001)


class PyAVWriter:
    """One video stream in a container at ``spec.path``.

    ``container``: the muxer (mp4, webm, gif, webp) and its options; ``codec``, ``pix_fmt`` and
    ``options`` the encoder; ``tags`` the container's metadata; ``graph(stream)`` an optional PyAV filter
    graph factory that returns (push, pull) for the frames on their way to the encoder.
    """

    def __init__(self, spec: VideoSpec, container: str, container_options: dict[str, str] | None = None,
                 tags: dict[str, str] | None = None, *, codec: str, pix_fmt: str, options: dict[str, str],
                 graph: Callable | None = None) -> None:
        import av

        self.spec = spec
        self.out = av.open(str(spec.path), "w", format=container, options=container_options or {})
        self.stream = self.out.add_stream(codec, rate=rate_of(spec.fps), options=options)
        self.stream.width, self.stream.height, self.stream.pix_fmt = spec.width, spec.height, pix_fmt
        for k, v in (tags or {}).items():
            self.out.metadata[k] = v
        self.filters = graph(self) if graph is not None else None
        self.count = 0

    def write(self, frame: np.ndarray) -> None:
        import av

        if frame.shape[2] == 1:
            frame = np.repeat(frame, 3, axis=2)
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts = self.count
        vf.time_base = 1 / rate_of(self.spec.fps)
        self.count += 1
        if self.filters is not None:
            push, pull = self.filters
            push(vf)
            vf = pull()
            vf.pts, vf.time_base = self.count - 1, 1 / rate_of(self.spec.fps)
        elif self.stream.pix_fmt == "yuv420p":  # chroma averaged over each 2x2 block, not point-sampled
            vf = vf.reformat(format="yuv420p", interpolation="AREA")
            vf.pts, vf.time_base = self.count - 1, 1 / rate_of(self.spec.fps)
        self.out.mux(self.stream.encode(vf))

    def close(self) -> None:
        self.out.mux(self.stream.encode(None))
        self.out.close()

    def abort(self) -> None:
        try:
            self.out.close()
        except Exception:  # the file is being given up
            pass


def read_tag(path: Path) -> str | None:
    """The clip's config text from its container's tags, or None."""
    import av

    try:
        with av.open(str(path)) as c:
            tags = {k.lower(): v for k, v in c.metadata.items()}
    except (av.FFmpegError, OSError, UnicodeError):
        return None
    return tags.get(TAG)
