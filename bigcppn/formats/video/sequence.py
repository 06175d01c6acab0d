"""A frame sequence: ``-o frames/f-{frame}.png``, one PNG a frame, each written whole or not at all.

Every PNG carries the config of its own frame (as a still does), so ``render --from frames/f-0030.png`` renders
it again at any size; a ``NAME.bigcppn.json`` sidecar (the pattern's name with the field taken out) holds the
clip's config and timeline. The frames are exact: the pixels ``render_array`` gives.

It resumes: while frames are being written, a hidden stamp beside them (``.NAME.bigcppn.json.writing``) holds
the clip's config and timeline; the sidecar replaces it when the last frame is written. A run of the same clip
that finds the stamp keeps the frames before the first missing one (each was written whole) and renders the
rest; another clip's stamp, or none, starts from frame 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...core.atomic import partial_name
from .base import FrameWriter, VideoFormat, VideoSpec, sidecar_path

__all__ = ["FrameSequence", "SEQUENCE", "FRAME_FIELD"]

# In an output name, replaced by the frame number, zero-padded to the clip's length: f-{frame}.png
FRAME_FIELD = "{frame}"


class _SequenceTarget:
    """Frames are written one file at a time (each atomically); there is no clip file to rename."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temp = path

    def probe(self) -> None:
        from ...core.limits import check_output_name

        check_output_name(self.path)
        if not self.path.parent.is_dir():
            raise OSError(f"output directory '{self.path.parent}' does not exist; create it first")

    def prepare(self) -> None:
        pass

    def commit(self) -> None:
        pass

    def cleanup(self) -> None:
        pass  # finished frames are whole files, kept (a partial one is removed by its writer)


class _PngWriter:
    def __init__(self, spec: VideoSpec, fmt: "FrameSequence") -> None:
        from ...core.atomic import write_atomic

        self.spec, self.fmt, self.count = spec, fmt, spec.first
        write_atomic(fmt.stamp(spec.path), spec.text)  # these frames are this clip's, until the sidecar says so

    def write(self, frame: np.ndarray) -> None:
        import pyvips

        from ...config import OutputConfig
        from ..raster import PNG

        path = self.fmt.frame_name(self.spec.path, self.count, self.spec.frames)
        text = self.spec.frame_texts(self.count) if self.spec.frame_texts else None
        tmp = partial_name(path)
        image = pyvips.Image.new_from_array(np.ascontiguousarray(frame))
        image = image.copy(interpretation="srgb" if frame.shape[2] == 3 else "b-w")
        try:
            PNG.save(image, tmp, OutputConfig(), description=text)
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self.count += 1

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def _carries(frame: Path, text: str) -> bool:
    """Whether the PNG ``frame`` is there and carries ``text`` (its frame's config) in its text chunk."""
    import pyvips

    from ..provenance import PNG_KEY

    if not frame.is_file():
        return False
    try:
        image = pyvips.Image.new_from_file(str(frame))
        tail = PNG_KEY.split("-")[-1]
        return any(image.get(k) == text for k in image.get_fields()
                   if k.startswith("png-comment-") and k.endswith(f"-{tail}"))
    except pyvips.Error:
        return False


@dataclass(frozen=True)
class FrameSequence(VideoFormat):
    def frame_name(self, path: Path, i: int, frames: int) -> Path:
        return path.with_name(path.name.replace(FRAME_FIELD, f"{i:0{len(str(frames - 1))}d}"))

    def produced(self, path: Path) -> list[Path]:
        return [self.sidecar(path)]

    def written(self, path: Path, frames: int) -> list[Path]:
        return [self.sidecar(path), *(self.frame_name(path, i, frames) for i in range(frames))]

    def sidecar(self, path: Path) -> Path:
        return sidecar_path(path.with_name(path.name.replace(FRAME_FIELD, "frames")))

    def stamp(self, path: Path) -> Path:
        side = self.sidecar(path)
        return side.with_name(f".{side.name}.writing")

    def finished_frames(self, path: Path, frames: int, text: str, frame_texts) -> int:
        try:
            same = self.stamp(path).read_text(encoding="utf-8") == text
        except (OSError, UnicodeError):
            same = False
        done = 0  # (a frame must carry its own config: one left by another clip that an --overwrite run of this
        # one had not yet reached when it was interrupted is not this clip's)
        while same and done < frames and _carries(self.frame_name(path, done, frames), frame_texts(done)):
            done += 1
        return done

    def target(self, path: Path):
        return _SequenceTarget(path)

    def open(self, spec: VideoSpec) -> FrameWriter:
        return _PngWriter(spec, self)

    def lossy(self, quality: int) -> bool:
        return False

    def missing(self) -> str | None:
        return None  # pyvips writes the PNGs

    def finish(self, path: Path, text: str) -> None:
        self.sidecar(path).write_text(text, encoding="utf-8")
        self.stamp(path).unlink(missing_ok=True)

    def read_text(self, path: Path) -> str | None:
        side = self.sidecar(path)
        return side.read_text(encoding="utf-8") if side.is_file() else None


SEQUENCE = FrameSequence("frames", (".png",), "PNG frame sequence", max_side=2**31 - 1, has_quality=False,
                         bits_per_pixel=12.0)
