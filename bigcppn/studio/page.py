"""The explore page: one HTML document with the token and the starting config in it, its script and style
shipped as package data (``bigcppn/studio/static/``), no CDN."""

from __future__ import annotations

import html
import json
from importlib import resources

from .._version import __version__

__all__ = ["page_html", "static_files", "choices"]

STATIC = ("explore.js", "explore.css")


def static_files() -> dict[str, bytes]:
    """The page's script and style, by name, read once from the package."""
    root = resources.files("bigcppn.studio") / "static"
    return {name: (root / name).read_bytes() for name in STATIC}


def choices() -> dict:
    """The values the page's menus offer, from the modules that own them."""
    from ..config import ACTIVATIONS, COLORS, INITS, INPUTS
    from ..core.units import PAPER_MM
    from .products import PRINT_FORMATS, PYRAMID_LAYOUTS, VIDEO_FORMATS
    from .views import PAGE_SEEDS

    papers = [k.upper() if k.startswith("a") else k for k in PAPER_MM]
    return {"activations": ACTIVATIONS, "inputs": INPUTS, "inits": INITS, "colors": COLORS, "papers": papers,
            "formats": PRINT_FORMATS, "layouts": PYRAMID_LAYOUTS, "videoFormats": VIDEO_FORMATS, "pageSeeds": PAGE_SEEDS}


def page_html(token: str, config: dict, local_osd: bool) -> str:
    boot = {"token": token, "config": config, "choices": choices(), "version": __version__}
    # inside <script>: no "</" may close it early
    boot_json = json.dumps(boot).replace("</", "<\\/")
    osd = ('<script src="/openseadragon/openseadragon.min.js"></script>' if local_osd else
           "<!-- no OpenSeadragon installed (npm install openseadragon): the live view shows previews only -->")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="generator" content="bigcppn {html.escape(__version__)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>bigcppn explore</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/explore.css">
{osd}
<script id="boot" type="application/json">{boot_json}</script>
<script src="/static/explore.js" defer></script>
</head>
<body>
<header><b>bigcppn explore</b>
  <button id="back" title="back to the previous settings">&larr;</button>
  <button id="forward" title="forward">&rarr;</button>
  <button id="fav" title="add to favourites">&#9733;</button>
  <a id="permalink" href="#">permalink</a>
  <span id="status"></span>
</header>
<main>
  <section id="left">
    <h2>Seeds <button id="prev-page">&lsaquo;</button> <span id="page-label"></span>
      <button id="next-page">&rsaquo;</button></h2>
    <div id="grid"></div>
    <h2>Favourites</h2>
    <div id="favs"></div>
  </section>
  <section id="centre">
    <div id="stage"><img id="preview" alt=""><div id="viewer"></div></div>
    <div id="error-general" class="error"></div>
  </section>
  <section id="right">
    <form id="controls" autocomplete="off"></form>
    <details id="toml-box" open><summary>Config (TOML)</summary>
      <pre id="toml"></pre>
      <a id="download-toml" download="bigcppn.toml" href="#">download</a>
      <textarea id="paste" rows="5" placeholder="paste a TOML config here"></textarea>
      <button id="load-toml" type="button">load pasted TOML</button>
      <div id="error-paste" class="error"></div>
    </details>
    <details id="print-box"><summary>Print</summary><form id="print"></form>
      <div id="print-plan"></div><div id="error-print" class="error"></div></details>
    <details id="pyramid-box"><summary>Pyramid</summary><form id="pyramid"></form>
      <div id="error-pyramid" class="error"></div></details>
    <details id="video-box"><summary>Video</summary><form id="video"></form>
      <div id="error-video" class="error"></div></details>
    <h2>Jobs</h2><div id="jobs"></div>
  </section>
</main>
</body>
</html>
"""
