"""Configuration: frozen dataclasses, loaded from TOML, overridden with ``--set``.

Every field has a default, so an empty file (or no file) is the article's
network: inputs x and y, 8 hidden layers of 16, tanh, a sigmoid output, weights
and biases drawn from N(0, 1), the view spanning [-0.5, 0.5] on the shorter
side. Unknown keys and wrong types are rejected by their dotted name.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core import limits
from .errors import ConfigError
from .core.limits import describe
from .core.tomltext import toml_value
from .core.typed import build

__all__ = [
    "ACTIVATIONS",
    "Config",
    "CanvasConfig",
    "NetworkConfig",
    "OutputConfig",
    "RenderConfig",
    "ViewConfig",
    "load_config",
    "parse_override",
    "config_from_dict",
    "config_to_dict",
    "dump_toml",
]

ACTIVATIONS = ("tanh", "sigmoid", "sin", "gauss", "relu", "softplus", "abs", "identity")
INPUTS = ("x", "y", "r", "z")
INITS = ("default", "uniform", "normal")
COLORS = ("rgb", "grey", "hsv")
DEVICES = ("auto", "cpu", "cuda")
KERNELS = ("auto", "triton", "eager")
INTENTS = ("perceptual", "relative", "saturation", "absolute")


@dataclass(frozen=True)
class NetworkConfig:
    """The CPPN: which inputs, how deep and wide, which activations, how initialised."""

    inputs: tuple[str, ...] = ("x", "y")
    hidden: tuple[int, ...] = (16,) * 8
    activation: str | tuple[str, ...] = "tanh"
    output_activation: str = "sigmoid"
    color: str = "rgb"
    # true, false, or "first": a bias on the first layer only (the article's notebook)
    bias: bool | str = True
    # "default" is PyTorch's nn.Linear: uniform(±1/sqrt(fan_in)); "uniform" is
    # uniform(±scale); "normal" is N(0, scale²).
    weight_init: str = "normal"
    weight_scale: float = 1.0
    bias_init: str = "normal"
    bias_scale: float = 1.0
    # The latent vector, used when "z" is among the inputs: given values, or
    # z_size values drawn uniform(±z_scale) from the seed.
    z_size: int = 8
    z: tuple[float, ...] = ()
    z_scale: float = 1.0

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ConfigError("network.inputs is empty; give at least one of x, y, r, z")
        for name in self.inputs:
            if name not in INPUTS:
                raise ConfigError(f"network.inputs has unknown input '{name}'; choose from {', '.join(INPUTS)}")
        if len(set(self.inputs)) != len(self.inputs):
            raise ConfigError("network.inputs lists an input twice")
        if len(self.hidden) > limits.MAX_LAYERS:
            raise ConfigError(f"network.hidden must be at most {limits.MAX_LAYERS} layers, got {len(self.hidden)}")
        for w in self.hidden:
            if w < 1:
                raise ConfigError(f"network.hidden widths must be at least 1, got {w}")
            if w > limits.MAX_HIDDEN_WIDTH:
                raise ConfigError(f"network.hidden widths must be at most {limits.MAX_HIDDEN_WIDTH}, "
                                  f"got {describe(w)}")
        acts = self.activations
        if len(acts) != len(self.hidden):
            raise ConfigError(
                f"network.activation lists {len(acts)} activations for {len(self.hidden)} hidden layers; "
                "give one name, or one per layer"
            )
        named = (self.activation,) if isinstance(self.activation, str) else self.activation
        for name in (*named, self.output_activation):  # (named even with no hidden layer to use it)
            if name not in ACTIVATIONS:
                raise ConfigError(f"unknown activation '{name}'; choose from {', '.join(ACTIVATIONS)}")
        if isinstance(self.bias, str) and self.bias != "first":
            raise ConfigError(f"network.bias must be true, false or \"first\", got '{self.bias}'")
        if self.color not in COLORS:
            raise ConfigError(f"network.color '{self.color}' is unknown; choose from {', '.join(COLORS)}")
        for key in ("weight_init", "bias_init"):
            if getattr(self, key) not in INITS:
                raise ConfigError(f"network.{key} '{getattr(self, key)}' is unknown; choose from {', '.join(INITS)}")
        for key in ("weight_scale", "bias_scale", "z_scale"):
            v = getattr(self, key)
            if not (math.isfinite(v) and 0 <= v <= limits.MAX_SCALE):
                raise ConfigError(f"network.{key} must be a finite number from 0 to {limits.MAX_SCALE:g}, "
                                  f"got {describe(v)}")
        if not 0 <= self.z_size <= limits.MAX_Z_SIZE:
            raise ConfigError(f"network.z_size must be between 0 and {limits.MAX_Z_SIZE}, got {describe(self.z_size)}")
        if len(self.z) > limits.MAX_Z_SIZE:
            raise ConfigError(f"network.z must be at most {limits.MAX_Z_SIZE} numbers, got {len(self.z)}")
        if not all(math.isfinite(v) for v in self.z):
            raise ConfigError("network.z must be finite numbers, without nan or inf")
        if "z" in self.inputs:
            if self.z and len(self.z) != self.z_size:
                raise ConfigError(f"network.z has {len(self.z)} values but network.z_size is {self.z_size}")
            if self.z_size < 1:
                raise ConfigError("network.z_size must be at least 1 when the inputs include z")

    @property
    def activations(self) -> tuple[str, ...]:
        """One activation name per hidden layer."""
        if isinstance(self.activation, str):
            return (self.activation,) * len(self.hidden)
        return tuple(self.activation)

    @property
    def bands(self) -> int:
        return 1 if self.color == "grey" else 3

    @property
    def input_count(self) -> int:
        return sum(self.z_size if n == "z" else 1 for n in self.inputs)


@dataclass(frozen=True)
class ViewConfig:
    """The part of the plane shown: at zoom 1 the shorter side spans [-0.5, 0.5]."""

    center: tuple[float, float] = (0.0, 0.0)
    zoom: float = 1.0

    def __post_init__(self) -> None:
        if len(self.center) != 2:
            raise ConfigError(f"view.center needs two numbers [x, y], got {len(self.center)}")
        if not all(math.isfinite(c) and abs(c) <= limits.MAX_CENTER for c in self.center):
            raise ConfigError(f"view.center must be finite numbers within ±{limits.MAX_CENTER:g}, "
                              f"got {describe(self.center)}")
        if not (math.isfinite(self.zoom) and 1 / limits.MAX_ZOOM <= self.zoom <= limits.MAX_ZOOM):
            raise ConfigError(f"view.zoom must be a positive number from {1 / limits.MAX_ZOOM:g} to "
                              f"{limits.MAX_ZOOM:g}, got {describe(self.zoom)}")


@dataclass(frozen=True)
class CanvasConfig:
    """The size of the picture in pixels, with its print resolution and bleed.

    ``bleed`` pixels on every side extend the picture past the trim edge: the
    view is fitted to the trimmed canvas, and the network carries on outside it.
    """

    width: int = 4096
    height: int = 4096
    bleed: int = 0
    dpi: float = 300.0

    def __post_init__(self) -> None:
        for key in ("width", "height"):
            v = getattr(self, key)
            if not 1 <= v <= 2**31 - 1:
                raise ConfigError(f"canvas.{key} must be between 1 and 2147483647 pixels, got {describe(v)}")
        if self.bleed < 0:
            raise ConfigError(f"canvas.bleed must be >= 0 pixels, got {describe(self.bleed)}")
        if not 2 * self.bleed < min(self.width, self.height):
            raise ConfigError(f"canvas.bleed of {self.bleed} px leaves no picture on a {self.width}x{self.height} canvas")
        lo, hi = limits.DPI_RANGE
        if not (math.isfinite(self.dpi) and lo <= self.dpi <= hi):
            raise ConfigError(f"canvas.dpi must be a positive number from {lo:g} to {hi:g}, got {self.dpi:g}")


@dataclass(frozen=True)
class RenderConfig:
    """How the canvas is cut and evaluated."""

    tile: int = 256
    device: str = "auto"
    # Pixels evaluated in one device batch; 0 picks a size for the device.
    batch: int = 0
    # Strips queued between the renderer and the encoder.
    queue: int = 2
    # Strips rendered at once on a CPU (one torch thread each); 0 = one per core.
    # On CUDA, 0 = two: one strip is computed while the other is copied to the host.
    workers: int = 0
    # The network on CUDA: "auto" = the fused Triton kernel when it supports the
    # network, else PyTorch; "triton" insists on the kernel; "eager" = PyTorch.
    kernel: str = "auto"

    def __post_init__(self) -> None:
        if not 1 <= self.tile <= 65536:
            raise ConfigError(f"render.tile must be between 1 and 65536, got {describe(self.tile)}")
        if self.device not in DEVICES:
            raise ConfigError(f"render.device '{self.device}' is unknown; choose from {', '.join(DEVICES)}")
        if not 0 <= self.batch <= limits.MAX_BATCH:
            raise ConfigError(f"render.batch must be between 0 (automatic) and {limits.MAX_BATCH} pixels, "
                              f"got {describe(self.batch)}")
        if not 0 <= self.workers <= 256:
            raise ConfigError(f"render.workers must be between 0 (one per core) and 256, "
                              f"got {describe(self.workers)}")
        if not 1 <= self.queue <= 16:
            raise ConfigError(f"render.queue must be between 1 and 16, got {describe(self.queue)}")
        if self.kernel not in KERNELS:
            raise ConfigError(f"render.kernel '{self.kernel}' is unknown; choose from {', '.join(KERNELS)}")


# The names output.compression takes (TIFF and PDF; the formats decide what each means), the lossy ones,
# and the tile formats of output.dz_suffix. Names only: the codecs live in bigcppn.formats.
COMPRESSIONS = ("none", "lzw", "deflate", "jpeg")
LOSSY_COMPRESSIONS = frozenset({"jpeg"})
TILE_SUFFIXES = ("jpeg", "png", "webp")
PDFX = ("auto", "x4", "off")


@dataclass(frozen=True)
class OutputConfig:
    """How the file is written."""

    compression: str = "deflate"  # TIFF: none, lzw, deflate, jpeg
    quality: int = 90  # JPEG / WebP / DeepZoom tiles
    depth: int = 8  # bits per sample: 8, or 16 for TIFF and PNG
    tiff_tile: int = 256
    dz_tile: int = 254
    dz_overlap: int = 1
    dz_suffix: str = "jpeg"  # DeepZoom tile format: jpeg, png, webp
    pyramid: bool = True  # TIFF: reduced levels after the full one; false: one page (a flat tiled TIFF)
    # CMYK output through an ICC output profile: "" (RGB or grey), "cmyk" (libvips' built-in CMYK
    # profile) or the path of a CMYK .icc file; with the rendering intent of the conversion.
    cmyk: str = ""
    intent: str = "relative"
    crop_marks: bool = False  # PDF: crop marks outside the bleed
    # PDF: "x4" writes PDF/X-4 (a print output intent, the dates and the version keys), "off" a plain PDF,
    # "auto" PDF/X-4 with --cmyk. Left out of the embedded config at "auto" (as before it existed).
    pdfx: str = field(default="auto", metadata={"omit_default": True})

    @property
    def wants_pdfx(self) -> bool:
        """Whether a PDF of these settings claims PDF/X-4 (asked for, or by default with CMYK)."""
        return self.pdfx == PDFX[1] or (self.pdfx == PDFX[0] and bool(self.cmyk))

    def __post_init__(self) -> None:
        if self.pdfx not in PDFX:
            raise ConfigError(f"output.pdfx '{self.pdfx}' is unknown; choose from {', '.join(PDFX)}")
        if self.compression not in COMPRESSIONS:
            raise ConfigError(
                f"output.compression '{self.compression}' is unknown; choose from {', '.join(COMPRESSIONS)}"
            )
        if not 1 <= self.quality <= 100:
            raise ConfigError(f"output.quality must be between 1 and 100, got {describe(self.quality)}")
        if self.depth not in (8, 16):
            raise ConfigError(f"output.depth must be 8 or 16, got {describe(self.depth)}")
        if self.tiff_tile % 16 or not 16 <= self.tiff_tile <= 8192:
            raise ConfigError(f"output.tiff_tile must be a multiple of 16 from 16 to 8192, "
                              f"got {describe(self.tiff_tile)}")
        if not 1 <= self.dz_tile <= 8192:
            raise ConfigError(f"output.dz_tile must be between 1 and 8192, got {describe(self.dz_tile)}")
        if not 0 <= self.dz_overlap < self.dz_tile:
            raise ConfigError(f"output.dz_overlap must be between 0 and dz_tile - 1, got {describe(self.dz_overlap)}")
        if self.dz_suffix not in TILE_SUFFIXES:
            raise ConfigError(f"output.dz_suffix '{self.dz_suffix}' is unknown; choose jpeg, png or webp")
        if self.intent not in INTENTS:
            raise ConfigError(f"output.intent '{self.intent}' is unknown; choose from {', '.join(INTENTS)}")


@dataclass(frozen=True)
class Config:
    """A whole render: the seed, the network, the view, the canvas and the output."""

    seed: int = 0
    network: NetworkConfig = field(default_factory=NetworkConfig)
    view: ViewConfig = field(default_factory=ViewConfig)
    canvas: CanvasConfig = field(default_factory=CanvasConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def __post_init__(self) -> None:
        if not 0 <= self.seed < 2**63:
            raise ConfigError(f"seed must be between 0 and 2**63 - 1, got {describe(self.seed)}")


# --------------------------------------------------------------------------- loading


def config_from_dict(data: dict) -> Config:
    """Build a validated :class:`Config` from a plain dict (as TOML gives it)."""
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a table of settings, got {describe(data)}")
    limits.check_tree(data, "the config")
    return build(Config, data)


def config_to_dict(cfg: Any) -> dict:
    """A plain dict of a config (tuples as lists), the inverse of :func:`config_from_dict`."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):  # (a key added later is left out at its default: outputs stay the same)
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)
                    if not (f.metadata.get("omit_default") and getattr(v, f.name) == f.default)}
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        return v

    return plain(cfg)


