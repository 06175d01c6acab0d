"""Provenance: every output carries its full resolved config, and ``--from`` reads it back.

Where it goes: TIFF ImageDescription, a PNG text chunk (keyword ``bigcppn``),
XMP in TIFF, PNG, JPEG and WebP, and a JSON sidecar ``NAME.bigcppn.json`` next
to a DeepZoom pyramid (inside a ``.szi``, as ``NAME/NAME.bigcppn.json``). The text is the TOML that :func:`bigcppn.config.dump_toml`
writes, so any of them loads as a config again.
"""

from __future__ import annotations

import html
import json
import re
import tomllib
import zipfile
from pathlib import Path

import pyvips

from . import __version__
from .config import Config, config_from_dict, config_to_dict, dump_toml
from .dzwriter import szi_entry
from .errors import UserError

__all__ = ["config_text", "xmp_packet", "embed", "sidecar_path", "write_sidecar", "sidecar_json", "add_to_szi", "read_config_from"]

MARKER = "# bigcppn config"
PNG_KEY = "png-comment-0-bigcppn"
XMP_NS = "http://ns.bigcppn.dev/1.0/"
_XMP_RE = re.compile(r"<bigcppn:config>(.*?)</bigcppn:config>", re.S)


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

    ``kind`` is a format's :attr:`~bigcppn.formats.Format.metadata`: "tiff"
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


def _from_szi(path: Path) -> Config | None:
    try:
        with zipfile.ZipFile(path) as z:
            name = next((n for n in z.namelist() if n.endswith(".bigcppn.json")), None)
            if name is None:
                return None
            return config_from_dict(json.loads(z.read(name))["config"])
    except (zipfile.BadZipFile, OSError):
        raise UserError(f"--from {path}: not a readable .szi (zip) file") from None
    except (json.JSONDecodeError, KeyError, TypeError):
        raise UserError(f"--from {path}: its bigcppn.json is damaged") from None


def _parse(text: str, source: Path) -> Config:
    try:
        return config_from_dict(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"the config embedded in '{source}' is damaged: {exc}") from None


def read_config_from(path: str | Path) -> Config:
    """The config an earlier bigcppn output was made with."""
    p = Path(path)
    if p.suffix.lower() == ".szi" and p.is_file():
        cfg = _from_szi(p)
        if cfg is not None:
            return cfg
    if p.suffix.lower() in (".dzi", ".szi", ".json"):  # a .szi from before the config went inside
        side = p if p.suffix.lower() == ".json" else sidecar_path(p)
        try:
            data = json.loads(side.read_text(encoding="utf-8"))
            return config_from_dict(data["config"])
        except FileNotFoundError:
            raise UserError(f"--from {p}: no '{side.name}' beside it to read the config from") from None
        except (json.JSONDecodeError, KeyError, TypeError):
            raise UserError(f"--from {p}: '{side.name}' is not a bigcppn sidecar") from None
    if not p.exists():
        raise UserError(f"--from {p}: no such file")
    try:
        image = pyvips.Image.new_from_file(str(p))
    except pyvips.Error:
        raise UserError(f"--from {p}: not an image libvips can read") from None
    fields = set(image.get_fields())
    # libvips numbers PNG text chunks as it reads them: png-comment-N-bigcppn
    for key in sorted(f for f in fields if re.fullmatch(r"png-comment-\d+-bigcppn", f)):
        return _parse(image.get(key), p)
    if "image-description" in fields and str(image.get("image-description")).startswith(MARKER):
        return _parse(image.get("image-description"), p)
    if "xmp-data" in fields:
        m = _XMP_RE.search(bytes(image.get("xmp-data")).decode("utf-8", "replace"))
        if m:
            return _parse(html.unescape(m.group(1)), p)
    raise UserError(f"--from {p}: the image carries no bigcppn config (was it written by bigcppn?)")

