"""A PDF's document metadata: the Info dictionary and its XMP twin, in step; PDF/X-4's keys when it claims it.

ISO 15930-7 (PDF/X-4) asks of the document, besides the page boxes and the
trailer ``/ID`` the writer always writes:

* Info ``/GTS_PDFXVersion (PDF/X-4)`` and XMP ``pdfxid:GTS_PDFXVersion``;
* Info ``/CreationDate`` and ``/ModDate`` and their XMP twins ``xmp:CreateDate`` and
  ``xmp:ModifyDate`` (with ``xmp:MetadataDate``), the same instant;
* ``/Title`` with ``dc:title``, ``/Producer`` with ``pdf:Producer``, ``/Creator`` with
  ``xmp:CreatorTool``, the same text;
* ``/Trapped`` ``/True`` or ``/False`` (not ``/Unknown``) with ``pdf:Trapped``;
* ``xmpMM:DocumentID``, ``xmpMM:VersionID`` and ``xmpMM:RenditionClass``;
* an output intent ``/S /GTS_PDFX`` whose profile is an output (printer, ``prtr``)
  profile: the CMYK profile of ``--cmyk``, or for RGB and grey pictures (kept in their
  ICC colour spaces, which PDF/X-4 allows) libvips' built-in CMYK profile.

:data:`REQUIRED` lists them; the tests check every PDF/X file against it (no free
preflight tool is packaged). The dates are the render's, or ``SOURCE_DATE_EPOCH``'s
where that is set (reproducible builds); a plain PDF carries none, so it is the same
bytes every time.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from ..._version import __version__
from ..provenance import XMP_NS

__all__ = ["PdfMeta", "REQUIRED", "PDFX_VERSION", "info_dict", "xmp_metadata", "render_time", "is_output_profile"]

PDFX_VERSION = "PDF/X-4"
# What a PDF/X-4 file must carry (ISO 15930-7 6.2, 6.7.3, 6.10): Info keys, then XMP properties.
REQUIRED = {
    "info": ("/Title", "/Producer", "/Creator", "/CreationDate", "/ModDate", "/Trapped", "/GTS_PDFXVersion"),
    "xmp": ("dc:title", "pdf:Producer", "xmp:CreatorTool", "xmp:CreateDate", "xmp:ModifyDate",
            "xmp:MetadataDate", "pdf:Trapped", "pdfxid:GTS_PDFXVersion", "xmpMM:DocumentID",
            "xmpMM:VersionID", "xmpMM:RenditionClass"),
}
_CONFIG = re.compile(rb"<bigcppn:config>.*?</bigcppn:config>", re.S)


@dataclass(frozen=True)
class PdfMeta:
    """What the Info dictionary and the XMP both say; ``when`` (PDF/X only): the render's time."""

    title: str
    pdfx: bool = False
    when: datetime | None = None

    @property
    def tool(self) -> str:
        return f"bigcppn {__version__}"


def render_time() -> datetime:
    """Now, or ``SOURCE_DATE_EPOCH`` (seconds) where it is set, in UTC to the second."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    when = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch.isdigit() else datetime.now(timezone.utc)
    return when.replace(microsecond=0)


def is_output_profile(icc: bytes) -> bool:
    """Whether an ICC profile is an output (printer) profile, the class a PDF/X output intent needs."""
    return icc[12:16] == b"prtr"


def _pdf_text(s: str) -> str:
    s = s.encode("ascii", "replace").decode("ascii")
    return "(" + s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def info_dict(meta: PdfMeta) -> str:
    """The Info dictionary."""
    keys = [f"/Title {_pdf_text(meta.title)}", f"/Producer {_pdf_text(meta.tool)}",
            f"/Creator {_pdf_text(meta.tool)}"]
    if meta.when is not None:
        date = meta.when.strftime("D:%Y%m%d%H%M%SZ")
        keys += [f"/CreationDate ({date})", f"/ModDate ({date})"]
    keys.append("/Trapped /False")
    if meta.pdfx:
        keys.append(f"/GTS_PDFXVersion ({PDFX_VERSION})")
    return "<< " + " ".join(keys) + " >>"


def xmp_metadata(meta: PdfMeta, carried: bytes | None) -> bytes:
    """The XMP packet: the Info dictionary's twins (and PDF/X's keys), with the ``<bigcppn:config>`` of the
    ``carried`` packet (the config, :func:`bigcppn.formats.provenance.xmp_packet`) kept as it is."""
    config = _CONFIG.search(carried or b"")
    esc = lambda s: html.escape(s, quote=False)  # noqa: E731
    props = [f"   <xmp:CreatorTool>{esc(meta.tool)}</xmp:CreatorTool>",
             f"   <pdf:Producer>{esc(meta.tool)}</pdf:Producer>",
             "   <pdf:Trapped>False</pdf:Trapped>",
             f'   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{esc(meta.title)}</rdf:li></rdf:Alt></dc:title>',
             "   <dc:format>application/pdf</dc:format>"]
    if meta.when is not None:
        date = meta.when.strftime("%Y-%m-%dT%H:%M:%SZ")
        props += [f"   <xmp:CreateDate>{date}</xmp:CreateDate>", f"   <xmp:ModifyDate>{date}</xmp:ModifyDate>",
                  f"   <xmp:MetadataDate>{date}</xmp:MetadataDate>"]
    if meta.pdfx:
        digest = hashlib.md5((carried or b"") + meta.title.encode() + str(meta.when).encode()).hexdigest()
        uuid = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
        props += [f"   <pdfxid:GTS_PDFXVersion>{PDFX_VERSION}</pdfxid:GTS_PDFXVersion>",
                  f"   <xmpMM:DocumentID>uuid:{uuid}</xmpMM:DocumentID>",
                  f"   <xmpMM:InstanceID>uuid:{uuid}</xmpMM:InstanceID>",
                  "   <xmpMM:VersionID>1</xmpMM:VersionID>",
                  "   <xmpMM:RenditionClass>default</xmpMM:RenditionClass>"]
    if config is not None:
        props.append("   " + config.group(0).decode("utf-8"))
    packet = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        ' xmlns:pdf="http://ns.adobe.com/pdf/1.3/" xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:pdfxid="http://www.npes.org/pdfx/ns/id/" xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"'
        f' xmlns:bigcppn="{XMP_NS}">\n'
        + "\n".join(props) + "\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )
    return packet.encode("utf-8")
