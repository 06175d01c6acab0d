"""A render request, resolved: the config, the output path and its format, validated.

Everything a user can get wrong about a render (a config and ``--from`` both,
a paper size and pixel sizes both, a size or bit depth the format cannot hold)
is found here, before anything is built, and raised as :class:`UserError`.
The command line and the Python API both come through :func:`resolve_job`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import Config, config_to_dict, load_config
from .errors import UserError
from .formats import Format, check_output, format_for
from .units import parse_length_in, parse_paper_in, print_canvas

__all__ = ["Job", "Sizing", "resolve_config", "resolve_job", "default_name"]


@dataclass(frozen=True)
class Job:
    """A validated render request: the resolved config, where it goes and how."""

    config: Config
    output: Path
    fmt: Format


@dataclass(frozen=True)
class Sizing:
    """How the canvas is sized: pixels (one side keeps the config's aspect), or paper, DPI and bleed."""

    width: int | None = None
    height: int | None = None
    size: str | None = None  # paper: A0..A6, letter, ..., WxHmm
    dpi: float | None = None
    landscape: bool = False
    bleed: str | None = None  # a length: 3mm, 0.125in


def resolve_config(
    config: str | Path | Config | None = None,
    *,
    from_image: str | Path | None = None,
    overrides: tuple[str, ...] | list[str] = (),
    sizing: Sizing = Sizing(),
    seed: int | None = None,
    depth: int | None = None,
    tile: int | None = None,
    device: str | None = None,
    output: dict | None = None,
) -> Config:
    """The config of a render: a file, a :class:`Config`, ``--from`` an earlier output, or the defaults.

    ``overrides`` are ``--set KEY=VALUE`` strings; the keyword values win over both.
    ``output`` holds ``[output]`` keys set by flags (``{"pyramid": False}`` for ``--flat``).
    """
    extra: dict = {f"output.{k}": v for k, v in (output or {}).items()}
    for key, value in (("seed", seed), ("render.tile", tile), ("render.device", device),
                       ("output.depth", depth), ("canvas.dpi", sizing.dpi)):
        if value is not None:
            extra[key] = value
    base = None
    path = config
    if isinstance(config, Config):
        base, path = config_to_dict(config), None
    if from_image is not None:
        if config is not None:
            raise UserError("give either a CONFIG or --from IMAGE, not both")
        from .metadata import read_config_from

        base = config_to_dict(read_config_from(from_image))
        # the picture comes from the network, view and canvas; how this machine renders it is its own affair
        for key in ("device", "kernel", "workers", "batch"):
            base["render"].pop(key, None)
        # nor how that one file was laid out for print: a CMYK PDF re-renders as a PNG preview
        for key in ("cmyk", "intent", "crop_marks", "pyramid"):
            base["output"].pop(key, None)
    cfg = load_config(path, overrides, extra, base=base)
    extra.update(_canvas_size(sizing, cfg))
    if extra:
        cfg = load_config(path, overrides, extra, base=base)
    return cfg


def default_name(cfg: Config, ext: str = ".tif") -> str:
    """The output name when none is given: ``cppn-SEED-WxH.tif``."""
    return f"cppn-{cfg.seed}-{cfg.canvas.width}x{cfg.canvas.height}{ext}"


def resolve_job(cfg: Config, output: str | Path | None = None) -> Job:
    """Check ``cfg`` against the format ``output``'s extension names; UserError when it cannot hold it."""
    out = Path(output) if output is not None else Path(default_name(cfg))
    fmt = format_for(out)
    check_output(fmt, cfg.output, cfg.canvas.width, cfg.canvas.height, cfg.canvas.dpi)
    if cfg.output.cmyk:
        from .icc import cmyk_profile

        cmyk_profile(cfg.output.cmyk)  # UserError when it is not a CMYK profile
    return Job(cfg, out, fmt)


def _canvas_size(s: Sizing, cfg: Config) -> dict:
    """Canvas keys from the paper size, DPI, landscape and bleed, or the pixel sizes, on top of ``cfg``."""
    if s.size is not None and (s.width is not None or s.height is not None):
        raise UserError("give either --size or --width/--height, not both")
    if s.landscape and s.size is None:
        raise UserError("--landscape turns a paper size; give --size too")
    dpi = cfg.canvas.dpi
    bleed_in = parse_length_in(s.bleed) if s.bleed is not None else None
    if s.size is not None:
        p = print_canvas(parse_paper_in(s.size), dpi, bleed_in or 0.0, s.landscape)
        return {"canvas.width": p.width, "canvas.height": p.height, "canvas.bleed": p.bleed}
    w, h = s.width, s.height
    cw, ch, bleed = cfg.canvas.width, cfg.canvas.height, cfg.canvas.bleed
    out: dict = {}
    if w is not None or h is not None:
        w = w if w is not None else max(1, round(h * cw / ch))
        h = h if h is not None else max(1, round(w * ch / cw))
        # a config's bleed scales with the picture, unless --bleed sets it anew
        bleed = round(bleed * w / cw)
        out = {"canvas.width": w, "canvas.height": h, "canvas.bleed": bleed}
    if bleed_in is not None:
        # --bleed adds to the picture: the sizes given are the trimmed ones
        trim_w, trim_h = out.get("canvas.width", cw) - 2 * bleed, out.get("canvas.height", ch) - 2 * bleed
        b = round(bleed_in * dpi)
        out = {"canvas.width": trim_w + 2 * b, "canvas.height": trim_h + 2 * b, "canvas.bleed": b}
    return out
