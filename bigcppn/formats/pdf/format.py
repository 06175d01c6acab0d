"""PDF: one page, the picture as one image XObject (Flate, or DCT with compression=jpeg), written by bigcppn."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...config import LOSSY_COMPRESSIONS
from ..base import Format, Writer, WriterSpec
from ..provenance import PDF_XMP

if TYPE_CHECKING:
    from ...config import OutputConfig

__all__ = ["PdfFormat", "PDF"]

# Rough speed of the PDF writer, MPix/s: (fixed, per core); zlib level 1 on every core, libjpeg on one.
_RATE = {"none": (300.0, 0.0), "deflate": (0.0, 11.0), "jpeg": (100.0, 0.0)}


@dataclass(frozen=True)
class PdfFormat(Format):
    def lossy(self, out: OutputConfig) -> bool:
        return out.compression in LOSSY_COMPRESSIONS

    def own_writer(self, out: OutputConfig) -> bool:
        return True

    def writer_rate(self, out: OutputConfig, cores: int) -> float:
        fixed, per_core = _RATE[out.compression]
        return fixed + per_core * cores

    def writer_words(self, out: OutputConfig, cores: int) -> str:
        return f"bigcppn's PDF writer, {out.compression} image"

    def own_refusal(self, out: OutputConfig) -> str | None:
        if out.wants_pdfx and out.cmyk:
            from ..icc import cmyk_profile
            from .pdfx import is_output_profile

            if not is_output_profile(cmyk_profile(out.cmyk)):
                return (f"--cmyk {out.cmyk} is not an output (printer) profile, which PDF/X needs for its output "
                        "intent; give a press profile, or --set output.pdfx=off for a plain PDF")
        return None

    def open(self, s: WriterSpec) -> Writer:
        from ..icc import builtin_profile, icc_description
        from .pdfx import PdfMeta, render_time
        from .writer import PdfPage, PdfWriter

        page = PdfPage(s.width, s.height, s.bleed, s.dpi or 72.0, s.out.crop_marks)
        icc = s.icc
        pdfx = s.out.wants_pdfx
        # PDF/X: the output intent is a printer profile; RGB and grey stay in their own ICC spaces under it
        intent_icc = builtin_profile("cmyk") if pdfx and s.bands != 4 else None
        named = intent_icc if intent_icc is not None else icc
        name = icc_description(named) if s.bands != 3 or intent_icc is not None else "sRGB IEC61966-2.1"
        title = s.path.name  # (the temporary file is .NAME.partial-PID/NAME)
        meta = PdfMeta(title, pdfx, render_time() if pdfx else None)
        return PdfWriter(s.path, s.width, s.height, s.bands, s.out.depth, page=page, icc=icc, intent_name=name,
                         compression=s.out.compression, quality=s.out.quality, xmp=s.xmp, title=title, meta=meta,
                         intent_icc=intent_icc)


PDF = PdfFormat("pdf", (".pdf",), depths=(8, 16), provenance=PDF_XMP, compressions=("deflate", "jpeg", "none"),
                cmyk=True, crop_marks=True, max_inches=200.0, page=True)
