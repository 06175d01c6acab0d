"""Pyramid layouts as objects: how each one numbers its levels, names its tiles and describes itself.

Pure text and arithmetic (no torch, no pyvips). A :class:`Layout` answers, for
a pyramid (:class:`~bigcppn.pyramid.levels.PyramidShape`: what it reads of a
:class:`~bigcppn.pyramid.grid.Pyramid`, which holds its layout): the scale of
each level, the path of each tile, the size of the image a tile is written as,
whether a tile is another tile's alias, the metadata file, and the tile source
a viewer page gives OpenSeadragon; and where the pyramid goes: the root and
name ``-o`` gives, the viewer page's name and the descriptor's. A new layout
is one subclass, registered with :func:`register_layout`.

* ``dz`` (DeepZoom): ``NAME.dzi`` and ``NAME_files/LEVEL/COL_ROW.jpeg``; level 0 is
  1×1, the last level is the base; tiles of ``tile`` pixels, each grown by
  ``overlap`` pixels on every side that has a neighbour.
* ``iiif3`` (IIIF Image API 3, level 0, static): ``info.json`` and
  ``{region}/{size}/0/default.jpg`` with the region in base pixels; scale
  factors 1, 2, 4, … down to the first level that fits one tile; URIs in the
  canonical form (``full`` for the whole image, ``max`` for full size), which
  is also what OpenSeadragon asks for. Besides the tiles, the whole image:
  ``full/max/0/default.jpg`` at the largest size within ``maxWidth`` x
  ``maxHeight`` (the pyramid's ``max_size``), and ``full/W,H/0/default.jpg``
  for every entry of ``sizes`` (the smallest level and that largest size).
* ``zoomify``: ``ImageProperties.xml`` and ``TileGroupN/TIER-COL-ROW.jpg``, tier 0
  fitting one tile, tiers halved rounding up (as Zoomify and libvips do), and
  ``N`` the tile's number counted from tier 0, divided by 256.
* ``google``: ``Z/ROW/COL.jpg``, every tile ``tile``² (padded with white past the
  image), level 0 one tile; tiles wholly outside the image are not written
  (``blank.png`` stands in for them).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path

from ..errors import UserError
from ..formats.tiles import TileCodec
from .levels import Level, PyramidShape

__all__ = ["Layout", "DeepZoom", "IIIF3", "Zoomify", "Google", "LAYOUTS", "register_layout",
           "layout_named", "dz_level_count"]

ZOOMIFY_GROUP = 256
DZI = ".dzi"  # a DeepZoom pyramid's descriptor, and what -o names it by


def dz_level_count(width: int, height: int) -> int:
    """DeepZoom's level count: ``ceil(log2(max(W, H))) + 1``, down to 1×1."""
    return (max(width, height) - 1).bit_length() + 1


