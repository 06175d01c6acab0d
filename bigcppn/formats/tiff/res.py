"""The resolution of each pyramid level: halved per level, in both TIFF writers.

A reduced level's pixel covers 2^k × 2^k pixels of the full one, so its
XResolution and YResolution are the full level's divided by 2^k. bigcppn's
own writer (:mod:`bigcppn.formats.tiff.writer`) writes them so; libvips' ``tiffsave``
(uncompressed TIFF) copies the full level's resolution into every level
(libvips 8.18), so :func:`halve_reduced_resolutions` rewrites those values in
place after it has saved: a RATIONAL is 8 bytes whatever its value, so
nothing moves.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

__all__ = ["level_resolution", "halve_reduced_resolutions"]

_RATIONAL = 5
_U32 = 2**32 - 1


def level_resolution(full: Fraction | float, level: int) -> tuple[int, int]:
    """(numerator, denominator) of the resolution of pyramid level ``level`` (0: the full one)."""
    # a RATIONAL is two 32-bit numbers: keep the numerator in range at a high DPI too
    most = max(1, min(100000, _U32 // (int(full) + 1)))
    r = Fraction(full).limit_denominator(most) / 2**level
    if r.denominator > _U32 or r.numerator > _U32:
        r = r.limit_denominator(_U32)
    return r.numerator, r.denominator


def halve_reduced_resolutions(path: str | Path) -> None:
    """Rewrite X/YResolution of the k-th directory of a TIFF chain as the first one's / 2^k.

    Only directories marked reduced (NewSubfileType bit 0) are touched; a
    classic TIFF's rationals are pointed to, a BigTIFF's sit in the entry.
    """
    with open(path, "r+b") as f:
        head = f.read(16)
        order = {b"II": "<", b"MM": ">"}[head[:2]]
        big = struct.unpack(order + "H", head[2:4])[0] == 43
        off = order + ("Q" if big else "I")  # an offset, or a count
        count = struct.Struct(order + ("Q" if big else "H"))
        entry = struct.Struct(order + ("HHQ8s" if big else "HHI4s"))
        ifd = struct.unpack_from(off, head, 8 if big else 4)[0]
        full: dict[int, Fraction] = {}
        level = 0
        while ifd:
            f.seek(ifd)
            (n,) = count.unpack(f.read(count.size))
            table = f.read(n * entry.size + struct.calcsize(off))
            entries = {}
            for k in range(n):
                tag, typ, n_values, value = entry.unpack_from(table, k * entry.size)
                entries[tag] = (typ, n_values, value, ifd + count.size + (k + 1) * entry.size - len(value))
            typ, _, value, _ = entries.get(254, (4, 1, bytes(8), 0))
            reduced = struct.unpack_from(order + ("H" if typ == 3 else "I"), value)[0] & 1
            for tag in (282, 283):
                typ, n_values, value, at = entries.get(tag, (0, 0, b"", 0))
                if typ != _RATIONAL or n_values != 1:
                    continue
                if not big:  # a classic TIFF points to its rationals
                    (at,) = struct.unpack_from(off, value)
                f.seek(at)
                num, den = struct.unpack(order + "II", f.read(8))
                if level == 0:
                    full[tag] = Fraction(num, den or 1)
                elif reduced and tag in full:
                    f.seek(at)
                    f.write(struct.pack(order + "II", *level_resolution(full[tag], level)))
            (ifd,) = struct.unpack_from(off, table, n * entry.size)
            level += 1
