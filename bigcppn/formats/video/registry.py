"""The clip formats, found by the output's name: one :class:`~bigcppn.formats.video.base.VideoFormat` each.

``-o clip.mp4`` (H.264), ``.webm`` (VP9), ``.gif``, ``.webp`` (animated), and ``frames/f-{frame}.png`` (a PNG a
frame). A new one is a VideoFormat in a module of its own, registered with :func:`register_video_format`.
"""

from __future__ import annotations

from pathlib import Path

from ...core.limits import check_output_name
from ...errors import UserError
from .base import VideoFormat
from .codecs import AWEBP, GIF, MP4, WEBM
from .sequence import FRAME_FIELD, SEQUENCE

__all__ = ["VIDEO_FORMATS", "register_video_format", "video_format_for", "clip_format", "FRAME_FIELD"]

VIDEO_FORMATS: dict[str, VideoFormat] = {}
_BY_EXTENSION: dict[str, VideoFormat] = {}
# Formats of a file a frame, found by the extension of a name holding {frame}.
_SEQUENCES: dict[str, VideoFormat] = {}


def register_video_format(fmt: VideoFormat, per_frame: bool = False) -> VideoFormat:
    """Make ``fmt`` the clip format of its extensions (``per_frame``: of names holding ``{frame}``)."""
    VIDEO_FORMATS[fmt.name] = fmt
    for ext in fmt.extensions:
        (_SEQUENCES if per_frame else _BY_EXTENSION)[ext] = fmt
    return fmt


for _fmt in (MP4, WEBM, GIF, AWEBP):
    register_video_format(_fmt)
register_video_format(SEQUENCE, per_frame=True)


def video_format_for(path: str | Path) -> VideoFormat:
    """The clip format ``path`` names; UserError for one bigcppn does not write."""
    check_output_name(path)
    p = Path(path)
    ext = p.suffix.lower()
    if FRAME_FIELD in p.name:
        if ext in _SEQUENCES:
            return _SEQUENCES[ext]
        raise UserError(f"a frame sequence is written as PNG: name it like frames/f-{FRAME_FIELD}.png, not '{p.name}'")
    if ext in _BY_EXTENSION:
        return _BY_EXTENSION[ext]
    known = ", ".join(sorted(_BY_EXTENSION))
    what = f"extension '{ext}'" if ext else "no extension"
    raise UserError(f"clip '{path}' has {what}; write one of {known}, or a frame sequence such as "
                    f"frames/f-{FRAME_FIELD}.png")


def clip_format(path: str | Path) -> VideoFormat | None:
    """The clip format of an existing file (for ``--from``), or None when the name is no clip's."""
    p = Path(path)
    return _BY_EXTENSION.get(p.suffix.lower()) if FRAME_FIELD not in p.name else _SEQUENCES.get(p.suffix.lower())
