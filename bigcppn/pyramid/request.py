"""A pyramid request, resolved: the config, the place, the layout and its settings, validated.

What :mod:`bigcppn.job` is to a render, this is to ``bigcppn pyramid``: every
setting a user can get wrong (a layout, a tile size, a quality for PNG tiles, a
base URL, an ``-o`` that cannot hold the layout, too little disk) is refused
here as :class:`UserError`, before anything is rendered. The API builds one
:class:`PyramidRequest`; the runner (:func:`bigcppn.pyramid.render.render_pyramid`),
the planner and the cluster take it. No torch, no pyvips.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import Config
from ..errors import UserError
from ..formats.registry import FORMATS, estimate_output_bytes
from ..formats.tiles import CODECS, TileCodec
from ..storage.base import StorageOptions
from .grid import MAX_TILE, Pyramid
from .layouts import LAYOUTS, Layout
from .store import PyramidOutput, manifest_key, pyramid_output

__all__ = ["PyramidRequest", "resolve_pyramid_request", "pyramid_place", "pyramid_params"]


@dataclass(frozen=True)
class PyramidRequest:
    """A validated pyramid request: the config, where it goes, the pyramid and its settings.

    ``base_url``: the IIIF ``id`` ("" for the default, ``http://localhost:8000/NAME``);
    ``overwrite``: another render's pyramid at ``out`` may be replaced; ``title``: the
    viewer page's (default ``NAME (bigcppn)``).
    """

    config: Config
    out: PyramidOutput
    pyramid: Pyramid
    quality: int = 90
    supersample: int = 2
    base_url: str = ""
    overwrite: bool = False
    title: str = ""

    @property
    def key(self) -> dict:
        """What the manifest records: a run with the same key resumes, another one replaces or is refused."""
        return manifest_key(self.config, pyramid_params(self.pyramid, self.quality, self.supersample,
                                                        self.base_url))

    @property
    def estimated_bytes(self) -> int:
        c = self.config
        return estimate_output_bytes(FORMATS["dz"], c.canvas.width, c.canvas.height, c.network.bands,
                                     replace(c.output, depth=8, dz_suffix=self.pyramid.codec.name))

    def check_output(self) -> None:
        """UserError when the output cannot take the pyramid: too little disk, or a bucket it cannot use."""
        if self.out.storage.remote:
            self.out.storage.check()
        else:
            self.check_disk()

    def check_disk(self) -> None:
        """UserError when the disk clearly cannot hold the pyramid (:func:`bigcppn.estimate.disk.check_pyramid_disk`)."""
        from ..estimate.disk import check_pyramid_disk

        check_pyramid_disk(self)


def pyramid_params(p: Pyramid, quality: int, supersample: int, base_url: str) -> dict:
    """The settings that change a pyramid's files, as its manifest records them."""
    return {"layout": p.layout.name, "width": p.width, "height": p.height, "tile": p.tile, "overlap": p.overlap,
            "format": p.codec.name, "quality": quality, "supersample": supersample, "name": p.name,
            **p.layout.manifest_params(p, base_url)}


def resolve_pyramid_request(cfg: Config, path: str | Path | None, *, layout: str = "dz", tile: int | None = None,
                            overlap: int | None = None, format: str = "jpeg", quality: int | None = None,
                            supersample: int = 2, base_url: str | None = None, max_size: int | None = None,
                            overwrite: bool = False, storage: StorageOptions | None = None) -> PyramidRequest:
    """Check a pyramid request; UserError on anything that cannot be used."""
    if cfg.output.depth != 8:
        raise UserError("pyramid tiles are 8-bit; leave out --depth 16 (or output.depth)")
    if cfg.output.cmyk:
        raise UserError("pyramid tiles are RGB for screens; leave out output.cmyk (CMYK is for print files)")
    scheme, codec = _layout(layout), _codec(format)
    opts = _options(cfg, scheme, codec, tile, overlap, quality, supersample, base_url or "", max_size)
    out = pyramid_place(cfg, path, layout, storage)
    c = cfg.canvas
    p = Pyramid(c.width, c.height, scheme, opts["tile"], opts["overlap"], codec,
                name="image" if out.folder else out.name, max_size=opts["max_size"])
    return PyramidRequest(cfg, out, p, opts["quality"], supersample, opts["base_url"], overwrite)


def pyramid_place(cfg: Config, path: str | Path | None, layout: str,
                  storage: StorageOptions | None = None) -> PyramidOutput:
    """Where a pyramid goes (:class:`~bigcppn.pyramid.store.PyramidOutput`); default ``cppn-SEED-WxH[.dzi]``."""
    scheme = _layout(layout)
    default = scheme.default_output(f"cppn-{cfg.seed}-{cfg.canvas.width}x{cfg.canvas.height}")
    return pyramid_output(path or default, scheme, storage)


def _layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise UserError(f"unknown layout '{name}'; choose from {', '.join(LAYOUTS)}") from None


def _codec(name: str) -> TileCodec:
    try:
        return CODECS[name]
    except KeyError:
        raise UserError(f"unknown tile format '{name}'; choose from {', '.join(CODECS)}") from None


def _options(cfg: Config, scheme: Layout, codec: TileCodec, tile: int | None, overlap: int | None,
             quality: int | None, supersample: int, base_url: str, max_size: int | None = None) -> dict:
    """The pyramid's settings, checked; UserError on any that cannot be used."""
    tile = tile or scheme.default_tile
    if overlap is not None and not scheme.overlap_allowed:
        raise UserError(f"--overlap applies to the dz layout only; the {scheme.name} layout has none")
    overlap = overlap if overlap is not None else scheme.default_overlap
    if not 1 <= tile <= MAX_TILE:
        raise UserError(f"--tile {tile} is too large; use at most {MAX_TILE}")
    if not 0 <= overlap < tile:
        raise UserError(f"--overlap must be between 0 and the tile size - 1 ({tile - 1}), got {overlap}")
    if quality is not None and not codec.lossy:
        raise UserError(f"--quality is for JPEG and WebP tiles; {codec.name.upper()} tiles are lossless, "
                        "leave --quality out")
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
        most = FORMATS[codec.name].max_side
        if max_size > most:
            raise UserError(f"--max-size {max_size} is more than {codec.name.upper()} holds; use at most {most}")
    return {"tile": tile, "overlap": overlap, "quality": quality, "base_url": base_url, "max_size": max_size or 0}
