"""A TIFF's directories as :class:`~bigcppn.formats.tiff.writer.TiledTiffWriter` writes them: one IFD a level.

Each directory owns its metadata, as libvips writes it: its own copy of the
description, XMP, ICC profile and JPEGTables, and its level's resolution. A
mixin: the writer holds the levels, the tags and the codec these methods read.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from .jpeg import jpeg_tables, ycbcr
from .res import level_resolution

__all__ = ["TiffDirectories"]


class TiffDirectories:
    """The IFD half of the TIFF writer: entries, their values and the chain of directories."""

    def _entries(self, lv, big: bool, blobs: dict[int, bytes]) -> list[tuple[int, int, int, bytes]]:
        """(tag, type, count, value bytes) for one level, sorted by tag."""
        S, L, R, A, B, U, L8 = 3, 4, 5, 2, 1, 7, 16
        b = self.bands
        off_type = L8 if big else L
        pack = "<%dQ" if big else "<%dI"
        n = len(lv.offsets)
        e: list[tuple[int, int, int, bytes]] = []
        if lv.index:
            e.append((254, L, 1, struct.pack("<I", 1)))
        e += [
            (256, L, 1, struct.pack("<I", lv.width)),
            (257, L, 1, struct.pack("<I", lv.height)),
            (258, S, b, struct.pack(f"<{b}H", *[self.depth] * b)),
            (259, S, 1, struct.pack("<H", self._codec.tag)),
            (262, S, 1, struct.pack("<H", self._photometric())),
        ]
        if self.tags.description:
            e.append((270, A, len(blobs[270]), blobs[270]))
        e += [(274, S, 1, struct.pack("<H", 1)), (277, S, 1, struct.pack("<H", b))]
        ink = [(332, S, 1, struct.pack("<H", 1))] if b == 4 else []  # InkSet: CMYK
        if self.tags.dpi:  # each level its own resolution: halved per level
            rat = struct.pack("<II", *level_resolution(self.tags.dpi, lv.index))
            e += [(282, R, 1, rat), (283, R, 1, rat)]
        e.append((284, S, 1, struct.pack("<H", 1)))
        if self.tags.dpi:
            e.append((296, S, 1, struct.pack("<H", 2)))
        if self._predictor:
            e.append((317, S, 1, struct.pack("<H", 2)))
        e += [
            (322, L, 1, struct.pack("<I", self.tile)),
            (323, L, 1, struct.pack("<I", self.tile)),
            (324, off_type, n, struct.pack(pack % n, *[lv.start + o for o in lv.offsets])),
            (325, off_type, n, struct.pack(pack % n, *lv.counts)),
        ] + ink + [(339, S, b, struct.pack(f"<{b}H", *[1] * b))]
        if self._codec.jpeg:
            e.append((347, U, len(blobs[347]), blobs[347]))
        if self.tags.xmp:
            e.append((700, B, len(blobs[700]), blobs[700]))
        if self.tags.icc:
            e.append((34675, U, len(blobs[34675]), blobs[34675]))
        return e

    def _photometric(self) -> int:
        if self.bands == 1:
            return 1  # min-is-black
        if self.bands == 4:
            return 5  # separated: CMYK (InkSet 1)
        return 6 if self._codec.jpeg and ycbcr(self.quality, self.bands) else 2  # YCbCr or RGB

    def _blobs(self) -> dict[int, bytes]:
        """Metadata every level carries, each its own copy."""
        blobs = {}
        if self._codec.jpeg:
            blobs[347] = jpeg_tables(self.quality)
        if self.tags.description:
            blobs[270] = self.tags.description.encode("utf-8") + b"\0"
        if self.tags.xmp:
            blobs[700] = self.tags.xmp
        if self.tags.icc:
            blobs[34675] = self.tags.icc
        return blobs

    def _directories_size(self, big: bool) -> int:
        entry, head = (20, 16) if big else (12, 6)
        slot = 8 if big else 4
        n = 0
        blobs = sum(len(v) + 8 for v in self._blobs().values())
        for lv in self.levels:
            n += head + 25 * entry + 2 * len(lv.offsets) * slot + 64 + blobs
        return n

    def _write_directories(self, f: BinaryIO, big: bool) -> int:
        """Append one directory per level, each after its own values; return the first one's offset."""

        def align() -> None:
            pad = -f.tell() % 8
            f.write(b"\0" * pad)

        slot = 8 if big else 4
        blobs = self._blobs()
        inline = struct.Struct("<Q" if big else "<I")
        first = 0
        prev_next_at = None
        for lv in self.levels:
            entries = self._entries(lv, big, blobs)
            # values too large for the entry go before the directory, a copy for each level
            values: dict[int, int] = {}
            for tag, _typ, _count, data in entries:
                if len(data) > slot:
                    align()
                    values[tag] = f.tell()
                    f.write(data)
            align()
            here = f.tell()
            if prev_next_at is None:
                first = here
            else:
                f.seek(prev_next_at)
                f.write(inline.pack(here))
                f.seek(here)
            out = bytearray(struct.pack("<Q" if big else "<H", len(entries)))
            for tag, typ, count, data in entries:
                out += struct.pack("<HHQ" if big else "<HHI", tag, typ, count)
                out += inline.pack(values[tag]) if len(data) > slot else data.ljust(slot, b"\0")
            prev_next_at = here + len(out)
            out += b"\0" * slot  # next directory: patched, or 0 for the last
            f.write(out)
        return first
