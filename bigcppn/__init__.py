"""bigcppn: render CPPN art at poster and gigapixel scale, streaming into libvips."""

__version__ = "0.1.0"
