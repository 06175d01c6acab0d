"""Provenance: every output carries its full resolved config, and ``--from`` reads it back.

Where it goes: TIFF ImageDescription, a PNG text chunk (keyword ``bigcppn``),
XMP in TIFF, PNG, JPEG and WebP, the XMP metadata stream of a PDF, and a JSON sidecar ``NAME.bigcppn.json`` next
to a DeepZoom pyramid (inside a ``.szi``, as ``NAME/NAME.bigcppn.json``). The text is the TOML that :func:`bigcppn.config.dump_toml`
writes, so any of them loads as a config again.
"""

from __future__ import annotations

import html
import json
import os
import stat
import struct
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from .._version import __version__
from ..config import Config, config_from_dict, config_to_dict, dump_toml
from ..errors import ConfigError, ContactSheet, UserError
from ..core.limits import MAX_TEXT_BYTES, decode_text, parse_json, parse_toml, read_bounded, read_zip_entry, size_text

if TYPE_CHECKING:
    import pyvips

__all__ = ["config_text", "xmp_packet", "sidecar_path", "write_sidecar", "sidecar_json", "add_to_szi", "read_with",
           "Provenance", "InImage", "Sidecar", "InZip", "InPdf", "XMP", "TIFF_TAGS", "PNG_TEXT", "SIDECAR", "ZIP_ENTRY",
           "PDF_XMP"]

MARKER = "# bigcppn config"
PNG_KEY = "png-comment-0-bigcppn"
XMP_NS = "http://ns.bigcppn.dev/1.0/"
XMP_OPEN, XMP_CLOSE = "<bigcppn:config>", "</bigcppn:config>"

# What reading a damaged or hostile zip can raise (besides UserError for one too large).
_ZIP_ERRORS: tuple[type[BaseException], ...] = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError,
                                                zlib.error, NotImplementedError, RuntimeError, ValueError,
                                                KeyError, UnicodeError)
try:
    import lzma

    _ZIP_ERRORS += (lzma.LZMAError,)
except ImportError:  # pragma: no cover - Python built without lzma: zipfile cannot use it either
    pass


def config_text(cfg: Config) -> str:
    return f"{MARKER} (bigcppn {__version__}; load with --from or as a config file)\n{dump_toml(cfg)}"


def xmp_packet(text: str) -> bytes:
    """An XMP packet carrying ``text`` (the config) and the creator tool."""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        f'  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:bigcppn="{XMP_NS}">\n'
        f"   <xmp:CreatorTool>bigcppn {__version__}</xmp:CreatorTool>\n"
        f"   <bigcppn:config>{html.escape(text, quote=False)}</bigcppn:config>\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    ).encode("utf-8")


def sidecar_path(path: Path) -> Path:
    """``NAME.bigcppn.json`` beside a DeepZoom pyramid ``NAME.dzi`` (and beside a ``.szi`` from an earlier bigcppn)."""
    return path.with_name(path.stem + ".bigcppn.json")


def sidecar_json(cfg: Config) -> str:
    """The sidecar's text: the generator and the resolved config, as JSON."""
    return json.dumps({"generator": f"bigcppn {__version__}", "config": config_to_dict(cfg)}, indent=2) + "\n"


def write_sidecar(path: Path, cfg: Config) -> None:
    path.write_text(sidecar_json(cfg), encoding="utf-8")


def add_to_szi(path: Path, cfg: Config) -> None:
    """Put the sidecar inside a ``.szi`` (``NAME/NAME.bigcppn.json``, beside its ``NAME.dzi``).

    The zip is appended to in place; the pyramid's own entries are not touched.
    The new entry is a regular file of mode 0644, as the DeepZoom writer's.
    """
    from .deepzoom.writer import szi_entry

    with zipfile.ZipFile(path, "a", allowZip64=True) as z:
        top = next((n.split("/", 1)[0] for n in z.namelist() if n.endswith(".dzi")), path.stem)
        z.writestr(szi_entry(f"{top}/{path.stem}.bigcppn.json"), sidecar_json(cfg))


def _config_from_json(data: bytes, what: str) -> Config:
    """The config of a sidecar's bytes (beside a .dzi or inside a .szi); UserError when it is not one."""
    doc = parse_json(decode_text(data, what), what)
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict) or not doc["config"]:
        raise UserError(f"{what} is not a bigcppn sidecar: it has no \"config\" table, or an empty one")
    try:
        return config_from_dict(doc["config"])
    except ConfigError as exc:
        raise UserError(f"{what} holds a config bigcppn cannot use: {exc}") from None


