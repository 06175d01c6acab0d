"""bigcppn: render CPPN art at poster and gigapixel scale, streaming into libvips."""

import os as _os

__version__ = "0.1.0"

# libvips keeps pyramid levels (and other temporaries) smaller than this in
# memory and larger ones in files in TMPDIR; its default, 100 MB, lets a large
# pyramid hold over 100 MB of levels in RAM. A user's own setting wins.
_os.environ.setdefault("VIPS_DISC_THRESHOLD", "20m")
