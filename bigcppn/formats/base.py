"""The :class:`Format` every output format is, and the :class:`Writer` protocol its writers speak.

A format owns every decision about itself: the settings it refuses, its
lossiness and colour profile, the files it makes and their size, how its
config is embedded and read back (its :mod:`~bigcppn.formats.provenance`
kind), which writer opens it, and whether a Ray cluster can cut it into
blocks. Callers look a format up (:func:`bigcppn.formats.registry.format_for`)
and ask it; none compares a format's name. One module a format:
:mod:`~bigcppn.formats.tiff.format`, :mod:`~bigcppn.formats.raster`,
:mod:`~bigcppn.formats.deepzoom.format`, :mod:`~bigcppn.formats.pdf.format`.

Pure knowledge at import: pyvips and the writers load inside the methods that
open or save.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .provenance import XMP, Provenance

if TYPE_CHECKING:
    import numpy as np
    import pyvips

    from ..config import Config, OutputConfig

__all__ = ["Format", "Writer", "WriterSpec", "CMYK_MPIX_S"]

# libvips' icc_transform sRGB -> CMYK, MPix/s a core (measured 5.4 MPix/s on this loaded 2-core CPU).
CMYK_MPIX_S = 2.7


class Writer(Protocol):
    """Rows in, a file out."""

    def write(self, rows: np.ndarray) -> None:
        """The next (rows, width, bands) rows, top to bottom."""

    def close(self) -> None:
        """Finish the file (raises if it could not be written)."""

    def abort(self) -> None:
        """Give up: stop any work in flight; what was written is the caller's to remove."""


@dataclass(frozen=True)
class WriterSpec:
    """What a writer is opened with: where, which format, the image's shape, the settings and the metadata."""

    path: Path
    fmt: "Format"
    width: int
    height: int
    bands: int  # of the samples the writer takes: 4 for CMYK
    out: OutputConfig
    config: Config | None
    dpi: float | None
    description: str | None
    bleed: int = 0

    @property
    def xmp(self) -> bytes | None:
        from .provenance import xmp_packet

        return xmp_packet(self.description) if self.description else None

    @property
    def icc(self) -> bytes:
        """The profile of the samples written: sRGB, sGrey, or the CMYK output profile."""
        from .icc import cmyk_profile, profile_for

        return cmyk_profile(self.out.cmyk) if self.bands == 4 else profile_for(self.bands)


