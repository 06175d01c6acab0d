"""bigcppn: render CPPN art at poster and gigapixel scale, streaming into libvips.

The public API::

    import bigcppn
    cfg = bigcppn.load_config("configs/article/normal.toml", ["seed=11"])
    img = bigcppn.render_array(cfg, width=512, height=512)      # numpy (512, 512, 3) uint8
    bigcppn.render_file(cfg, "poster.tif")                      # a tiled pyramidal TIFF
    bigcppn.render_file(cfg, "preview.jpg", quality=80)         # output settings as keywords
    bigcppn.render_series(cfg, "poster-{seed}.tif", range(8))   # one file per seed
    bigcppn.render_pyramid(cfg, "site/poster.dzi")              # a DeepZoom pyramid + site/poster.html
    bigcppn.render_sheet(cfg, "sheet.png", "0-15")              # a contact sheet of seeds
    print(bigcppn.plan(cfg, "poster.tif"))                      # what a render would take, and how long
    print(bigcppn.plan_pyramid(cfg, "site/poster.dzi"))         # the same for a pyramid
    bigcppn.serve(cfg, port=8000)                               # a live viewer that zooms on forever
    bigcppn.explore(cfg, port=8000)                             # a page to find a picture and print it
    bigcppn.render_video(cfg, "zoom.mp4", zoom="1:50", seconds=5, fps=30)   # a clip (mp4, webm, gif, webp)
    for frame in bigcppn.frames(cfg, z_loop=0, width=320, height=180): ...  # its frames as uint8 arrays

An existing output is refused unless ``overwrite=True`` (a resumed pyramid of
the same render is not "existing").

Bad input raises :class:`UserError` (before anything is rendered); a failure
while rendering raises :class:`RenderError`, leaving nothing under the output's name.
"""

import os as _os

from ._version import __version__  # noqa: E402

# libvips keeps pyramid levels (and other temporaries) smaller than this in
# memory and larger ones in files in TMPDIR; its default, 100 MB, lets a large
# pyramid hold over 100 MB of levels in RAM. A user's own setting wins.
_os.environ.setdefault("VIPS_DISC_THRESHOLD", "20m")

from .api import (  # noqa: E402
    PlanInfo,
    plan,
    plan_pyramid,
    render_array,
    render_file,
    render_pyramid,
    render_series,
    render_sheet,
    serve,
)
from .animate.api import frames, render_video  # noqa: E402
from .config import Config, load_config  # noqa: E402
from .studio.run import explore  # noqa: E402  (above the API: its jobs go through it)
from .results import PyramidResult, RenderResult  # noqa: E402
from .errors import BigCPPNError, ConfigError, RenderError, UserError  # noqa: E402

__all__ = [
    "__version__",
    "Config",
    "load_config",
    "render_array",
    "render_file",
    "render_series",
    "render_sheet",
    "render_pyramid",
    "plan",
    "plan_pyramid",
    "serve",
    "explore",
    "render_video",
    "frames",
    "PlanInfo",
    "RenderResult",
    "PyramidResult",
    "BigCPPNError",
    "UserError",
    "ConfigError",
    "RenderError",
]
