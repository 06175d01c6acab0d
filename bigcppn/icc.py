"""The ICC profiles bigcppn embeds: libvips' built-in sRGB for colour, its sGrey for grey.

A print RIP applies its own default to an untagged grey file, so grey outputs
carry a grey profile too. libvips ships one, ``sgrey`` (ICC v4.2, display
class ``mntr``, colour space GRAY, D50 white point, a ``para`` tone curve that
is the sRGB curve: gamma 2.4, linear below 0.04045, 360 bytes), which its
savers embed for ``profile="sgrey"``; colour uses its ``srgb`` (480 bytes).
bigcppn's own TIFF writer embeds the same bytes, so both roads write the
same profile.

WebP always stores colour (libvips expands grey to RGB), so a grey profile
does not belong there: :func:`profile_name` gives none for a grey WebP.
"""

from __future__ import annotations

import functools

import pyvips

__all__ = ["profile_name", "profile_for", "srgb_profile", "grey_profile"]


def profile_name(bands: int, fmt_name: str = "tiff") -> str | None:
    """The libvips built-in profile a ``bands``-band ``fmt_name`` output embeds, or None."""
    if bands >= 3:
        return "srgb"
    return None if fmt_name == "webp" else "sgrey"


@functools.cache
def builtin_profile(name: str) -> bytes:
    """The bytes of a libvips built-in profile (``srgb``, ``sgrey``), as its savers embed them."""
    probe = pyvips.Image.black(1, 1, bands=1 if name == "sgrey" else 3)
    probe = probe.copy(interpretation="b-w" if name == "sgrey" else "srgb")
    return bytes(pyvips.Image.new_from_buffer(probe.tiffsave_buffer(profile=name), "").get("icc-profile-data"))


def srgb_profile() -> bytes:
    return builtin_profile("srgb")


def grey_profile() -> bytes:
    return builtin_profile("sgrey")


def profile_for(bands: int) -> bytes:
    """The profile bigcppn's own TIFF writer embeds for ``bands`` bands."""
    return builtin_profile(profile_name(bands))