@dataclass(frozen=True)
class Format:
    """One output format; subclasses override what differs. The defaults describe a libvips single image."""

    name: str
    extensions: tuple[str, ...]
    max_side: int = 2**31 - 1
    depths: tuple[int, ...] = (8,)
    # Rough libvips encoding speed on one core of this class of CPU, MPix/s (for `plan`).
    encode_mpix_s: float = 50.0
    # Rough bytes written per byte of raw pixels, for the disk-space check and `plan`.
    ratio_lossless: float = 0.4  # measured 0.1 for a smooth 32768² deflate TIFF; busy pictures compress less
    ratio_lossy: float = 0.12
    # How the config travels with the output (bigcppn.formats.provenance).
    provenance: Provenance = XMP
    # The output.compression values it takes (empty: it has no such choice and ignores the key).
    compressions: tuple[str, ...] = ()
    # Whether it holds CMYK (--cmyk), and crop marks (--crop-marks).
    cmyk: bool = False
    crop_marks: bool = False
    # The largest page side in inches (PDF: 14400 units of 1/72 in), 0 for none.
    max_inches: float = 0.0
    # A grey picture embeds libvips' sGrey profile (WebP cannot hold a grey profile).
    grey_profile: bool = True
    # A print page that holds the picture (PDF), not a picture file itself: no contact sheets.
    page: bool = False
    # Whether its writer only appends (rewriting at most the last few MiB, as a zip entry's header), so that a
    # bucket upload may send the parts behind the end while the file is written (bigcppn.formats.follow).
    appends: bool = True

    @property
    def label(self) -> str:
        """The format's name in messages."""
        return self.name.upper()

    # ---------------------------------------------------------------- what it is

    def lossy(self, out: OutputConfig) -> bool:
        """Whether the pixels written differ from the rendered ones."""
        return False

    def is_pyramid(self, out: OutputConfig) -> bool:
        """Whether the output holds reduced levels too."""
        return False

    def single_image(self) -> bool:
        """Whether the output is one picture file (not a DeepZoom folder or zip of tiles)."""
        return True

    def own_writer(self, out: OutputConfig) -> bool:
        """Whether bigcppn's own writer, not libvips, writes these settings."""
        return False

    def produced(self, path: Path) -> list[Path]:
        """The paths a save to ``path`` creates, the one that marks it complete last."""
        return [path]

    def objects(self, width: int, height: int, out: OutputConfig) -> int:
        """How many files (objects in a bucket) a render of ``width`` x ``height`` makes."""
        return len(self.produced(Path("x")))

    def uncompressed(self, out: OutputConfig) -> bool:
        """Whether the file holds the raw samples (then it is as large as they are)."""
        return False

    def profile_name(self, bands: int, cmyk: str = "") -> str | None:
        """The profile ``bands`` bands embed (a libvips built-in's name or, CMYK, a file), or None."""
        from .icc import profile_name

        return profile_name(bands, cmyk, self.grey_profile)

    # ---------------------------------------------------------------- what it refuses

    def refusal(self, out: OutputConfig) -> str | None:
        """Why these output settings cannot be written as this format (one line), or None."""
        name = self.label
        if self.compressions and out.compression not in self.compressions:
            return (f"{name} takes output.compression {', '.join(self.compressions[:-1])} or "
                    f"{self.compressions[-1]}, not {out.compression}")
        if self.compressions and self.lossy(out) and out.depth == 16:
            return f"JPEG-compressed {name} holds 8 bits; use --set output.compression=deflate for 16 bits"
        own = self.own_refusal(out)
        if own:
            return own
        if out.cmyk and not self.cmyk:
            return f"{name} cannot hold CMYK; write .tif, .jpg or .pdf for --cmyk"
        if out.crop_marks and not self.crop_marks:
            return f"--crop-marks are for PDF; {name} has no room for them (write .pdf)"
        return None

    def own_refusal(self, out: OutputConfig) -> str | None:
        """What this format alone refuses (checked after the compression and before CMYK and crop marks)."""
        return None

    def fitted(self, cfg: Config) -> Config:
        """``cfg`` with the output's own settings fitted to the canvas (the TIFF tile size); as is by default."""
        return cfg

    # ---------------------------------------------------------------- what it costs

    def encode_rate(self, out: OutputConfig, cores: int) -> float:
        """Rough speed of writing it, MPix/s: the writer, and the CMYK conversion before it (measured)."""
        rate = self.writer_rate(out, cores)
        return 1 / (1 / rate + 1 / (CMYK_MPIX_S * cores)) if out.cmyk else rate

    def writer_rate(self, out: OutputConfig, cores: int) -> float:
        """Rough encoding speed of the writer that writes it, MPix/s (measured on a CPU of this class)."""
        return self.encode_mpix_s

    def writer_text(self, out: OutputConfig, cores: int) -> str:
        """Who writes it, in words (for ``plan``)."""
        who = self.writer_words(out, cores)
        if out.cmyk:
            profile = "libvips' built-in CMYK profile" if out.cmyk == "cmyk" else out.cmyk
            return f"{who}, in CMYK through {profile} ({out.intent})"
        return who

    def writer_words(self, out: OutputConfig, cores: int) -> str:
        return "libvips"

    def estimate_bytes(self, width: int, height: int, bands: int, out: OutputConfig) -> int:
        """A rough size of the written file (pyramid levels included)."""
        raw = width * height * (4 if out.cmyk else bands) * (out.depth // 8)
        ratio = 1.02 if self.uncompressed(out) else self.ratio_lossy if self.lossy(out) else self.ratio_lossless
        pyramid = 4 / 3 if self.is_pyramid(out) else 1.0
        return int(raw * ratio * pyramid) + 64 * 1024

    def disk_needed(self, width: int, height: int, bands: int, out: OutputConfig) -> int:
        """What the free-space check asks for: the file, and whatever its writer spools beside it."""
        return self.disk_for(self.estimate_bytes(width, height, bands, out), out)

    def disk_for(self, estimated: int, out: OutputConfig) -> int:
        """The free disk a write of ``estimated`` bytes needs: the file, and whatever its writer spools beside it."""
        return estimated

    def level_sizes(self, width: int, height: int, out: OutputConfig) -> list[tuple[int, int]]:
        """The (width, height) of each picture the output holds, the largest first (for the size estimate)."""
        return [(width, height)]

    def encoded_bytes(self, image: np.ndarray, out: OutputConfig, config: Config | None,
                      folder: Path) -> tuple[int, int] | None:
        """Bytes of ``image`` (rows, columns, bands) encoded as one level of this output with these settings,
        and the part of them a file writes once; None (the default): the size estimate
        (:mod:`bigcppn.estimate.sizes`) writes it through the format's own writer with :meth:`one_level`'s
        settings and counts the files :meth:`produced` names."""
        return None

    def sample_side(self, out: OutputConfig) -> int:
        """The side of the size estimate's sample tiles: 256, or a tiled output's own tile."""
        return 256

    def one_level(self, out: OutputConfig) -> OutputConfig:
        """Settings that write one level of this output alone (a TIFF without its reduced levels)."""
        return out

    # ---------------------------------------------------------------- how it is written

    def open(self, spec: WriterSpec) -> Writer:
        """The writer of these settings; by default libvips, pulling the rows as a stream."""
        from .vips import StreamWriter

        def save(image: pyvips.Image) -> None:
            self.save(image, spec.path, spec.out, dpi=spec.dpi, description=spec.description)

        return StreamWriter(spec.width, spec.height, spec.bands, spec.out.depth, save)

    def open_encoded(self, spec: WriterSpec, levels: int) -> Writer:
        """A writer whose first ``levels`` levels come encoded, block by block (Ray); only block formats have one."""
        raise ValueError("only bigcppn's TIFF and DeepZoom writers take encoded levels")

    def save(self, image: pyvips.Image, path: Path, out: OutputConfig, dpi: float | None = None,
             description: str | None = None) -> None:
        """Save ``image`` with libvips: resolution, the config in the format's metadata, the colour profile."""
        if dpi:
            image = image.copy(xres=dpi / 25.4, yres=dpi / 25.4)
        if description:
            image = self.provenance.embed(image, description)
        profile = self.profile_name(image.bands, out.cmyk)
        self.vips_save(image, path, out, {"profile": profile} if profile else {})

    def vips_save(self, image: pyvips.Image, path: Path, out: OutputConfig, icc: dict[str, Any]) -> None:
        """The libvips saver call (``icc``: the profile option)."""
        raise ValueError(f"libvips does not write {self.label} for bigcppn")

    def finish(self, path: Path, out: OutputConfig, config: Config | None) -> None:
        """After the writer closed: the config where the output keeps it outside its pixels (nothing by default)."""

    # ---------------------------------------------------------------- Ray

    def blocks(self, out: OutputConfig):
        """How a Ray cluster cuts it into blocks (a :class:`~bigcppn.formats.tiff.blocks.BlockKind`), or None."""
        return None

    def described(self, out: OutputConfig) -> str:
        """The output in a few words, for a refusal (``'png'``, ``.tif with none tiles``)."""
        return f"'{self.name}'"

