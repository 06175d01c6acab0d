"""Crafted hostile inputs for tests/test_hostile.py: images, sidecars and zips made to break ``--from``.

Each maker writes one file and returns its path. :func:`corpus` writes the
whole collection of crafted ``--from`` files into a folder.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
import zlib
from pathlib import Path

import pyvips

GOOD_TOML = "seed = 3\n[canvas]\nwidth = 8\nheight = 8\n"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_chunks(path: Path, *chunks: bytes) -> Path:
    """A 1x1 grey PNG with extra chunks between IHDR and IDAT."""
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    idat = png_chunk(b"IDAT", zlib.compress(b"\x00\x00"))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + b"".join(chunks) + idat + png_chunk(b"IEND", b""))
    return path


def png_text(path: Path, text: bytes, keyword: bytes = b"bigcppn") -> Path:
    return png_with_chunks(path, png_chunk(b"tEXt", keyword + b"\x00" + text))


def png_itxt(path: Path, text: bytes, keyword: bytes = b"XML:com.adobe.xmp", compress: bool = False) -> Path:
    body = zlib.compress(text, 9) if compress else text
    return png_with_chunks(path, png_chunk(b"iTXt", keyword + b"\x00" + (b"\x01\x00" if compress else b"\x00\x00")
                                           + b"\x00\x00" + body))


def image_with(path: Path, xmp: bytes | None = None, description: str | None = None) -> Path:
    """A small image (the format from the suffix) written by libvips with the given metadata."""
    image = pyvips.Image.black(4, 4, bands=3).copy()
    if xmp is not None:
        image.set_type(pyvips.GValue.blob_type, "xmp-data", xmp)
    if description is not None:
        image.set_type(pyvips.GValue.gstr_type, "image-description", description)
    image.write_to_file(str(path))
    return path


def xmp(config_text: str, open_tag: str = "<bigcppn:config>", close_tag: str = "</bigcppn:config>") -> bytes:
    return f"<x:xmpmeta><rdf:Description>{open_tag}{config_text}{close_tag}</rdf:Description></x:xmpmeta>".encode()


def unclosed_xmp(repeats: int) -> bytes:
    """The XMP that made the old regular expression quadratic: the opening tag, repeated, never closed."""
    return b"<x:xmpmeta>" + b"<bigcppn:config>" * repeats


def zip_bomb(path: Path, inflated: int, name: str = "b/b.bigcppn.json", prefix: bytes = b"") -> Path:
    """A .szi whose config entry inflates to ``inflated`` bytes (spaces), compressed small."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("b/b.dzi", "<Image/>")
        with z.open(name, "w", force_zip64=inflated > 2**31) as f:
            f.write(prefix)
            chunk = b" " * (1 << 22)
            left = inflated - len(prefix)
            while left > 0:
                f.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
    return path


