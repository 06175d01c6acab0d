"""The timeline of an animation: motions in, the config of frame ``i`` out. Pure: no torch, no files.

How frames map to time: frame ``i`` is shown at ``i / fps`` seconds. An open motion (zoom, pan, tween, z-walk)
runs from its first value on frame 0 to its last on the last frame, ``u = i / (frames - 1)``, through the
easing (``linear``: constant speed; ``smooth``: smoothstep, starting and stopping gently). A loop (z-loop)
goes round once in ``frames`` steps, ``u = i / frames``, always at constant speed, so the frame after the
last would be the first again.

Every motion sets keys of a plain config dict; :meth:`Timeline.config_at` applies them all to the base
config and validates the result, so frame ``i`` is an ordinary :class:`~bigcppn.config.Config` that
``render_array`` renders as a still. Motions round-trip through plain dicts (:func:`motion_from_dict`), which
is how a clip carries its timeline in its metadata.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..config import Config, config_from_dict, config_to_dict
from ..errors import UserError

__all__ = ["EASES", "ease", "Motion", "ZLoop", "ZWalk", "Zoom", "Pan", "Tween", "Timeline", "MOTIONS",
           "motion_from_dict", "lerp"]


def _smooth(u: float) -> float:
    return u * u * (3.0 - 2.0 * u)


EASES = {"linear": lambda u: u, "smooth": _smooth}


def ease(name: str, u: float) -> float:
    """``u`` in [0, 1] through the easing ``name`` (0 -> 0, 1 -> 1)."""
    return EASES[name](min(1.0, max(0.0, u)))


def lerp(a: float, b: float, t: float) -> float:
    """From ``a`` (t = 0) to ``b`` (t = 1), exactly ``b`` at 1."""
    return b if t >= 1.0 else a + (b - a) * t


def _set(d: dict, dotted: str, value: Any) -> None:
    node = d
    *parents, last = dotted.split(".")
    for p in parents:
        node = node[p]
    node[last] = value


def _get(d: dict, dotted: str) -> Any:
    node = d
    for p in dotted.split("."):
        node = node[p]
    return node


@dataclass(frozen=True)
class Motion(ABC):
    """One change over the clip: sets config keys at each instant. Subclasses name their kind and keys."""

    kind: ClassVar[str] = ""
    loops: ClassVar[bool] = False  # a closed loop: u = i / frames, never eased
    eases_itself: ClassVar[bool] = False  # takes the plain u and eases its own stretches

    @abstractmethod
    def keys(self) -> tuple[str, ...]:
        """The dotted config keys it sets (two motions may not set the same one)."""

    @abstractmethod
    def apply(self, d: dict, u: float) -> None:
        """Set its keys in the config dict ``d`` at progress ``u`` (already eased, in [0, 1])."""

    def to_dict(self) -> dict:
        out = {"kind": self.kind}
        out.update({k: (list(map(list, v)) if k == "zs" else list(v) if isinstance(v, tuple) else v)
                    for k, v in self.__dict__.items()})
        return out


@dataclass(frozen=True)
class ZLoop(Motion):
    """A circle through z-space around ``center``, in the plane of the orthonormal ``u``, ``v``."""

    kind: ClassVar[str] = "z-loop"
    loops: ClassVar[bool] = True
    radius: float
    center: tuple[float, ...]
    u: tuple[float, ...]
    v: tuple[float, ...]

    def keys(self) -> tuple[str, ...]:
        return ("network.z",)

    def apply(self, d: dict, u: float) -> None:
        a = 2.0 * math.pi * u
        c, s = self.radius * math.cos(a), self.radius * math.sin(a)
        _set(d, "network.z", [z + c * p + s * q for z, p, q in zip(self.center, self.u, self.v)])


@dataclass(frozen=True)
class ZWalk(Motion):
    """Through the latent vectors ``zs`` in turn, each stretch eased on its own."""

    kind: ClassVar[str] = "z-walk"
    eases_itself: ClassVar[bool] = True
    zs: tuple[tuple[float, ...], ...]
    easing: str = "linear"

    def keys(self) -> tuple[str, ...]:
        return ("network.z",)

    def apply(self, d: dict, u: float) -> None:
        legs = len(self.zs) - 1
        at = min(legs - 1, int(u * legs)) if legs > 0 else 0
        t = ease(self.easing, u * legs - at) if legs > 0 else 0.0
        a, b = self.zs[at], self.zs[min(at + 1, legs)]
        _set(d, "network.z", [lerp(p, q, t) for p, q in zip(a, b)])


@dataclass(frozen=True)
class Zoom(Motion):
    """``view.zoom`` from ``start`` to ``end`` exponentially: every frame scales by the same factor."""

    kind: ClassVar[str] = "zoom"
    start: float
    end: float

    def keys(self) -> tuple[str, ...]:
        return ("view.zoom",)

    def apply(self, d: dict, u: float) -> None:
        _set(d, "view.zoom", self.end if u >= 1.0 else self.start * (self.end / self.start) ** u)


@dataclass(frozen=True)
class Pan(Motion):
    """``view.center`` from ``start`` to ``end`` in a straight line."""

    kind: ClassVar[str] = "pan"
    start: tuple[float, float]
    end: tuple[float, float]

    def keys(self) -> tuple[str, ...]:
        return ("view.center",)

    def apply(self, d: dict, u: float) -> None:
        _set(d, "view.center", [lerp(a, b, u) for a, b in zip(self.start, self.end)])


@dataclass(frozen=True)
class Tween(Motion):
    """Any numeric config key from ``start`` to ``end`` (whole-number keys are rounded)."""

    kind: ClassVar[str] = "tween"
    key: str
    start: float
    end: float
    whole: bool = False

    def keys(self) -> tuple[str, ...]:
        return (self.key,)

    def apply(self, d: dict, u: float) -> None:
        v = lerp(self.start, self.end, u)
        _set(d, self.key, round(v) if self.whole else v)


MOTIONS: dict[str, type[Motion]] = {m.kind: m for m in (ZLoop, ZWalk, Zoom, Pan, Tween)}


def motion_from_dict(d: dict) -> Motion:
    """The motion a :meth:`Motion.to_dict` made; UserError for anything else."""
    try:
        cls = MOTIONS[d["kind"]]
        values = {k: v for k, v in d.items() if k != "kind"}
        for k, v in values.items():
            if isinstance(v, list):
                values[k] = tuple(tuple(x) if isinstance(x, list) else x for x in v)
        return cls(**values)
    except (KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"the clip's timeline has a motion bigcppn cannot read ({exc}); "
                        "was it written by another version?") from None


@dataclass(frozen=True)
class Timeline:
    """A clip: ``frames`` frames at ``fps`` of the base config moved by ``motions``."""

    base: Config
    frames: int
    fps: float
    motions: tuple[Motion, ...] = ()
    easing: str = "linear"
    _base_dict: dict = field(default=None, init=False, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise UserError(f"a clip needs at least one frame, got {self.frames}")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise UserError(f"--fps must be a positive number, got {self.fps}")
        if self.easing not in EASES:
            raise UserError(f"--ease '{self.easing}' is unknown; choose from {', '.join(EASES)}")
        seen: dict[str, str] = {}
        for m in self.motions:
            for k in m.keys():
                if k in seen:
                    raise UserError(f"{seen[k]} and {m.kind} both move {k}; give only one of them")
                seen[k] = m.kind
        object.__setattr__(self, "_base_dict", config_to_dict(self.base))

    @property
    def seconds(self) -> float:
        return self.frames / self.fps

    def progress(self, i: int, loops: bool = False) -> float:
        """Frame ``i``'s place in the clip, in [0, 1]: ``i / frames`` for a loop, else ``i / (frames - 1)``."""
        if loops:
            return i / self.frames
        return i / (self.frames - 1) if self.frames > 1 else 0.0

    def values_at(self, i: int) -> dict:
        """The config dict of frame ``i``."""
        if not 0 <= i < self.frames:
            raise UserError(f"frame {i} is not in the clip; it has frames 0 to {self.frames - 1}")
        d = copy.deepcopy(self._base_dict)
        for m in self.motions:
            u = self.progress(i, m.loops)
            m.apply(d, u if m.loops or m.eases_itself else ease(self.easing, u))
        return d

    def config_at(self, i: int) -> Config:
        """The config of frame ``i``: what ``render_array`` renders as that frame's still."""
        return config_from_dict(self.values_at(i))

    def value(self, i: int, key: str) -> Any:
        return _get(self.values_at(i), key)

    def to_dict(self) -> dict:
        """The timeline without its base config (which a clip carries as its own config)."""
        return {"frames": self.frames, "fps": self.fps, "ease": self.easing,
                "motions": [m.to_dict() for m in self.motions]}

    @classmethod
    def from_dict(cls, base: Config, d: dict) -> "Timeline":
        try:
            return cls(base, int(d["frames"]), float(d["fps"]), tuple(motion_from_dict(m) for m in d["motions"]),
                       str(d.get("ease", "linear")))
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"the clip's timeline cannot be read ({exc}); was it written by another version?") \
                from None
