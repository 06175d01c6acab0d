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


# An output profile is a few megabytes at most (libvips' own CMYK profile: 940 KB).
MAX_PROFILE_BYTES = 64 << 20


def cmyk_profile(spec: str) -> bytes:
    """The CMYK output profile ``output.cmyk`` names: libvips' built-in one, or an ICC file; UserError if unusable.

    The file is read like every untrusted file (a regular file only, at most
    :data:`MAX_PROFILE_BYTES`, a FIFO refused without waiting), and must be an
    output (printer) profile of CMYK that LittleCMS can transform sRGB into.
    """
    from ..core.limits import read_bounded

    if spec == BUILTIN_CMYK:
        return builtin_profile(BUILTIN_CMYK)
    if "\0" in spec:
        raise UserError(f"--cmyk {spec!r}: a file name cannot hold a NUL byte; give a profile file")
    path = Path(spec)
    if not path.exists():
        raise UserError(f"--cmyk {spec}: no such profile file")
    try:
        data = read_bounded(path, f"--cmyk profile", MAX_PROFILE_BYTES)
    except UserError as exc:
        raise UserError(str(exc).replace("; give a file", "; give an ICC profile file")) from None
    if len(data) < 132 or data[36:40] != b"acsp":
        raise UserError(f"--cmyk {spec}: not an ICC profile")
    if data[16:20] != b"CMYK":
        space = data[16:20].decode("latin-1").strip()
        raise UserError(f"--cmyk {spec}: an ICC profile of {space or 'no'} colour space, not CMYK; "
                        "give a CMYK output profile (e.g. ISOcoated_v2, GRACoL, SWOP)")
    if data[12:16] != b"prtr":
        kind = data[12:16].decode("latin-1").strip()
        raise UserError(f"--cmyk {spec}: a CMYK profile of class '{kind}', not an output (printer) profile; "
                        "give a press's output profile (e.g. ISOcoated_v2, GRACoL, SWOP)")
    problem = _transform_problem(data)
    if problem:
        raise UserError(f"--cmyk {spec}: LittleCMS cannot use this profile ({problem}); give a valid CMYK "
                        "output profile")
    return data


@functools.lru_cache(maxsize=8)
def _transform_problem(data: bytes) -> str:
    """Why LittleCMS (through libvips) cannot transform sRGB into the profile ``data``; "" when it can."""
    import os
    import tempfile

    fd, name = tempfile.mkstemp(suffix=".icc")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        probe = pyvips.Image.black(2, 2, bands=3).copy(interpretation="srgb")
        out = probe.icc_transform(name, input_profile="srgb", intent="relative")
        if out.bands != 4:
            return f"it gives {out.bands} channels, not 4"
        out.numpy()
        return ""
    except pyvips.Error as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        return lines[-1] if lines else "refused"
    finally:
        os.unlink(name)


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
