"""CMYK for print: each strip converted through an ICC output profile before the writer takes it.

An ICC transform is pixel-local (libvips ``icc_transform``: the input profile,
sRGB or sGrey, to the profile connection space and out through the output
profile, with lcms), so strips are converted one by one, independently, and the
output is the same as a conversion of the whole picture: the render stays a
stream. The output profile is libvips' built-in ``cmyk`` or a CMYK ``.icc``
file (``output.cmyk``), the intent ``output.intent`` (perceptual, relative,
saturation, absolute); relative colorimetric uses black point compensation,
as print workflows (Photoshop's default) do.

Who can take the 4 bands: bigcppn's TIFF writer (Photometric Separated,
InkSet CMYK, the profile in every directory; deflate, LZW or none), the PDF
writer (``DeviceCMYK``, the profile as the output intent), and libvips'
``jpegsave`` through the PNG stream: 4 bands arrive there as RGBA, and
:class:`~bigcppn.formats.writers.StreamWriter` tags them ``cmyk`` before the saver
sees them, so libvips writes an Adobe CMYK JPEG with the profile embedded.
"""

from __future__ import annotations

import numpy as np
import pyvips

from ..config import OutputConfig

__all__ = ["CmykWriter", "to_cmyk"]


# Pixels converted at once: libvips' transform goes through float Lab (12 bytes a pixel), so a
# full-width strip is converted a few rows at a time to keep that bounded.
CHUNK_PIXELS = 1 << 20


def to_cmyk(rows: np.ndarray, profile: str, intent: str, depth: int) -> np.ndarray:
    """(n, width, 1 or 3) sRGB / sGrey rows of ``depth`` bits as (n, width, 4) CMYK of the same depth."""
    if rows.ndim == 2:
        rows = rows[:, :, None]
    n, width, bands = rows.shape
    grey = bands == 1
    interpretation = ("grey16" if grey else "rgb16") if depth == 16 else ("b-w" if grey else "srgb")
    out = np.empty((n, width, 4), rows.dtype)
    step = max(1, CHUNK_PIXELS // width)
    for y in range(0, n, step):
        part = np.ascontiguousarray(rows[y : y + step])
        image = pyvips.Image.new_from_array(part).copy(interpretation=interpretation)
        cmyk = image.icc_transform(profile, input_profile="sgrey" if grey else "srgb", intent=intent,
                                   embedded=False, black_point_compensation=intent == "relative", depth=depth)
        out[y : y + step] = cmyk.numpy().reshape(part.shape[0], width, 4)
    _drop_cached()
    return out


def _drop_cached() -> None:
    """Empty libvips' operation cache, keeping its limit: it would keep the last ~100 transforms and their
    strips (measured: 150 MB more at 12000 px wide), for operations that are never repeated."""
    keep = pyvips.cache_get_max()
    pyvips.cache_set_max(0)
    pyvips.cache_set_max(keep)


class CmykWriter:
    """A :class:`~bigcppn.formats.writers.Writer` that converts each strip to CMYK and hands it to ``inner`` (4 bands)."""

    def __init__(self, inner, bands: int, out: OutputConfig) -> None:
        self.inner = inner
        self.bands = bands
        self.profile, self.intent, self.depth = out.cmyk, out.intent, out.depth

    def write(self, rows: np.ndarray) -> None:
        self.inner.write(to_cmyk(rows, self.profile, self.intent, self.depth))

    def close(self) -> None:
        self.inner.close()

    def abort(self) -> None:
        self.inner.abort()
