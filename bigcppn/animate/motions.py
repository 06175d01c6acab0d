"""From what a person asks for (``--zoom 1:100``, ``--tween network.weight_scale=0.5:2``) to a checked timeline.

:class:`MotionSpec` holds the motions as text, the way the command line and the API take them;
:func:`build_timeline` reads and checks them against the config (one :class:`UserError` line for anything
wrong, before rendering) and resolves what needs the network's own draws: the config's latent z, the z of
each seed of a walk (as :class:`~bigcppn.network.model.CPPN` draws them), and the loop's two directions.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace

from ..config import Config, config_to_dict
from ..errors import ConfigError, UserError
from .timeline import EASES, Motion, Pan, Timeline, Tween, ZLoop, ZWalk, Zoom

__all__ = ["MotionSpec", "build_timeline", "frame_count", "TWEEN_SECTIONS"]

# The sections whose numbers may be tweened: the picture. (The canvas is the video's size, the rest how it
# is rendered and written.) z_size changes the network's shape; the seed redraws it: neither is smooth.
TWEEN_SECTIONS = ("network", "view")
NOT_TWEENED = {"network.z_size": "it changes the network's shape", "seed": "another seed is another network"}
# A frame count no clip needs more of (an hour at 60 fps is 216000).
MAX_FRAMES = 1_000_000


@dataclass(frozen=True)
class MotionSpec:
    """The motions of a clip as text. ``z_loop``: the radius (0 = the default, half of network.z_scale)."""

    z_loop: float | None = None
    z_walk: str | None = None
    zoom: str | None = None
    pan: str | None = None
    tween: tuple[str, ...] = field(default_factory=tuple)
    ease: str = "linear"


def frame_count(seconds: float, fps: float) -> int:
    """Frames in ``seconds`` at ``fps`` (rounded; at least one); UserError for a zero or negative value."""
    for name, v in (("--seconds", seconds), ("--fps", fps)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise UserError(f"{name} must be a positive number, got {v}")
    n = round(seconds * fps)
    if n < 1:
        raise UserError(f"{seconds:g} s at {fps:g} fps is less than one frame; give more --seconds or --fps")
    if n > MAX_FRAMES:
        raise UserError(f"{seconds:g} s at {fps:g} fps is {n} frames; bigcppn renders at most {MAX_FRAMES} a clip")
    return n


def _numbers(text: str, flag: str, count: int | None = None, sep: str = ":") -> list[float]:
    try:
        vals = [float(p) for p in text.split(sep)]
    except ValueError:
        vals = []
    if not vals or not all(math.isfinite(v) for v in vals) or (count is not None and len(vals) != count):
        want = f"{count} numbers" if count else "numbers"
        raise UserError(f"{flag} takes {want} separated by '{sep}', got '{text}'")
    return vals


def _point(text: str, flag: str) -> tuple[float, float]:
    x, y = _numbers(text, flag, 2, ",")
    return (x, y)


def _zoom(text: str) -> Zoom:
    a, b = _numbers(text, "--zoom FROM:TO", 2)
    if a <= 0 or b <= 0:
        raise UserError(f"--zoom FROM:TO must be positive zoom factors (1 = the whole view), got '{text}'")
    return Zoom(a, b)


def _pan(text: str) -> Pan:
    if text.count(":") != 1:
        raise UserError(f"--pan takes X0,Y0:X1,Y1, got '{text}'")
    a, b = text.split(":")
    return Pan(_point(a, "--pan X0,Y0:X1,Y1"), _point(b, "--pan X0,Y0:X1,Y1"))


def _tween(text: str, data: dict) -> Tween:
    key, sep, span = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UserError(f"--tween takes KEY=A:B, e.g. network.weight_scale=0.5:2, got '{text}'")
    if key in NOT_TWEENED:
        raise UserError(f"--tween {key}: {NOT_TWEENED[key]}; tween a number of network.* or view.*")
    node = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise UserError(f"--tween {key}: there is no such config key; tween one of network.* or view.*, "
                            "e.g. network.weight_scale")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        raise UserError(f"--tween {key}: the key is not a number (it is {type(node).__name__}); only numeric "
                        "keys can be tweened (--pan moves view.center, --z-walk network.z)")
    if key.split(".")[0] not in TWEEN_SECTIONS:
        raise UserError(f"--tween {key}: only the picture's keys (network.*, view.*) can be tweened")
    a, b = _numbers(span, f"--tween {key}=A:B", 2)
    return Tween(key, a, b, whole=isinstance(node, int))


def _latent(cfg: Config, seed: int) -> tuple[float, ...]:
    """The latent z a render of ``cfg`` with ``seed`` uses (drawn from the seed unless the config gives it)."""
    from ..network.model import CPPN

    return tuple(float(v) for v in CPPN(cfg.network, seed).z)


def _needs_z(cfg: Config, flag: str) -> None:
    if "z" not in cfg.network.inputs:
        inputs = ",".join(f'"{n}"' for n in (*cfg.network.inputs, "z"))
        raise UserError(f"{flag} moves the latent vector z, but network.inputs ({', '.join(cfg.network.inputs)}) "
                        f"has no z; add it: --set 'network.inputs=[{inputs}]'")


def _z_loop(cfg: Config, radius: float) -> ZLoop:
    _needs_z(cfg, "--z-loop")
    if not (math.isfinite(radius) and radius >= 0):
        raise UserError(f"--z-loop RADIUS must be a positive number, got {radius}")
    radius = radius or 0.5 * (cfg.network.z_scale or 1.0)
    center = _latent(cfg, cfg.seed)
    n = len(center)
    rng = random.Random(f"bigcppn z-loop {cfg.seed}")
    u = [rng.gauss(0, 1) for _ in range(n)]
    v = [rng.gauss(0, 1) for _ in range(n)]
    nu = math.sqrt(sum(x * x for x in u)) or 1.0
    u = [x / nu for x in u]
    dot = sum(a * b for a, b in zip(u, v))
    v = [b - dot * a for a, b in zip(u, v)]  # Gram-Schmidt: v orthogonal to u
    nv = math.sqrt(sum(x * x for x in v))
    v = [x / nv for x in v] if n > 1 and nv > 0 else [0.0] * n  # one z: back and forth on its line
    return ZLoop(radius, center, tuple(u), tuple(v))


def _z_walk(cfg: Config, text: str, easing: str) -> ZWalk:
    _needs_z(cfg, "--z-walk")
    try:
        seeds = [int(s) for s in text.split(":")]
    except ValueError:
        seeds = []
    if len(seeds) < 2 or any(not 0 <= s < 2**63 for s in seeds):
        raise UserError(f"--z-walk takes two or more seeds separated by ':', e.g. 3:7:3, got '{text}'")
    drawn = replace(cfg.network, z=())  # every seed's own z, not the config's
    return ZWalk(tuple(_latent(Config(seed=s, network=drawn), s) for s in seeds), easing)


def build_timeline(cfg: Config, frames: int, fps: float, spec: MotionSpec) -> Timeline:
    """The checked :class:`Timeline` of ``spec`` on ``cfg``; UserError for anything wrong, before rendering."""
    if spec.ease not in EASES:
        raise UserError(f"--ease '{spec.ease}' is unknown; choose from {', '.join(EASES)}")
    if spec.z_loop is not None and spec.z_walk is not None:
        raise UserError("--z-loop and --z-walk both move the latent z; give one of them")
    motions: list[Motion] = []
    if spec.z_loop is not None:
        motions.append(_z_loop(cfg, spec.z_loop))
    if spec.z_walk is not None:
        motions.append(_z_walk(cfg, spec.z_walk, spec.ease))
    if spec.zoom is not None:
        motions.append(_zoom(spec.zoom))
    if spec.pan is not None:
        motions.append(_pan(spec.pan))
    data = config_to_dict(cfg)
    motions.extend(_tween(t, data) for t in spec.tween)
    timeline = Timeline(cfg, frames, fps, tuple(motions), spec.ease)
    for i in {0, frames // 2, frames - 1}:  # the ends of every motion (and a loop's far side) must be valid
        try:
            timeline.config_at(i)
        except ConfigError as exc:
            raise UserError(f"at frame {i} of the clip: {exc}") from None
    return timeline