def _from_szi(path: Path, f) -> Config | None:
    try:
        f.seek(0)
        with zipfile.ZipFile(f) as z:
            name = next((n for n in z.namelist() if n.endswith(".bigcppn.json")), None)
            if name is None:
                return None
            data = read_zip_entry(z, name, f"--from {path}: its bigcppn.json")
    except UserError:
        raise
    except _ZIP_ERRORS:
        raise UserError(f"--from {path}: not a readable .szi (zip) file") from None
    return _config_from_json(data, f"--from {path}: its bigcppn.json")


def _from_pdf(p: Path, f) -> Config:
    """The config in a bigcppn PDF's XMP metadata stream (uncompressed, before the image)."""
    f.seek(0)
    text = _xmp_config(f.read(1 << 20))
    if text is None:
        raise UserError(f"--from {p}: the PDF carries no bigcppn config (was it written by bigcppn?)")
    return _parse(text, p)


def _parse(text: str, source: Path) -> Config:
    """The config of ``text``; ContactSheet (a UserError) when it is a contact sheet's (a ``[sheet]`` table)."""
    what = f"the config embedded in '{source}'"
    data = parse_toml(text, what)
    sheet = data.pop("sheet", None)
    if not data:  # bigcppn writes every setting: an empty one is not its
        raise UserError(f"{what} is empty; it was not written by bigcppn")
    try:
        cfg = config_from_dict(data)
    except ConfigError as exc:
        if str(exc).startswith(what):
            raise
        raise UserError(f"{what} cannot be used: {exc}") from None
    if sheet is None:
        return cfg
    seeds = sheet.get("seeds") if isinstance(sheet, dict) else None
    if (not isinstance(seeds, list) or not 0 < len(seeds) <= 1024
            or not all(isinstance(s, int) and 0 <= s < 2**63 for s in seeds)):
        raise UserError(f"{what}: its [sheet] table is damaged (seeds = a list of 1 to 1024 seeds)")
    raise ContactSheet(source, cfg, seeds)


def _xmp_config(packet: bytes) -> str | None:
    """The text of the first ``<bigcppn:config>`` element of an XMP packet, found in linear time."""
    text = packet.decode("utf-8", "replace")
    start = text.find(XMP_OPEN)
    if start < 0:
        return None
    start += len(XMP_OPEN)
    end = text.find(XMP_CLOSE, start)
    return None if end < 0 else html.unescape(text[start:end])