def szi_with(path: Path, entry: bytes, name: str = "b/b.bigcppn.json", method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as z:
        z.writestr("b/b.dzi", "<Image/>")
        z.writestr(name, entry)
    return path


def dzi_with_sidecar(folder: Path, stem: str, sidecar: bytes) -> Path:
    (folder / f"{stem}.bigcppn.json").write_bytes(sidecar)
    (folder / f"{stem}.dzi").write_text("<Image/>")
    return folder / f"{stem}.dzi"


def nested(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth


def _sidecars() -> dict[str, bytes]:
    """Sidecar texts that are not a usable bigcppn config."""
    bad = {
        "list": b'{"config": [1]}', "string": b'{"config": "seed = 1"}', "null": b'{"config": null}',
        "number": b'{"config": 1}', "true": b'{"config": true}', "top-list": b"[1, 2]", "top-null": b"null",
        "top-string": b'"x"', "no-config": b'{"generator": "bigcppn"}', "empty": b"", "not-json": b"seed = 1",
        "latin1": b'{"config": {"seed": 1, "network": {"color": "gr\xfcn"}}}', "bom-utf16": "{}".encode("utf-16"),
        "nan": b'{"config": {"view": {"zoom": NaN}}}', "inf": b'{"config": {"view": {"center": [Infinity, 0]}}}',
        "big-exp": b'{"config": {"view": {"zoom": 1e999}}}',
        "digits": b'{"config": {"seed": ' + b"9" * 5000 + b"}}",
        "deep": b'{"config": ' + nested(5000).encode() + b"}",
        "deep-tables": b'{"config": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}",
        "deep-33": b'{"config": {"network": {"hidden": ' + nested(40).encode() + b"}}}",
        "hidden-huge": b'{"config": {"network": {"hidden": [100000, 100000]}}}',
        "z-huge": b'{"config": {"network": {"inputs": ["x", "z"], "z_size": 1000000000}}}',
        "unknown-key": b'{"config": {"sneed": 1}}', "wrong-type": b'{"config": {"seed": "1"}}',
        "dpi": b'{"config": {"canvas": {"dpi": 1e300}}}', "width-0": b'{"config": {"canvas": {"width": 0}}}',
        "truncated": json.dumps({"config": {"seed": 1}}).encode()[:-3], "nul": b"\x00" * 64,
        "huge": b'{"config": {"seed": 1}, "pad": "' + b"x" * (1 << 20) + b'"}',
        "control": b'{"config": {"network": {"color": "r\\ng\\nb"}}}',
    }
    return bad


def _tomls() -> dict[str, str]:
    """Embedded TOML texts (image description, PNG text, XMP) that are not a usable bigcppn config."""
    head = "# bigcppn config (crafted)\n"
    return {
        "invalid": head + "seed = [", "nan": head + "[network]\nz = [nan, inf]\ninputs = ['x', 'z']\nz_size = 2\n",
        "inf-zoom": head + "[view]\nzoom = inf\n", "digits": head + "seed = " + "9" * 5000 + "\n",
        "deep": head + "[network]\nhidden = " + nested(3000) + "\n",
        "deep-tables": head + "[" + ".".join(["a"] * 200) + "]\nx = 1\n",
        "hidden-huge": head + "[network]\nhidden = [100000, 100000]\n", "seed-neg": head + "seed = -1\n",
        "unknown": head + "colour = 'red'\n", "dpi": head + "[canvas]\ndpi = 1e300\n",
        "multiline-key": head + '"a\\nb" = 1\n', "batch": head + "[render]\nbatch = " + "9" * 40 + "\n",
    }


def corpus(folder: Path) -> list[Path]:
    """Every crafted ``--from`` file: each must be refused with one line and exit status 2."""
    folder.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for name, data in _sidecars().items():  # .dzi sidecars, and the same inside a .szi
        files.append(dzi_with_sidecar(folder, f"side-{name}", data))
        files.append(szi_with(folder / f"zip-{name}.szi", data))
        j = folder / f"json-{name}.json"
        j.write_bytes(data)
        files.append(j)
    for name, text in _tomls().items():  # the same TOML in every place an image carries it
        raw = text.encode()
        files.append(png_text(folder / f"text-{name}.png", raw))
        files.append(image_with(folder / f"desc-{name}.tif", description=text))
        for suffix in ("png", "jpg", "webp", "tif"):
            files.append(image_with(folder / f"xmp-{name}.{suffix}", xmp=xmp(text)))
    files += _xmp_variants(folder) + _damaged(folder) + _zips(folder) + _odd_files(folder)
    return files


def _xmp_variants(folder: Path) -> list[Path]:
    cfg = GOOD_TOML.replace("\n", "&#10;")
    variants = {
        "unclosed": unclosed_xmp(40000), "unclosed-one": xmp(cfg, close_tag=""),
        "close-first": xmp("", open_tag="</bigcppn:config>", close_tag="<bigcppn:config>"),
        "empty": xmp(""), "entities": xmp("&amp;" * 50000), "bad-entity": xmp("seed = &#99999999999;"),
        "nul-entity": xmp("seed = &#0;"), "cdata": xmp("<![CDATA[seed = 1]]>"),
        "nested-tags": xmp("<bigcppn:config>" * 1000 + "seed = 1"), "not-utf8": xmp("seed = 1").replace(b"1", b"\xff"),
        "huge": xmp("#" * (2 << 20)), "attribute": b'<x:xmpmeta bigcppn:config="seed = 1"/>',
    }
    files = []
    for name, packet in variants.items():
        files.append(image_with(folder / f"xmpv-{name}.png", xmp=packet))
        files.append(image_with(folder / f"xmpv-{name}.tif", xmp=packet))
    files.append(png_itxt(folder / "itxt-bomb.png", unclosed_xmp(1 << 20), compress=True))
    files.append(png_itxt(folder / "itxt-big.png", xmp("#" * (4 << 20)), compress=True))
    files.append(png_text(folder / "text-latin1.png", b"seed = \xff\xfe"))
    files.append(png_text(folder / "text-huge.png", b"# bigcppn config\n" + b"#" * (2 << 20)))
    files.append(png_with_chunks(folder / "ztxt-bomb.png",
                                 png_chunk(b"zTXt", b"bigcppn\x00\x00" + zlib.compress(b"#" * (64 << 20), 9))))
    return files


def _damaged(folder: Path) -> list[Path]:
    """Real bigcppn-like outputs cut short or scribbled on, and plain garbage."""
    files = []
    text = "# bigcppn config\n" + GOOD_TOML
    for suffix in ("png", "jpg", "webp", "tif"):
        whole = image_with(folder / f"whole.{suffix}", xmp=xmp(text.replace("\n", "&#10;")), description=text)
        data = whole.read_bytes()
        whole.unlink()
        for frac in (0.0, 0.1, 0.5):
            p = folder / f"cut{int(frac * 100)}.{suffix}"
            p.write_bytes(data[: int(len(data) * frac)] if frac else data[:16])
            files.append(p)
        p = folder / f"flipped.{suffix}"
        p.write_bytes(bytes(b ^ 0xFF if i % 7 == 3 else b for i, b in enumerate(data)))
        files.append(p)
    for suffix in ("png", "tif", "jpg", "dzi", "szi", "json", "webp"):
        p = folder / f"garbage.{suffix}"
        p.write_bytes(os.urandom(4096))
        files.append(p)
        e = folder / f"empty.{suffix}"
        e.write_bytes(b"")
        files.append(e)
    return files


def _zips(folder: Path) -> list[Path]:
    files = [zip_bomb(folder / "bomb.szi", 64 << 20)]
    good = json.dumps({"config": {"seed": 1}}).encode()
    files.append(szi_with(folder / "stored-huge.szi", b'{"config": {"seed": 1}, "p": "' + b"x" * (2 << 20) + b'"}',
                          method=zipfile.ZIP_STORED))
    whole = szi_with(folder / "whole.szi", good + b" " * 4096)
    data = whole.read_bytes()
    whole.unlink()
    for n in (22, len(data) // 2, len(data) - 10):
        p = folder / f"zipcut{n}.szi"
        p.write_bytes(data[:n])
        files.append(p)
    corrupt = bytearray(data)
    corrupt[60:80] = b"\xff" * 20  # inside the first entry's compressed data
    (folder / "zipcorrupt.szi").write_bytes(bytes(corrupt))
    files.append(folder / "zipcorrupt.szi")
    encrypted = bytearray(szi_with(folder / "zipflag.szi", good).read_bytes())
    for i in range(len(encrypted) - 4):  # set the "encrypted" flag in every header
        if encrypted[i:i + 4] in (b"PK\x03\x04", b"PK\x01\x02"):
            j = i + (6 if encrypted[i + 2] == 3 else 8)
            encrypted[j] |= 1
    (folder / "zipflag.szi").write_bytes(bytes(encrypted))
    files.append(folder / "zipflag.szi")
    return files


def _odd_files(folder: Path) -> list[Path]:
    """Paths that are not regular files: devices, a folder, a FIFO, dangling and looping links."""
    files = []
    for target, name in (("/dev/zero", "zero"), ("/dev/urandom", "random"), ("/dev/null", "null")):
        for suffix in ("png", "json", "szi", "tif"):
            link = folder / f"{name}.{suffix}"
            link.symlink_to(target)
            files.append(link)
    (folder / "zero-side.bigcppn.json").symlink_to("/dev/zero")
    (folder / "zero-side.dzi").write_text("<Image/>")
    files.append(folder / "zero-side.dzi")
    d = folder / "folder.png"
    d.mkdir()
    files.append(d)
    (folder / "dir-side.bigcppn.json").mkdir()
    (folder / "dir-side.dzi").write_text("<Image/>")
    files.append(folder / "dir-side.dzi")
    fifo = folder / "fifo.json"
    os.mkfifo(fifo)
    files.append(fifo)
    (folder / "loop.png").symlink_to(folder / "loop.png")
    files.append(folder / "loop.png")
    (folder / "dangling.tif").symlink_to(folder / "nowhere.tif")
    files.append(folder / "dangling.tif")
    return files
