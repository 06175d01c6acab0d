"""The package's version, in a leaf module: anything below the API imports it from here, never from the package root."""

__version__ = "0.1.0"
