"""Provenance: every output carries its full resolved config, and ``--from`` reads it back.

Where it goes: TIFF ImageDescription, a PNG text chunk (keyword ``bigcppn``),
XMP in TIFF, PNG, JPEG and WebP, the XMP metadata stream of a PDF, and a JSON sidecar ``NAME.bigcppn.json`` next
to a DeepZoom pyramid (inside a ``.szi``, as ``NAME/NAME.bigcppn.json``). The text is the TOML that :func:`bigcppn.config.dump_toml`
writes, so any of them loads as a config again.
"""

from __future__ import annotations

import html
import json
import stat
import zipfile
import zlib
from pathlib import Path

import pyvips

from .._version import __version__
from ..config import Config, config_from_dict, config_to_dict, dump_toml
from .deepzoom.writer import szi_entry
from ..errors import ConfigError, UserError
from ..core.limits import MAX_TEXT_BYTES, decode_text, parse_json, parse_toml, read_bounded, read_zip_entry, size_text

__all__ = ["config_text", "xmp_packet", "embed", "sidecar_path", "write_sidecar", "sidecar_json", "add_to_szi", "read_config_from"]

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


def embed(image: pyvips.Image, kind: str, text: str) -> pyvips.Image:
    """A copy of ``image`` carrying ``text`` as a format with ``kind`` of metadata holds it.

    ``kind`` is a format's :attr:`~bigcppn.formats.registry.Format.metadata`: "tiff"
    (ImageDescription and XMP), "png" (a text chunk and XMP), "xmp"; "sidecar"
    and "zip" keep the config outside the image (:func:`write_sidecar`, :func:`add_to_szi`).
    """
    image = image.copy()
    if kind in ("tiff", "png", "xmp"):
        image.set_type(pyvips.GValue.blob_type, "xmp-data", xmp_packet(text))
    if kind == "tiff":
        image.set_type(pyvips.GValue.gstr_type, "image-description", text)
    if kind == "png":
        image.set_type(pyvips.GValue.gstr_type, PNG_KEY, text)
    return image


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


def _from_szi(path: Path) -> Config | None:
    try:
        with zipfile.ZipFile(path) as z:
            name = next((n for n in z.namelist() if n.endswith(".bigcppn.json")), None)
            if name is None:
                return None
            data = read_zip_entry(z, name, f"--from {path}: its bigcppn.json")
    except UserError:
        raise
    except _ZIP_ERRORS:
        raise UserError(f"--from {path}: not a readable .szi (zip) file") from None
    return _config_from_json(data, f"--from {path}: its bigcppn.json")


def _from_pdf(p: Path) -> Config:
    """The config in a bigcppn PDF's XMP metadata stream (uncompressed, before the image)."""
    with open(p, "rb") as f:
        text = _xmp_config(f.read(1 << 20))
    if text is None:
        raise UserError(f"--from {p}: the PDF carries no bigcppn config (was it written by bigcppn?)")
    return _parse(text, p)


def _parse(text: str, source: Path) -> Config:
    what = f"the config embedded in '{source}'"
    data = parse_toml(text, what)
    if not data:  # bigcppn writes every setting: an empty one is not its
        raise UserError(f"{what} is empty; it was not written by bigcppn")
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        if str(exc).startswith(what):
            raise
        raise UserError(f"{what} cannot be used: {exc}") from None


def _xmp_config(packet: bytes) -> str | None:
    """The text of the first ``<bigcppn:config>`` element of an XMP packet, found in linear time."""
    text = packet.decode("utf-8", "replace")
    start = text.find(XMP_OPEN)
    if start < 0:
        return None
    start += len(XMP_OPEN)
    end = text.find(XMP_CLOSE, start)
    return None if end < 0 else html.unescape(text[start:end])


def _regular_file(p: Path) -> bool:
    """Whether ``p`` is a regular file (after links); False when missing; UserError when it is something else."""
    try:
        st = p.stat()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise UserError(f"--from {p}: cannot read it: {exc.strerror or exc.__class__.__name__}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise UserError(f"--from {p}: it is {kind}; give a bigcppn output file")
    return True


def read_config_from(path: str | Path) -> Config:
    """The config an earlier bigcppn output was made with."""
    p = Path(path)
    exists = _regular_file(p)
    if p.suffix.lower() == ".szi" and exists:
        cfg = _from_szi(p)
        if cfg is not None:
            return cfg
    if p.suffix.lower() in (".dzi", ".szi", ".json"):  # a .szi from before the config went inside
        side = p if p.suffix.lower() == ".json" else sidecar_path(p)
        if not side.exists() and not side.is_symlink():
            raise UserError(f"--from {p}: no '{side.name}' beside it to read the config from")
        return _config_from_json(read_bounded(side, f"--from {p}: the sidecar"), f"--from {p}: '{side.name}'")
    if not exists:
        raise UserError(f"--from {p}: no such file")
    if p.suffix.lower() == ".pdf":
        return _from_pdf(p)
    try:
        return _from_image(p)
    except (pyvips.Error, UnicodeError):
        raise UserError(f"--from {p}: not an image libvips can read") from None


def _from_image(p: Path) -> Config:
    image = pyvips.Image.new_from_file(str(p))
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
