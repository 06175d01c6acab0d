"""A render request, resolved: the config, the output path and its format, validated.

Everything a user can get wrong about a render (a config and ``--from`` both,
a paper size and pixel sizes both, a size or bit depth the format cannot hold,
an output that is already there, a flag the format has no use for) is found
here, before anything is built, and raised as :class:`UserError`. The command
line and the Python API both come through :func:`resolve_job`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .config import CanvasConfig, Config, config_to_dict, load_config, parse_override
from .errors import ContactSheet, UserError
from .formats.registry import Format, check_output, format_for
from .core.units import bleed_pixels, parse_length_in, parse_paper_in, print_canvas

__all__ = ["Job", "Sizing", "resolve_config", "resolve_job", "default_name", "output_path", "check_overwrite",
           "parse_seeds", "SEED_FIELD", "MAX_SEEDS"]

# In an output name, replaced by the seed: -o poster-{seed}.tif
SEED_FIELD = "{seed}"
# Seeds in one sheet or series at most.
MAX_SEEDS = 1024


def parse_seeds(text: str) -> list[int]:
    """``0-15``, ``3,7,11`` or a mix such as ``0-3,10``; at most 1024 seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise UserError(f"cannot read the seeds '{text}'; write a range such as 0-15 or a list such as 1,5,9")
        if max(len(m.group(1)), len(m.group(2) or "")) > 19:
            raise UserError("seeds must be below 2**63")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise UserError(f"the seed range '{part.strip()}' runs backwards; write it low-high")
        if len(seeds) + hi - lo + 1 > MAX_SEEDS:
            raise UserError(f"give at most {MAX_SEEDS} seeds at once")
        seeds.extend(range(lo, hi + 1))
    if any(s >= 2**63 for s in seeds):
        raise UserError("seeds must be below 2**63")
    return seeds


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
    frame: int | None = None,
) -> Config:
    """The config of a render: a file, a :class:`Config`, ``--from`` an earlier output, or the defaults.

    ``overrides`` are ``--set KEY=VALUE`` strings; the keyword values win over both.
    ``output`` holds ``[output]`` keys set by flags (``{"pyramid": False}`` for ``--flat``).

    ``--from`` carries the picture, not the output settings: the seed, the
    network, the view and the canvas's aspect (and bleed, in proportion) come
    from the file; the size, DPI, depth, compression, quality and how to render
    come from the rest of the command line and the defaults. Without a size the
    canvas is the default's, 4096 px on the longer side. ``frame``: the frame of a
    clip (``bigcppn animate``'s output) to take the picture of (default: frame 0).
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
        try:
            picked = _config_of(from_image, frame)
        except ContactSheet as sheet:  # one of its cells: the seed given picks it
            if seed is None:
                raise
            picked = sheet.config
        base = _picture_of(picked)
        if sizing.width is None and sizing.height is None and sizing.size is None and not _sets_size(overrides):
            extra.update(_default_size(load_config(None, overrides, base=base).canvas))
    elif frame is not None:
        raise UserError("--frame picks a frame of a clip; give the clip with --from CLIP")
    cfg = load_config(path, overrides, extra, base=base)
    extra.update(_canvas_size(sizing, cfg))
    if extra:
        cfg = load_config(path, overrides, extra, base=base)
    return cfg


def _config_of(from_image: str | Path, frame: int | None) -> Config:
    """The config of an earlier output: a still's, or the config of a clip's frame ``frame``."""
    from .animate.clip import frame_config, is_clip
    from .formats.registry import read_config_from

    if is_clip(from_image):
        return frame_config(from_image, frame)
    if frame is not None:
        raise UserError(f"--frame picks a frame of a clip written by bigcppn animate (.mp4, .webm, or a .gif/.webp "
                        f"with its .bigcppn.json); {from_image} is not one")
    return read_config_from(from_image)


def _picture_of(cfg: Config) -> dict:
    """What ``--from`` takes from an earlier output: the seed, network, view and canvas shape."""
    d = config_to_dict(cfg)
    canvas = {k: d["canvas"][k] for k in ("width", "height", "bleed")}
    return {"seed": d["seed"], "network": d["network"], "view": d["view"], "canvas": canvas}


def _sets_size(overrides) -> bool:
    return any(parse_override(o)[0] in (["canvas", "width"], ["canvas", "height"]) for o in overrides)


def _default_size(c: CanvasConfig) -> dict:
    """The canvas of ``c``'s aspect that fits the default canvas (4096 px on the longer side)."""
    d = CanvasConfig()
    scale = min(d.width / c.width, d.height / c.height)
    w, h = max(1, round(c.width * scale)), max(1, round(c.height * scale))
    bleed = min(round(c.bleed * scale), (min(w, h) - 1) // 2)
    return {"canvas.width": w, "canvas.height": h, "canvas.bleed": bleed}


def default_name(cfg: Config, ext: str = ".tif") -> str:
    """The output name when none is given: ``cppn-SEED-WxH.tif``."""
    return f"cppn-{cfg.seed}-{cfg.canvas.width}x{cfg.canvas.height}{ext}"


def output_path(cfg: Config, output: str | Path | None = None) -> Path:
    """Where a render of ``cfg`` goes: ``output`` with ``{seed}`` filled in, or :func:`default_name`."""
    if output is None:
        return Path(default_name(cfg))
    return Path(str(output).replace(SEED_FIELD, str(cfg.seed)))


def resolve_job(cfg: Config, output: str | Path | None = None, *, compression: str | None = None,
                quality: int | None = None) -> Job:
    """Check ``cfg`` against the format ``output``'s extension names; UserError when it cannot hold it.

    ``compression`` and ``quality`` (``--compression``, ``--quality``) override
    the config's output settings, and are refused for a format that has no use
    for them (compression is TIFF's; quality is for lossy outputs).
    """
    out = output_path(cfg, output)
    fmt = format_for(out)
    if quality is not None and not 1 <= quality <= 100:
        raise UserError(f"--quality must be between 1 and 100, got {quality}")
    if compression is not None or quality is not None:
        given = {k: v for k, v in (("compression", compression), ("quality", quality)) if v is not None}
        cfg = load_config(None, [], {f"output.{k}": v for k, v in given.items()}, base=config_to_dict(cfg))
        if compression is not None and not fmt.compressions:
            raise UserError(f"--compression is for TIFF and PDF outputs; {out.name} is {fmt.name.upper()}, whose "
                            "format decides; leave --compression out")
        if quality is not None and not fmt.lossy(cfg.output):
            raise UserError(f"--quality is for lossy outputs (.jpg, .webp, .dzi/.szi with JPEG or WebP tiles, "
                            f"TIFF with --compression jpeg); {out.name} is lossless; leave --quality out")
    check_output(fmt, cfg.output, cfg.canvas.width, cfg.canvas.height, cfg.canvas.dpi)
    cfg = fmt.fitted(cfg)
    if cfg.output.cmyk:
        from .formats.icc import cmyk_profile

        cmyk_profile(cfg.output.cmyk)  # UserError when it is not a CMYK profile
    return Job(cfg, out, fmt)


def check_overwrite(job: Job, overwrite: bool) -> None:
    """UserError when ``job`` would replace an existing output and ``overwrite`` was not given.

    With ``overwrite`` the old output stays as it is until the new one is
    complete (the sink writes a hidden temporary and renames it).
    """
    if overwrite:
        return
    there = [p for p in job.fmt.produced(job.output) if p.exists() or p.is_symlink()]
    if there:
        what = job.output if job.output in there else there[0]
        raise UserError(f"'{what}' already exists; add --overwrite to replace it (overwrite=True from Python; "
                        "the old one stays until the new one is complete), or choose another -o")


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
        b = bleed_pixels(bleed_in, dpi)
        out = {"canvas.width": trim_w + 2 * b, "canvas.height": trim_h + 2 * b, "canvas.bleed": b}
    return out
