"""The viewer page that opens a pyramid (``NAME.html``, or ``index.html`` in its folder) or the live server in OpenSeadragon.

OpenSeadragon is loaded from a relative path, ``openseadragon/openseadragon.min.js``
with its button images in ``openseadragon/images/``, copied from an installed
npm package when one is found (``$BIGCPPN_OPENSEADRAGON``, ``node_modules`` in
the working directory or above, this checkout's ``tests/browser/node_modules``,
the global npm folders). Without one the page falls back to a CDN copy, so it
then needs the internet.
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

from .._version import __version__
from ..core.atomic import copy_atomic
from .grid import Pyramid

__all__ = ["OSD_ENV", "OSD_CDN", "GENERATOR_META", "find_openseadragon", "openseadragon_files",
           "install_openseadragon", "static_page", "live_page"]

OSD_ENV = "BIGCPPN_OPENSEADRAGON"
OSD_VERSION = "6.1.1"
# Fallback only, when no npm copy is installed: the page then needs the internet.
OSD_CDN = f"https://cdn.jsdelivr.net/npm/openseadragon@{OSD_VERSION}/build/openseadragon/"
OSD_DIR = "openseadragon"
# Marks a page bigcppn wrote (and may write again).
GENERATOR_META = '<meta name="generator" content="bigcppn'
# OpenSeadragon's button images: plain PNG file names
_BUTTON_IMAGE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.png$")


def _build_dir(p: Path) -> Path | None:
    """The folder holding openseadragon.min.js, given it or the npm package folder."""
    for d in (p, p / "build" / "openseadragon", p / "openseadragon" / "build" / "openseadragon"):
        if (d / "openseadragon.min.js").is_file():
            return d
    return None


def find_openseadragon() -> Path | None:
    """An installed OpenSeadragon build folder, or None."""
    env = os.environ.get(OSD_ENV)
    if env:
        return _build_dir(Path(env))
    here = Path.cwd().resolve()
    candidates = [d / "node_modules" for d in (here, *here.parents)]
    candidates.append(Path(__file__).resolve().parents[2] / "tests" / "browser" / "node_modules")
    candidates += [Path("/usr/local/lib/node_modules"), Path("/usr/lib/node_modules")]
    for c in candidates:
        found = _build_dir(c / "openseadragon") if c.is_dir() else None
        if found:
            return found
    return None


def openseadragon_files(build: Path) -> dict[str, Path]:
    """URL path (below ``openseadragon/``) → file, for the script and its button images only."""
    files = {"openseadragon.min.js": build / "openseadragon.min.js"}
    images = build / "images"
    if images.is_dir():
        for f in sorted(images.iterdir()):
            if _BUTTON_IMAGE.match(f.name) and f.is_file() and not f.is_symlink():
                files[f"images/{f.name}"] = f
    return files


def install_openseadragon(dest: Path, build: Path | None = None) -> bool:
    """Copy OpenSeadragon into ``dest/openseadragon/``; False when none is installed here."""
    build = build or find_openseadragon()
    if build is None:
        return False
    for rel, src in openseadragon_files(build).items():
        target = dest / OSD_DIR / rel
        if target.is_file() and target.stat().st_size == src.stat().st_size:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        copy_atomic(src, target)
    return True


def _page(title: str, info: str, source_js: str, osd_base: str | None, options: dict) -> str:
    local = osd_base is not None
    base = osd_base if local else OSD_CDN
    script = (f'<script src="{html.escape(base)}openseadragon.min.js"></script>' if local else
              "<!-- No OpenSeadragon was installed where bigcppn looked (npm install openseadragon), so this\n"
              "     page loads it from a CDN and needs the internet. -->\n"
              f'<script src="{OSD_CDN}openseadragon.min.js"></script>')
    opts = {"id": "viewer", "prefixUrl": f"{base}images/", "showNavigator": True, **options}
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
{GENERATOR_META} {__version__}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{html.escape(title)}</title>
<style>
  html, body {{ margin: 0; height: 100%; background: #000; color: #bbb; font: 13px system-ui, sans-serif; }}
  #viewer {{ position: absolute; inset: 0; }}
  #info {{ position: absolute; left: 8px; bottom: 6px; z-index: 2; pointer-events: none; }}
</style>
{script}
</head>
<body>
<div id="viewer"></div>
<div id="info">{html.escape(info)}</div>
<script>
{source_js}
const options = {json.dumps(opts, indent=2)};
// ?drawer=canvas (or webgl, html) picks OpenSeadragon's drawer
const drawer = new URLSearchParams(location.search).get("drawer");
if (["canvas", "webgl", "html"].includes(drawer)) options.drawer = drawer;
Promise.resolve(source).then(tileSources => {{
  window.viewer = OpenSeadragon(Object.assign(options, {{ tileSources }}));
}});
</script>
</body>
</html>
"""


def static_page(p: Pyramid, title: str, info: str, local_osd: bool) -> str:
    """The page beside a pyramid written by ``bigcppn pyramid`` (``NAME.html``, or ``index.html`` in its folder)."""
    return _page(title, info, p.layout.tile_source_js(p), f"{OSD_DIR}/" if local_osd else None,
                 {"maxZoomPixelRatio": 2})


def live_page(title: str, info: str, local_osd: bool, dzi: str = "/image.dzi") -> str:
    """The page ``bigcppn serve`` answers at ``/``: the live, ever-deeper DeepZoom image."""
    return _page(title, info, f"const source = {json.dumps(dzi)};", f"/{OSD_DIR}/" if local_osd else None,
                 # every tile costs a render: go straight to the level in view, skip the blurry ones
                 {"maxZoomPixelRatio": 2, "immediateRender": True, "zoomPerScroll": 1.6,
                  "visibilityRatio": 0.2})