class Layout(ABC):
    """One pyramid layout; the base class has the behaviour most layouts share: a folder of its own.

    Besides the levels and the tile names, a layout places the pyramid: what
    ``-o`` names (:meth:`place`), the viewer page's name and the descriptor's.
    """

    name = ""
    default_tile = 256
    default_overlap = 0
    overlap_allowed = False  # tiles may carry neighbours' pixels
    levels_past_base = False  # the live server's zoom past the base size
    published = False  # names its own URL (--base-url) and has a largest size (--max-size)
    folder = True  # -o DIR/NAME is a folder holding everything; False: NAME.dzi + NAME_files/ in DIR
    blank_tile = False  # a blank.png stands in for tiles outside the image

    def __reduce__(self):  # one instance a layout, in every process (Ray's workers too)
        return layout_named, (self.name,)

    def __repr__(self) -> str:
        return f"<layout {self.name}>"

    # ------------------------------------------------------------------ where it goes

    def default_output(self, stem: str) -> str:
        """``-o`` when none is given: ``stem`` (a folder), or ``stem.dzi``."""
        return stem

    def place(self, out: Path) -> tuple[Path, str]:
        """The pyramid's root folder and name for ``-o out``; UserError when ``out`` cannot name one."""
        if out.suffix.lower() == DZI:
            raise UserError(f"the {self.name} layout is a folder, not a .dzi file; give -o DIR/NAME")
        stem = out.name
        if not stem or stem in (".", ".."):
            raise UserError(f"'{out}' does not name a folder for the pyramid; give -o DIR/NAME")
        return out, stem

    def page_name(self, stem: str) -> str:
        """The viewer page, in the root: ``index.html`` in a pyramid's own folder."""
        return "index.html"

    def tiles_folder(self, stem: str) -> str:
        """The folder below the root that holds the tiles ("" for the root itself)."""
        return ""

    def descriptor_path(self, stem: str) -> str:
        """The metadata file, relative to the pyramid's root ("" when the layout has none)."""
        return ""

    def extension(self, codec: TileCodec) -> str:
        """The file extension of the tiles: the codec's usual one (``jpg``)."""
        return codec.suffix

    # ------------------------------------------------------------------ levels and tiles

    def shifts(self, p: PyramidShape) -> list[int]:
        """Every level's shift, smallest level first: down to the first level that fits one tile."""
        top = max(0, (-(-max(p.width, p.height) // p.tile) - 1).bit_length())
        return [top - i for i in range(top + 1)]

    @abstractmethod
    def tile_path(self, p: PyramidShape, lv: Level, col: int, row: int) -> str:
        """The tile's path, relative to the pyramid's root."""

    def image_size(self, p: PyramidShape, width: int, height: int) -> tuple[int, int]:
        """The size a tile of ``width`` x ``height`` level pixels is written at."""
        return width, height

    def aliased(self, p: PyramidShape, level: int, col: int, row: int) -> bool:
        """Whether another tile has this tile's name (and then stands for both)."""
        return False

    def descriptor(self, p: PyramidShape, base_url: str) -> str:
        return ""

    @abstractmethod
    def tile_source_js(self, p: PyramidShape) -> str:
        """JavaScript statements that define ``source``, OpenSeadragon's tile source, for a page beside the pyramid."""

    def full_images(self, p: PyramidShape) -> list[tuple[str, int, int]]:
        """Images of the whole picture besides the tiles: (path, width, height) each (IIIF's ``sizes``)."""
        return []

    def manifest_params(self, p: PyramidShape, base_url: str) -> dict:
        """Settings beyond the common ones that change the files (kept in the manifest)."""
        return {}


class DeepZoom(Layout):
    name = "dz"
    default_tile = 254
    default_overlap = 1
    overlap_allowed = True
    levels_past_base = True
    folder = False

    def default_output(self, stem: str) -> str:
        return stem + DZI

    def place(self, out: Path) -> tuple[Path, str]:
        if out.suffix.lower() not in (DZI, ""):
            raise UserError(f"a DeepZoom pyramid is written as NAME.dzi; got '{out}' (or choose --layout)")
        stem = out.stem if out.suffix else out.name
        if not stem or stem.startswith("."):
            raise UserError(f"'{out}' does not name a pyramid; give -o DIR/NAME.dzi")
        return out.parent, stem

    def page_name(self, stem: str) -> str:
        return f"{stem}.html"  # several pyramids can share a folder

    def tiles_folder(self, stem: str) -> str:
        return f"{stem}_files"

    def descriptor_path(self, stem: str) -> str:
        return stem + DZI

    def extension(self, codec: TileCodec) -> str:
        return codec.name  # as libvips' dzsave: .jpeg

    def shifts(self, p: PyramidShape) -> list[int]:
        n = dz_level_count(p.virtual_width, p.virtual_height)
        return [n - 1 - i - p.extra for i in range(n)]

    def tile_path(self, p: PyramidShape, lv: Level, col: int, row: int) -> str:
        return f"{self.tiles_folder(p.name)}/{lv.index}/{col}_{row}.{p.ext}"

    def descriptor(self, p: PyramidShape, base_url: str) -> str:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<Image xmlns="http://schemas.microsoft.com/deepzoom/2008"\n'
            f'  Format="{p.ext}"\n  Overlap="{p.overlap}"\n  TileSize="{p.tile}"\n  >\n'
            f'  <Size\n    Height="{p.virtual_height}"\n    Width="{p.virtual_width}"\n  />\n'
            "</Image>\n"
        )

    def tile_source_js(self, p: PyramidShape) -> str:
        return f"const source = {json.dumps(self.descriptor_path(p.name))};"


class IIIF3(Layout):
    name = "iiif3"
    published = True
    default_format = "jpg"  # the format a IIIF client asks for unless info.json prefers another

    def tile_path(self, p: PyramidShape, lv: Level, col: int, row: int) -> str:
        # The region in base pixels, the size in level pixels, canonical forms.
        x, y, w, h = lv.core(col, row)
        s = 1 << lv.shift
        rx, ry = x * s, y * s
        rw, rh = min(w * s, p.width - rx), min(h * s, p.height - ry)
        region = "full" if (rx, ry, rw, rh) == (0, 0, p.width, p.height) else f"{rx},{ry},{rw},{rh}"
        size = "max" if (w, h) == (p.width, p.height) else f"{w},{h}"
        return f"{region}/{size}/0/default.{p.ext}"

    def aliased(self, p: PyramidShape, level: int, col: int, row: int) -> bool:
        """Whether a finer level has a tile with the same IIIF name, which then stands for both.

        A IIIF name is a request (region at size), so a corner tile that shrinks to a
        single clipped level pixel can name the same request as a finer level's tile,
        e.g. region 512,512,1,1 at size 1,1 on a 513x513 image: the same picture.
        """
        lv = p.level(level)
        # only a tile clipped on both axes can shrink to a finer level's name: the last one
        if lv.shift == 0 or col != lv.cols - 1 or row != lv.rows - 1:
            return False
        x, y, w, h = lv.core(col, row)
        path = self.tile_path(p, lv, col, row)
        for finer in p.levels[level + 1 :]:
            span = p.tile << finer.shift
            rx, ry = x << lv.shift, y << lv.shift
            if rx % span or ry % span:
                continue
            c, r = rx // span, ry // span
            if c < finer.cols and r < finer.rows and self.tile_path(p, finer, c, r) == path:
                return True
        return False

    def descriptor_path(self, stem: str) -> str:
        return "info.json"

    @staticmethod
    def max_dims(p: PyramidShape) -> tuple[int, int]:
        """What ``full/max`` is: the whole image, shrunk to fit ``max_size`` x ``max_size`` when larger."""
        m = p.full_max
        if p.width <= m and p.height <= m:
            return p.width, p.height
        if p.width >= p.height:
            return m, max(1, round(p.height * m / p.width))
        return max(1, round(p.width * m / p.height)), m

    def sizes(self, p: PyramidShape) -> list[tuple[int, int]]:
        """The whole image's sizes info.json lists, smallest first: the level that fits a tile, and full/max."""
        top = p.levels[0]
        return sorted({(top.width, top.height), self.max_dims(p)})

    def full_images(self, p: PyramidShape) -> list[tuple[str, int, int]]:
        w, h = self.max_dims(p)
        out = [(f"full/max/0/default.{p.ext}", w, h)]
        return out + [(f"full/{w},{h}/0/default.{p.ext}", w, h) for w, h in self.sizes(p)]

    def descriptor(self, p: PyramidShape, base_url: str) -> str:
        info = {
            "@context": "http://iiif.io/api/image/3/context.json",
            "id": base_url.rstrip("/"),
            "type": "ImageService3",
            "protocol": "http://iiif.io/api/image",
            "profile": "level0",
            "width": p.width,
            "height": p.height,
            "maxWidth": p.full_max,
            "maxHeight": p.full_max,
            "sizes": [{"width": w, "height": h} for w, h in self.sizes(p)],
            "tiles": [{"width": p.tile, "scaleFactors": [1 << lv.shift for lv in reversed(p.levels)]}],
        }
        if p.ext != self.default_format:
            info["preferredFormats"] = [p.ext]
            info["extraFormats"] = [p.ext]
        return json.dumps(info, indent=2) + "\n"

    def tile_source_js(self, p: PyramidShape) -> str:
        # A static IIIF level-0 pyramid names its own URL in info.json ("id"); the page
        # opens it from wherever it is published by putting its own folder there.
        return (
            "const source = fetch('info.json').then(r => r.json()).then(info => {\n"
            "  info.id = new URL('.', location.href).href.replace(/\\/$/, '');\n"
            "  return info;\n"
            "});"
        )

    def manifest_params(self, p: PyramidShape, base_url: str) -> dict:
        return {"base_url": base_url, "max_size": p.full_max}


class Zoomify(Layout):
    name = "zoomify"

    def tile_path(self, p: PyramidShape, lv: Level, col: int, row: int) -> str:
        group = (p.tiles_before[lv.index] + row * lv.cols + col) // ZOOMIFY_GROUP
        return f"TileGroup{group}/{lv.index}-{col}-{row}.{p.ext}"

    def descriptor_path(self, stem: str) -> str:
        return "ImageProperties.xml"

    def descriptor(self, p: PyramidShape, base_url: str) -> str:
        return (
            f'<IMAGE_PROPERTIES WIDTH="{p.width}" HEIGHT="{p.height}" NUMTILES="{p.tile_count}" '
            f'NUMIMAGES="1" VERSION="1.8" TILESIZE="{p.tile}" />\n'
        )

    @staticmethod
    def agrees_with_openseadragon(p: PyramidShape) -> bool:
        """Whether OpenSeadragon's Zoomify tiers (halved rounding down) are Zoomify's (rounding up).

        They differ only when a side lies just past tile·2^k, e.g. 1025 px with 256 px tiles.
        """
        w, h = p.width, p.height
        grids = []
        while True:
            grids.append((-(-w // p.tile), -(-h // p.tile)))
            if w <= p.tile and h <= p.tile:
                break
            w, h = w // 2, h // 2
        grids.reverse()
        return grids == [(lv.cols, lv.rows) for lv in p.levels]

    def tile_source_js(self, p: PyramidShape) -> str:
        if self.agrees_with_openseadragon(p):
            return "const source = " + json.dumps({
                "type": "zoomifytileservice", "width": p.width, "height": p.height, "tileSize": p.tile,
                "tilesUrl": "./", "fileFormat": p.ext}) + ";"
        # OpenSeadragon halves Zoomify tiers rounding down; Zoomify (and libvips) round up, which
        # differs for this size: name the tiles as Zoomify does.
        levels = [[lv.width, lv.height] for lv in p.levels]
        return (
            f"const zl = {json.dumps(levels)}, zb = {json.dumps(list(p.tiles_before))}, zt = {p.tile};\n"
            "const source = {\n"
            f"  width: {p.width}, height: {p.height}, tileSize: zt, tileOverlap: 0,\n"
            "  minLevel: 0, maxLevel: zl.length - 1,\n"
            "  getTileUrl(level, x, y) {\n"
            "    const g = Math.floor((zb[level] + y * Math.ceil(zl[level][0] / zt) + x) / 256);\n"
            f"    return `TileGroup${{g}}/${{level}}-${{x}}-${{y}}.{p.ext}`;\n"
            "  }\n"
            "};"
        )


class Google(Layout):
    name = "google"
    blank_tile = True

    def tile_path(self, p: PyramidShape, lv: Level, col: int, row: int) -> str:
        return f"{lv.index}/{row}/{col}.{p.ext}"

    def image_size(self, p: PyramidShape, width: int, height: int) -> tuple[int, int]:
        return p.tile, p.tile  # padded with white past the image

    def tile_source_js(self, p: PyramidShape) -> str:
        # Z/ROW/COL, level 0 one tile
        return (
            "const source = {\n"
            f"  width: {p.width}, height: {p.height}, tileSize: {p.tile}, tileOverlap: 0,\n"
            f"  minLevel: 0, maxLevel: {len(p.levels) - 1},\n"
            f"  getTileUrl(level, x, y) {{ return `${{level}}/${{y}}/${{x}}.{p.ext}`; }}\n"
            "};"
        )


LAYOUTS: dict[str, Layout] = {}


def register_layout(layout: Layout) -> Layout:
    """Make ``layout`` a pyramid layout (``--layout NAME``); returns it."""
    LAYOUTS[layout.name] = layout
    return layout


register_layout(DeepZoom())
register_layout(IIIF3())
register_layout(Zoomify())
register_layout(Google())


def layout_named(name: str) -> Layout:
    """The layout called ``name``; ValueError naming the known ones when there is none."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown layout '{name}'; choose from {', '.join(LAYOUTS)}") from None
