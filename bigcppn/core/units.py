"""Print units: paper sizes, lengths, DPI and bleed → pixels. Pure arithmetic.

Pixels: the trimmed picture is round(paper in inches × dpi) a side, and the bleed
the whole number of pixels at least as wide as asked (less than one pixel more),
added on every side; the two are rounded apart so that the trim is the paper to
the nearest pixel and the bleed is never short. Bleed extends the canvas on
every side; the network simply continues past the trim edge, so bleed costs
nothing but pixels. A PDF page places those pixels so that its TrimBox is the
paper itself (:func:`trim_inches`), to a hundredth of a point.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import UserError
from .limits import DPI_RANGE

__all__ = ["PAPER_MM", "PrintSize", "parse_length_in", "parse_paper_in", "parse_aspect", "print_canvas",
           "bleed_pixels", "trim_inches"]

MM_PER_IN = 25.4

# ISO 216 A sizes and the North American sizes, portrait (width, height) in millimetres.
PAPER_MM: dict[str, tuple[float, float]] = {
    "a0": (841, 1189),
    "a1": (594, 841),
    "a2": (420, 594),
    "a3": (297, 420),
    "a4": (210, 297),
    "a5": (148, 210),
    "a6": (105, 148),
    "letter": (8.5 * MM_PER_IN, 11 * MM_PER_IN),
    "legal": (8.5 * MM_PER_IN, 14 * MM_PER_IN),
    "tabloid": (11 * MM_PER_IN, 17 * MM_PER_IN),
}

_UNIT_IN = {"mm": 1 / MM_PER_IN, "cm": 10 / MM_PER_IN, "in": 1.0}
# The longest length read (a paper side, a bleed): 100 metres, in inches.
MAX_LENGTH_IN = 100_000 / MM_PER_IN
_NUM = r"(\d+(?:\.\d*)?|\.\d+)"
_LENGTH = re.compile(rf"^\s*{_NUM}\s*(mm|cm|in)\s*$", re.I)
_PAIR = re.compile(rf"^\s*{_NUM}\s*[x×]\s*{_NUM}\s*(mm|cm|in)\s*$", re.I)


def parse_length_in(text: str) -> float:
    """A length such as ``3mm``, ``0.5cm`` or ``0.125in``, in inches."""
    m = _LENGTH.match(text)
    if not m:
        raise UserError(f"cannot read the length '{text}'; write a number and a unit, e.g. 3mm, 0.5cm or 0.125in")
    return _bounded(float(m.group(1)) * _UNIT_IN[m.group(2).lower()], text)


def _bounded(inches: float, text: str) -> float:
    if not inches <= MAX_LENGTH_IN:  # (also catches a number of hundreds of digits, read as inf)
        raise UserError(f"the length in '{text}' is over 100 m; give a real paper size or bleed")
    return inches


def parse_paper_in(text: str) -> tuple[float, float]:
    """A paper size (A0..A6, letter, legal, tabloid) or ``WxHmm|cm|in``, as (width, height) in inches."""
    key = text.strip().lower()
    if key in PAPER_MM:
        w, h = PAPER_MM[key]
        return w / MM_PER_IN, h / MM_PER_IN
    m = _PAIR.match(text)
    if not m:
        names = ", ".join(k.upper() if k.startswith("a") else k for k in PAPER_MM)
        raise UserError(f"unknown paper size '{text}'; use one of {names}, or WxH with mm, cm or in (e.g. 50x70cm)")
    scale = _UNIT_IN[m.group(3).lower()]
    w, h = _bounded(float(m.group(1)) * scale, text), _bounded(float(m.group(2)) * scale, text)
    if w <= 0 or h <= 0:
        raise UserError(f"paper size '{text}' must have a positive width and height")
    return w, h


_RATIO = re.compile(rf"^\s*{_NUM}\s*[:/]\s*{_NUM}\s*$")


def parse_aspect(text: str, landscape: bool = False) -> float:
    """A canvas shape as width / height: ``3:2``, ``4961:7016``, ``1.5``, or a paper size (``A2``, ``50x70cm``).

    ``landscape`` turns it so the long side is horizontal.
    """
    m = _RATIO.match(text)
    try:
        if m:
            w, h = float(m.group(1)), float(m.group(2))
        elif re.fullmatch(rf"\s*{_NUM}\s*", text):
            w, h = float(text), 1.0
        else:
            w, h = parse_paper_in(text)
    except UserError:
        raise UserError(f"cannot read the aspect '{text}'; give width:height (3:2), a number (1.5) or a paper "
                        "size (A2, 50x70cm)") from None
    if w <= 0 or h <= 0:
        raise UserError(f"the aspect '{text}' needs a positive width and height")
    return max(w, h) / min(w, h) if landscape else w / h


@dataclass(frozen=True)
class PrintSize:
    """A print job in pixels: the full canvas (bleed included), the bleed on each side, and the DPI."""

    width: int
    height: int
    bleed: int
    dpi: float

    @property
    def trim_px(self) -> tuple[int, int]:
        return self.width - 2 * self.bleed, self.height - 2 * self.bleed

    def mm(self, trimmed: bool = False) -> tuple[float, float]:
        w, h = self.trim_px if trimmed else (self.width, self.height)
        return w / self.dpi * MM_PER_IN, h / self.dpi * MM_PER_IN


def print_canvas(paper_in: tuple[float, float], dpi: float, bleed_in: float = 0.0, landscape: bool = False) -> PrintSize:
    """Pixels for a paper size at ``dpi`` with ``bleed_in`` inches of bleed on every side."""
    if not DPI_RANGE[0] <= dpi <= DPI_RANGE[1]:
        raise UserError(f"--dpi must be a positive number from {DPI_RANGE[0]:g} to {DPI_RANGE[1]:g}, got {dpi:g}")
    if bleed_in < 0:
        raise UserError("--bleed must not be negative")
    w, h = paper_in
    w, h = (max(w, h), min(w, h)) if landscape else (w, h)
    trim_w, trim_h = round(w * dpi), round(h * dpi)
    bleed = bleed_pixels(bleed_in, dpi)
    if min(trim_w, trim_h) < 1:
        raise UserError(f"the paper is under one pixel at {dpi:g} dpi; use a larger --size or --dpi")
    return PrintSize(trim_w + 2 * bleed, trim_h + 2 * bleed, bleed, float(dpi))


def bleed_pixels(bleed_in: float, dpi: float) -> int:
    """The fewest whole pixels at ``dpi`` covering ``bleed_in`` inches (never short of the bleed asked)."""
    return math.ceil(round(bleed_in * dpi, 6))  # (3 mm at 300 dpi is 35.43 px: 36; 0.125 in, 37.5: 38)


# Lengths a paper side is measured in, in inches, tried in this order (the simplest that fits wins).
_PAPER_SIDES_IN = sorted({v / MM_PER_IN for wh in PAPER_MM.values() for v in wh})
_PAPER_STEPS_IN = (1 / MM_PER_IN, 1 / 8)  # whole millimetres, eighths of an inch


def trim_inches(pixels: int, dpi: float) -> float:
    """The paper side ``pixels`` at ``dpi`` were rounded from, in inches.

    A paper size's side is ``round(inches × dpi)`` pixels, so its length lies
    within half a pixel of ``pixels / dpi``. The simplest length there is taken:
    a side of a named paper (A0-A6, letter, legal, tabloid), then whole
    millimetres, then eighths of an inch; otherwise ``pixels / dpi`` itself (a
    canvas given in pixels whose side is no such length).
    """
    exact = pixels / dpi
    half = 0.5 / dpi + 1e-12
    for side in _PAPER_SIDES_IN:
        if abs(side - exact) <= half:
            return side
    for step in _PAPER_STEPS_IN:
        near = round(exact / step) * step
        if near > 0 and abs(near - exact) <= half:
            return near
    return exact
