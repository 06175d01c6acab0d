"""DeepZoom as one output: a ``.dzi`` with its ``NAME_files/`` folder, or a ``.szi`` zip of the same.

Who writes it: bigcppn's :class:`~bigcppn.formats.deepzoom.writer.DeepZoomWriter` for JPEG tiles (on every
core, measured faster than libvips' dzsave), libvips' dzsave for PNG and WebP tiles. Always a pyramid.
On Ray the same writer takes blocks whose lower levels the actors encoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..base import Format, Writer, WriterSpec
from ..provenance import SIDECAR, ZIP_ENTRY, add_to_szi, sidecar_json, sidecar_path, write_sidecar

if TYPE_CHECKING:
    import pyvips

    from ...config import Config, OutputConfig

__all__ = ["DeepZoomFormat", "DziFormat", "SziFormat", "DZI", "SZI", "PARALLEL_DZ", "dzsave_options"]

# Tile formats bigcppn's DeepZoom writer encodes on all cores instead of libvips (measured faster, same pixels).
PARALLEL_DZ = ("jpeg",)
# Tile formats dzsave writes on its direct path, with Q= (suffix= turns it off, up to 3x slower); the others
# are named by suffix= (at dzsave's own quality).
DIRECT = ("jpeg",)


def dzsave_options(out: OutputConfig) -> dict[str, Any]:
    """dzsave's tile options for ``out.dz_suffix``."""
    return {"Q": out.quality} if out.dz_suffix in DIRECT else {"suffix": f".{out.dz_suffix}"}


@dataclass(frozen=True)
class DeepZoomFormat(Format):
    def lossy(self, out: OutputConfig) -> bool:
        from ..tiles import tile_codec

        return tile_codec(out.dz_suffix).lossy

    def is_pyramid(self, out: OutputConfig) -> bool:
        return True

    def single_image(self) -> bool:
        return False

    def own_writer(self, out: OutputConfig) -> bool:
        return out.dz_suffix in PARALLEL_DZ

    def own_refusal(self, out: OutputConfig) -> str | None:
        if not out.pyramid:
            return f"--flat (output.pyramid=false) makes a one-page TIFF; a {self.label} is always a pyramid"
        return None

    def writer_rate(self, out: OutputConfig, cores: int) -> float:
        return 50.0 * cores if self.own_writer(out) else self.encode_mpix_s  # bigcppn's writer: per core

    def writer_words(self, out: OutputConfig, cores: int) -> str:
        if self.own_writer(out):
            return f"bigcppn's DeepZoom writer, {out.dz_suffix} tiles on {cores} cores"
        return "libvips"

    def described(self, out: OutputConfig) -> str:
        return f"{self.extensions[0]} with {out.dz_suffix} tiles"

    def level_sizes(self, width: int, height: int, out: OutputConfig) -> list[tuple[int, int]]:
        sizes = [(width, height)]
        while width > 1 or height > 1:  # DeepZoom halves (rounding up) down to one pixel
            width, height = -(-width // 2), -(-height // 2)
            sizes.append((width, height))
        return sizes

    def sample_side(self, out: OutputConfig) -> int:
        return out.dz_tile

    def encoded_bytes(self, image, out: OutputConfig, config: Config | None, folder: Path) -> tuple[int, int]:
        """The image cut into the pyramid's tiles (overlap left out), each encoded as the writers encode them;
        nothing is written once a file that counts (the descriptor and config are a few KB)."""
        import numpy as np
        import pyvips

        from ..tiles import tile_codec

        codec, t = tile_codec(out.dz_suffix), out.dz_tile
        h, w, bands = image.shape
        total = 0
        for y in range(0, h, t):
            for x in range(0, w, t):
                tile = np.ascontiguousarray(image[y : y + t, x : x + t])
                img = pyvips.Image.new_from_array(tile, interpretation="srgb" if bands >= 3 else "b-w")
                total += len(codec.encode(img, out.quality))
        return total, 0

    def open(self, spec: WriterSpec) -> Writer:
        return self._writer(spec) if self.own_writer(spec.out) else super().open(spec)

    def open_encoded(self, spec: WriterSpec, levels: int) -> Writer:
        return self._writer(spec, levels)

    def _writer(self, s: WriterSpec, encoded_levels: int = 0) -> Writer:
        from .writer import DeepZoomWriter

        return DeepZoomWriter(s.path, s.width, s.height, s.bands, tile=s.out.dz_tile, overlap=s.out.dz_overlap,
                              quality=s.out.quality, extra=self.extra_files(s), encoded_levels=encoded_levels)

    def extra_files(self, spec: WriterSpec) -> dict[str, bytes]:
        """Files the writer adds beside the pyramid's own (a ``.szi``'s config entry)."""
        return {}

    def vips_save(self, image: pyvips.Image, path: Path, out: OutputConfig, icc: dict[str, Any]) -> None:
        opts = dict(tile_size=out.dz_tile, overlap=out.dz_overlap, layout="dz", **dzsave_options(out))
        self.dzsave(image, path, opts)

    def dzsave(self, image: pyvips.Image, path: Path, opts: dict[str, Any]) -> None:
        image.dzsave(str(path.with_suffix("")), **opts)  # dzsave adds .dzi and _files itself

    def blocks(self, out: OutputConfig):
        from .blocks import DZ_BLOCKS

        return DZ_BLOCKS if self.own_writer(out) and not out.cmyk else None


@dataclass(frozen=True)
class DziFormat(DeepZoomFormat):
    """``NAME.dzi`` + ``NAME_files/`` + the config in ``NAME.bigcppn.json``; the descriptor is written last."""

    def produced(self, path: Path) -> list[Path]:
        return [path.with_name(path.stem + "_files"), sidecar_path(path), path]

    def objects(self, width: int, height: int, out: OutputConfig) -> int:
        t = out.dz_tile
        tiles = sum(-(-w // t) * -(-h // t) for w, h in self.level_sizes(width, height, out))
        return tiles + 2  # the config sidecar and the descriptor

    def finish(self, path: Path, out: OutputConfig, config: Config | None) -> None:
        if config is not None:
            write_sidecar(sidecar_path(path), config)


@dataclass(frozen=True)
class SziFormat(DeepZoomFormat):
    """One zip (``NAME/NAME.dzi``, ``NAME/NAME_files/...``), the config an entry of it."""

    def extra_files(self, spec: WriterSpec) -> dict[str, bytes]:
        if spec.config is None:
            return {}
        return {f"{spec.path.stem}.bigcppn.json": sidecar_json(spec.config).encode()}

    def dzsave(self, image: pyvips.Image, path: Path, opts: dict[str, Any]) -> None:
        image.dzsave(str(path), container="szi", **opts)

    def finish(self, path: Path, out: OutputConfig, config: Config | None) -> None:
        if config is not None and not self.own_writer(out):  # (bigcppn's writer put it in already)
            add_to_szi(path, config)


DZI = DziFormat("dz", (".dzi",), encode_mpix_s=60.0, provenance=SIDECAR)
SZI = SziFormat("szi", (".szi",), encode_mpix_s=60.0, provenance=ZIP_ENTRY)
