"""TOML text of plain values (what :func:`bigcppn.config.dump_toml` writes; Python reads TOML, it writes none)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["toml_value"]

_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_string(s: str) -> str:
    """A TOML basic string of ``s``: control characters escaped, a lone surrogate (not text) as U+FFFD."""
    out = []
    for c in s:
        n = ord(c)
        if c in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[c])
        elif n < 0x20 or n == 0x7F:
            out.append(f"\\u{n:04x}")
        else:
            out.append("\ufffd" if 0xD800 <= n < 0xE000 else c)
    return '"' + "".join(out) + '"'


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return str(v)
