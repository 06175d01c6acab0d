"""A pyramid request, resolved: the config, the place, the layout and its settings, validated.

What :mod:`bigcppn.job` is to a render, this is to ``bigcppn pyramid``: every
setting a user can get wrong (a layout, a tile size, a quality for PNG tiles, a
base URL, an ``-o`` that cannot hold the layout, too little disk) is refused
here as :class:`UserError`, before anything is rendered. No torch, no pyvips.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import Config
from ..errors import UserError
from ..formats.registry import FORMATS, estimate_output_bytes
from .layouts import LAYOUTS as LAYOUT_OBJECTS
from .grid import DEFAULT_OVERLAP, DEFAULT_TILE, LAYOUTS, MAX_TILE, TILE_FORMATS, Pyramid
from .store import PyramidOutput, manifest_key, pyramid_output

__all__ = ["PyramidJob", "resolve_pyramid_job", "pyramid_place", "pyramid_params"]


@dataclass(frozen=True)
class PyramidJob:
    """A validated pyramid request: the config, where it goes, the pyramid and its settings."""

    config: Config
    out: PyramidOutput
    pyramid: Pyramid
    quality: int
    supersample: int
    base_url: str

    @property
    def key(self) -> dict:
        """What the manifest records: a run with the same key resumes, another one replaces or is refused."""
        return manifest_key(self.config, pyramid_params(self.pyramid, self.quality, self.supersample,
                                                        self.base_url))

    @property
    def estimated_bytes(self) -> int:
        c = self.config
        return estimate_output_bytes(FORMATS["dz"], c.canvas.width, c.canvas.height, c.network.bands,
                                     replace(c.output, depth=8, dz_suffix=self.pyramid.suffix))

    def check_disk(self) -> None:
        """UserError when the disk cannot hold the pyramid."""
        need = self.estimated_bytes
        root = self.out.root
        free = shutil.disk_usage(root if root.is_dir() else root.parent).free
        if need > free:
            raise UserError(f"not enough free disk for the pyramid: about {need / 1e9:.1f} GB needed, "
                            f"{free / 1e9:.1f} GB free; free some space or write elsewhere")


def pyramid_params(p: Pyramid, quality: int, supersample: int, base_url: str) -> dict:
    """The settings that change a pyramid's files, as its manifest records them."""
    return {"layout": p.layout, "width": p.width, "height": p.height, "tile": p.tile, "overlap": p.overlap,
            "format": p.suffix, "quality": quality, "supersample": supersample, "name": p.name,
            **p.scheme.manifest_params(p, base_url)}


def resolve_pyramid_job(cfg: Config, path: str | Path | None, *, layout: str = "dz", tile: int | None = None,
                        overlap: int | None = None, format: str = "jpeg", quality: int | None = None,
                        supersample: int = 2, base_url: str | None = None,
                        max_size: int | None = None) -> PyramidJob:
    """Check a pyramid request; UserError on anything that cannot be used."""
    if cfg.output.depth != 8:
        raise UserError("pyramid tiles are 8-bit; leave out --depth 16 (or output.depth)")
    opts = _options(cfg, layout, format, tile, overlap, quality, supersample, base_url or "", max_size)
    out = pyramid_place(cfg, path, layout)
    c = cfg.canvas
    p = Pyramid(c.width, c.height, layout, opts["tile"], opts["overlap"], format,
                name="image" if out.folder else out.name, max_size=opts["max_size"])
    return PyramidJob(cfg, out, p, opts["quality"], supersample, opts["base_url"])


def pyramid_place(cfg: Config, path: str | Path | None, layout: str) -> PyramidOutput:
    """Where a pyramid goes (:class:`~bigcppn.pyramid.store.PyramidOutput`); default ``cppn-SEED-WxH[.dzi]``."""
    if layout not in LAYOUTS:
        raise UserError(f"unknown layout '{layout}'; choose from {', '.join(LAYOUTS)}")
    folder = LAYOUT_OBJECTS[layout].folder
    default = f"cppn-{cfg.seed}-{cfg.canvas.width}x{cfg.canvas.height}" + ("" if folder else ".dzi")
    return pyramid_output(path or default, layout)


def _options(cfg: Config, layout: str, fmt: str, tile: int | None, overlap: int | None, quality: int | None,
             supersample: int, base_url: str, max_size: int | None = None) -> dict:
    """The pyramid's settings, checked; UserError on any that cannot be used."""
    if layout not in LAYOUTS:
        raise UserError(f"unknown layout '{layout}'; choose from {', '.join(LAYOUTS)}")
    if fmt not in TILE_FORMATS:
        raise UserError(f"unknown tile format '{fmt}'; choose from {', '.join(TILE_FORMATS)}")
    scheme = LAYOUT_OBJECTS[layout]
    tile = tile or DEFAULT_TILE[layout]
    if overlap is not None and not scheme.overlap_allowed:
        raise UserError(f"--overlap applies to the dz layout only; the {layout} layout has none")
    overlap = overlap if overlap is not None else DEFAULT_OVERLAP[layout]
    if not 1 <= tile <= MAX_TILE:
        raise UserError(f"--tile {tile} is too large; use at most {MAX_TILE}")
    if not 0 <= overlap < tile:
        raise UserError(f"--overlap must be between 0 and the tile size - 1 ({tile - 1}), got {overlap}")
    if quality is not None and fmt == "png":
        raise UserError("--quality is for JPEG and WebP tiles; PNG tiles are lossless, leave --quality out")
    quality = quality if quality is not None else cfg.output.quality
    if not 1 <= quality <= 100:
        raise UserError(f"--quality must be between 1 and 100, got {quality}")
    if supersample > 16:
        raise UserError(f"--supersample {supersample} is more than needed; use at most 16")
    if supersample < 1:
        raise UserError(f"--supersample must be at least 1, got {supersample}")
    if base_url and not re.match(r"^https?://[^\s/]+", base_url):
        raise UserError(f"--base-url must be an http(s) URL, got '{base_url}'")
    if base_url and not scheme.published:
        raise UserError("--base-url is for the iiif3 layout (its info.json names its own URL)")
    if max_size is not None:
        if not scheme.published:
            raise UserError("--max-size is for the iiif3 layout (the size of its full/max image)")
        if max_size < tile:
            raise UserError(f"--max-size {max_size} is smaller than the tile ({tile}); give at least {tile}")
        if max_size > FORMATS[fmt].max_side:
            raise UserError(f"--max-size {max_size} is more than {fmt.upper()} holds; "
                            f"use at most {FORMATS[fmt].max_side}")
    return {"tile": tile, "overlap": overlap, "quality": quality, "base_url": base_url, "max_size": max_size or 0}