# Characters that end a line (str.splitlines): a --set value is one line.
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``dotted.key=value``; the value is read as TOML, or else taken as a bare string."""
    if not _LINE_BREAKS.isdisjoint(text):
        raise ConfigError(f"--set takes one line, KEY=VALUE; {describe(text)} has a line break: "
                          "give each setting its own --set")
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set expects KEY=VALUE with a dotted key such as network.hidden=[32,32], "
                          f"got {describe(text)}")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    except (ValueError, RecursionError) as exc:  # a number too long to convert, lists nested too deep
        raise ConfigError(f"--set {key}: {limits.parse_failure(exc)}") from None
    limits.check_tree(value, f"--set {key}")
    return key.split("."), value


def _apply(data: dict, path: list[str], value: Any) -> None:
    node = data
    for i, part in enumerate(path[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {'.'.join(path)}: '{'.'.join(path[: i + 1])}' is not a table")
        node = child
    node[path[-1]] = value


def load_config(path: str | Path | None = None, overrides: list[str] = (), extra: dict | None = None,
                base: dict | None = None) -> Config:
    """Load a TOML config (or ``base``, or the defaults), then apply ``--set`` overrides and ``extra`` values."""
    if base:
        limits.check_tree(base, "the base config")
    data: dict = copy.deepcopy(base) if base else {}
    if path is not None:
        p = Path(path)
        what = f"config file '{p}'"
        text = limits.decode_text(limits.read_bounded(p, "config file"), what)
        data = limits.parse_toml(text, what)
    for item in overrides:
        _apply(data, *parse_override(item))
    for dotted, value in (extra or {}).items():
        _apply(data, dotted.split("."), value)
    return config_from_dict(data)


def dump_toml(cfg: Config) -> str:
    """The full resolved config as TOML text, loadable by :func:`load_config`."""
    d = config_to_dict(cfg)
    lines = [f"seed = {d.pop('seed')}"]
    for section, values in d.items():
        lines.append(f"\n[{section}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in values.items())
    return "\n".join(lines) + "\n"