def _open_regular(p: Path):
    """``p`` opened once for reading (a binary file), checked on the open descriptor to be a regular file;
    None when missing; UserError when it is something else. Opened without blocking: a FIFO put in its
    place does not hang, and what is read is what was checked."""
    if "\0" in str(p):
        raise UserError(f"--from {str(p)!r}: a file name cannot hold a NUL byte; give a bigcppn output file")
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UserError(f"--from {p}: cannot read it: {exc.strerror or exc.__class__.__name__}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise UserError(f"--from {p}: it is {kind}; give a bigcppn output file")
    return os.fdopen(fd, "rb")


def read_with(path: str | Path, provenance: "Provenance | None" = None) -> Config:
    """The config an earlier bigcppn output was made with; ``provenance``: where its format keeps it.

    Without one (an unknown extension), the file is read as an image; a ``.json`` is a sidecar itself.
    """
    p = Path(path)
    f = _open_regular(p)
    try:
        if p.suffix.lower() == ".json":
            return SIDECAR.read(p, f)
        return (provenance or IMAGE).read(p, f)
    finally:
        if f is not None:
            f.close()


class Provenance:
    """How a format carries its config: put into a libvips image before a save, and read back (``--from``)."""

    def embed(self, image: pyvips.Image, text: str) -> pyvips.Image:
        """A copy of ``image`` carrying ``text`` for its saver; as is where the config goes beside the image."""
        return image

    def read(self, p: Path, f) -> Config:
        """The config of the output ``p`` (``f``: it opened, a regular file, or None when missing); UserError
        when it has none."""
        import pyvips

        if f is None:
            raise UserError(f"--from {p}: no such file")
        try:
            return _from_image(p, f)
        except (pyvips.Error, UnicodeError):
            raise UserError(f"--from {p}: not an image libvips can read") from None


class InImage(Provenance):
    """In the image's own metadata: XMP, and a TIFF ImageDescription or a PNG text chunk where asked."""

    def __init__(self, description: bool = False, png_text: bool = False) -> None:
        self.description, self.png_text = description, png_text

    def embed(self, image: pyvips.Image, text: str) -> pyvips.Image:
        import pyvips

        image = image.copy()
        image.set_type(pyvips.GValue.blob_type, "xmp-data", xmp_packet(text))
        if self.description:
            image.set_type(pyvips.GValue.gstr_type, "image-description", text)
        if self.png_text:
            image.set_type(pyvips.GValue.gstr_type, PNG_KEY, text)
        return image


class Sidecar(Provenance):
    """``NAME.bigcppn.json`` beside the output (a DeepZoom folder); ``p`` may be the sidecar itself."""

    def read(self, p: Path, f) -> Config:
        side = p if p.suffix.lower() == ".json" else sidecar_path(p)
        if not side.exists() and not side.is_symlink():
            raise UserError(f"--from {p}: no '{side.name}' beside it to read the config from")
        return _config_from_json(read_bounded(side, f"--from {p}: the sidecar"), f"--from {p}: '{side.name}'")


class InZip(Sidecar):
    """An entry of the zip (a ``.szi``); a sidecar beside it for a ``.szi`` from before the config went inside."""

    def read(self, p: Path, f) -> Config:
        cfg = _from_szi(p, f) if f is not None else None
        return cfg if cfg is not None else super().read(p, f)


class InPdf(Provenance):
    """The XMP metadata stream of a PDF (uncompressed, before the image)."""

    def read(self, p: Path, f) -> Config:
        if f is None:
            raise UserError(f"--from {p}: no such file")
        return _from_pdf(p, f)


IMAGE = Provenance()  # an unknown extension: whatever the image carries
XMP = InImage()
TIFF_TAGS = InImage(description=True)
PNG_TEXT = InImage(png_text=True)
SIDECAR = Sidecar()
ZIP_ENTRY = InZip()
PDF_XMP = InPdf()


def _from_image(p: Path, f) -> Config:
    import pyvips

    longest = _tiff_text_bytes(f.fileno())
    if longest > MAX_TEXT_BYTES:  # (libvips' TIFF loader crashed on a 32 MB ImageDescription)
        raise UserError(f"--from {p}: its TIFF text metadata is {size_text(longest)}, over the "
                        f"{size_text(MAX_TEXT_BYTES)} bigcppn reads; it was not written by bigcppn")
    source = pyvips.Source.new_from_descriptor(f.fileno())  # the file checked, not whatever has its name now
    image = pyvips.Image.new_from_source(source, "")
    fields = set(image.get_fields())
    # libvips numbers PNG text chunks as it reads them: png-comment-N-bigcppn
    for key in sorted(f for f in fields if f.startswith("png-comment-") and f.endswith("-bigcppn")):
        return _parse(decode_text(image.get(key), f"--from {p}: its PNG text"), p)
    if "image-description" in fields:
        description = image.get("image-description")
        if isinstance(description, str) and description.startswith(MARKER):
            return _parse(decode_text(description, f"--from {p}: its TIFF description"), p)
    if "xmp-data" in fields:
        packet = image.get("xmp-data")
        if len(packet) > MAX_TEXT_BYTES:
            raise UserError(f"--from {p}: its XMP metadata is {size_text(len(packet))}, over the "
                            f"{size_text(MAX_TEXT_BYTES)} bigcppn reads; it was not written by bigcppn")
        text = _xmp_config(bytes(packet))
        if text is not None:
            return _parse(text, p)
    raise UserError(f"--from {p}: the image carries no bigcppn config (was it written by bigcppn?)")


# TIFF tags that hold text bigcppn could read: ImageDescription, XMP.
_TEXT_TAGS = (270, 700)
_TYPE_BYTES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8, 17: 8, 18: 8}


def _tiff_text_bytes(fd: int) -> int:
    """The size of the longest text tag (ImageDescription, XMP) in the first directory of the TIFF open as
    ``fd`` (classic or BigTIFF), read without libvips; 0 for a file that is not a TIFF or is cut short."""
    try:
        head = os.pread(fd, 16, 0)
        order = {b"II": "<", b"MM": ">"}.get(head[:2])
        if order is None or len(head) < 16:
            return 0
        (magic,) = struct.unpack_from(order + "H", head, 2)
        if magic == 42:
            (at,), count_fmt, entry_fmt = struct.unpack_from(order + "I", head, 4), "H", "HHII"
        elif magic == 43:
            (at,), count_fmt, entry_fmt = struct.unpack_from(order + "Q", head, 8), "Q", "HHQQ"
        else:
            return 0
        count_size, entry_size = struct.calcsize(count_fmt), struct.calcsize(entry_fmt)
        (n,) = struct.unpack(order + count_fmt, os.pread(fd, count_size, at))
        entries = os.pread(fd, min(n, 4096) * entry_size, at + count_size)
        longest = 0
        for i in range(len(entries) // entry_size):
            tag, kind, count, _value = struct.unpack_from(order + entry_fmt, entries, i * entry_size)
            if tag in _TEXT_TAGS:
                longest = max(longest, count * _TYPE_BYTES.get(kind, 1))
        return longest
    except (OSError, struct.error):
        return 0
