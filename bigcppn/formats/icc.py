"""The ICC profiles bigcppn embeds: libvips' built-in sRGB for colour, its sGrey for grey.

A print RIP applies its own default to an untagged grey file, so grey outputs
carry a grey profile too. libvips ships one, ``sgrey`` (ICC v4.2, display
class ``mntr``, colour space GRAY, D50 white point, a ``para`` tone curve that
is the sRGB curve: gamma 2.4, linear below 0.04045, 360 bytes), which its
savers embed for ``profile="sgrey"``; colour uses its ``srgb`` (480 bytes).
bigcppn's own TIFF writer embeds the same bytes, so both roads write the
same profile.

WebP always stores colour (libvips expands grey to RGB), so a grey profile
does not belong there: :func:`profile_name` gives none for a grey WebP (``grey=False``).

CMYK outputs (``--cmyk``) carry their output profile: libvips' built-in
``cmyk`` (a 940 KB output-class CMYK profile) or a ``.icc`` file, checked by
:func:`cmyk_profile` before anything is rendered.
"""

from __future__ import annotations

import functools
import struct
from pathlib import Path

import pyvips

from ..errors import UserError

__all__ = ["profile_name", "profile_for", "srgb_profile", "grey_profile", "builtin_profile", "cmyk_profile",
           "icc_description", "BUILTIN_CMYK"]

BUILTIN_CMYK = "cmyk"  # output.cmyk naming libvips' built-in CMYK profile


def profile_name(bands: int, cmyk: str = "", grey: bool = True) -> str | None:
    """The profile ``bands`` bands embed (a libvips built-in's name or, CMYK, a file), or None.

    ``grey``: whether the format holds a grey profile (:attr:`bigcppn.formats.base.Format.grey_profile`).
    """
    if bands == 4:
        return cmyk or BUILTIN_CMYK
    if bands >= 3:
        return "srgb"
    return "sgrey" if grey else None


@functools.cache
def builtin_profile(name: str) -> bytes:
    """The bytes of a libvips built-in profile (``srgb``, ``sgrey``), as its savers embed them."""
    bands, interpretation = {"sgrey": (1, "b-w"), "cmyk": (4, "cmyk")}.get(name, (3, "srgb"))
    probe = pyvips.Image.black(1, 1, bands=bands).copy(interpretation=interpretation)
    return bytes(pyvips.Image.new_from_buffer(probe.tiffsave_buffer(profile=name), "").get("icc-profile-data"))


def srgb_profile() -> bytes:
    return builtin_profile("srgb")


def grey_profile() -> bytes:
    return builtin_profile("sgrey")


def profile_for(bands: int) -> bytes:
    """The profile bigcppn's own TIFF writer embeds for ``bands`` bands."""
    return builtin_profile(profile_name(bands))


def cmyk_profile(spec: str) -> bytes:
    """The CMYK output profile ``output.cmyk`` names: libvips' built-in one, or an ICC file; UserError if unusable."""
    if spec == BUILTIN_CMYK:
        return builtin_profile(BUILTIN_CMYK)
    path = Path(spec)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"--cmyk {spec}: no such profile file") from None
    except OSError as exc:
        raise UserError(f"--cmyk {spec}: cannot read it ({exc.strerror})") from None
    if len(data) < 132 or data[36:40] != b"acsp":
        raise UserError(f"--cmyk {spec}: not an ICC profile")
    if data[16:20] != b"CMYK":
        space = data[16:20].decode("latin-1").strip()
        raise UserError(f"--cmyk {spec}: an ICC profile of {space or 'no'} colour space, not CMYK; "
                        "give a CMYK output profile (e.g. ISOcoated_v2, GRACoL, SWOP)")
    return data


def icc_description(data: bytes) -> str:
    """A profile's description (its ``desc`` tag, ICC v2 text or v4 ``mluc``), or ""."""
    try:
        (count,) = struct.unpack_from(">I", data, 128)
        for i in range(min(count, 256)):
            sig, off, size = struct.unpack_from(">4sII", data, 132 + 12 * i)
            if sig != b"desc":
                continue
            tag = data[off : off + size]
            if tag[:4] == b"desc":
                (n,) = struct.unpack_from(">I", tag, 8)
                return tag[12 : 12 + n].split(b"\0")[0].decode("latin-1").strip()
            if tag[:4] == b"mluc":
                length, at = struct.unpack_from(">II", tag, 20)
                return tag[at : at + length].decode("utf-16-be", "replace").strip()
    except struct.error:
        pass
    return ""
