"""The two kinds of failure the command line tells apart.

``UserError`` means the input was wrong (a config, a flag, an output path): the
command prints one line and exits with status 2 before anything is rendered.
``RenderError`` means something failed while rendering or writing: status 1.
"""

__all__ = ["BigCPPNError", "UserError", "ConfigError", "RenderError"]


class BigCPPNError(Exception):
    """Base class of every error bigcppn raises on purpose."""


class UserError(BigCPPNError):
    """Bad input: exit status 2, one line, nothing written."""


class ConfigError(UserError):
    """A config file or override is missing, malformed or out of range."""


class RenderError(BigCPPNError):
    """A failure during rendering or encoding: exit status 1."""
