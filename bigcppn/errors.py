"""The two kinds of failure the command line tells apart.

``UserError`` means the input was wrong (a config, a flag, an output path): the
command prints one line and exits with status 2 before anything is rendered.
``RenderError`` means something failed while rendering or writing: status 1.
"""

__all__ = ["BigCPPNError", "UserError", "ConfigError", "ContactSheet", "RenderError", "one_line"]

# The longest message printed: an error names what was wrong, not all of it.
MAX_MESSAGE = 1000


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` as one line: line breaks and other unprintable characters escaped, at most ``limit`` long."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class BigCPPNError(Exception):
    """Base class of every error bigcppn raises on purpose; its message is always one line."""

    def __str__(self) -> str:
        return one_line(super().__str__())


class UserError(BigCPPNError):
    """Bad input: exit status 2, one line, nothing written."""


class ConfigError(UserError):
    """A config file or override is missing, malformed or out of range."""


class ContactSheet(UserError):
    """``--from`` a contact sheet without a seed: the sheet's ``config`` (its first cell's) and its ``seeds``;
    the caller that has a seed renders that cell, any other says to pick one."""

    def __init__(self, source, config, seeds: list[int]) -> None:
        shown = ", ".join(map(str, seeds[:4])) + (f", ... {seeds[-1]}" if len(seeds) > 4 else "")
        super().__init__(f"--from {source}: a contact sheet of {len(seeds)} seeds ({shown}); add --seed K to "
                         "render the cell of seed K")
        self.config, self.seeds = config, seeds


class RenderError(BigCPPNError):
    """A failure during rendering or encoding: exit status 1."""
