"""What a clip carries about itself: its config and timeline as JSON, and reading them back (``--from``).

``{"generator": ..., "config": {...}, "animation": {"frames", "fps", "ease", "motions": [...]}}``, in an
MP4's or WebM's tags, else in a ``NAME.bigcppn.json`` sidecar beside the clip. ``--from clip.mp4 --frame 30``
takes frame 30's config: the timeline replayed on the clip's base config.
"""

from __future__ import annotations

import json
from pathlib import Path

from .._version import __version__
from ..config import Config, config_from_dict, config_to_dict
from ..core.limits import parse_json
from ..errors import ConfigError, UserError
from .timeline import Timeline

__all__ = ["clip_text", "frame_text", "read_clip", "is_clip", "frame_config"]


def clip_text(timeline: Timeline) -> str:
    return json.dumps({"generator": f"bigcppn {__version__}", "config": config_to_dict(timeline.base),
                       "animation": timeline.to_dict()}, indent=1)


def frame_text(timeline: Timeline, i: int) -> str:
    """A frame's own config, as a still embeds it."""
    from ..formats.provenance import config_text

    return config_text(timeline.config_at(i))


def is_clip(path: str | Path) -> bool:
    """Whether ``path`` is a clip bigcppn wrote (by its name, and for .webp, by its sidecar)."""
    from ..formats.video.registry import clip_format

    fmt = clip_format(path)
    return fmt is not None and (fmt.in_tags or fmt.read_text(Path(path)) is not None)


def read_clip(path: str | Path) -> Timeline:
    """The timeline (with its base config) of the clip at ``path``; UserError when it carries none."""
    from ..formats.video.registry import clip_format

    p = Path(path)
    fmt = clip_format(p)
    if not p.is_file():
        raise UserError(f"--from {p}: no such file")
    text = fmt.read_text(p) if fmt is not None else None
    if text is None:
        raise UserError(f"--from {p}: the clip carries no bigcppn config (was it written by bigcppn animate? a "
                        "GIF or WebP keeps it in NAME.bigcppn.json beside it)")
    doc = parse_json(text, f"--from {p}")
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict) or not isinstance(
            doc.get("animation"), dict):
        raise UserError(f"--from {p}: its bigcppn metadata has no config or timeline")
    try:
        base = config_from_dict(doc["config"])
    except ConfigError as exc:
        raise UserError(f"--from {p}: the clip's config cannot be used: {exc}") from None
    return Timeline.from_dict(base, doc["animation"])


def frame_config(path: str | Path, frame: int | None) -> Config:
    """The config of frame ``frame`` (default 0) of the clip at ``path``."""
    timeline = read_clip(path)
    i = 0 if frame is None else frame
    if not 0 <= i < timeline.frames:
        raise UserError(f"--frame {i}: {path} has frames 0 to {timeline.frames - 1}")
    return timeline.config_at(i)
