"""The refactoring safety net: every format and layout rendered small, hashed, compared.

    python3 benchmarks/golden.py record before.json      # on the old code
    python3 benchmarks/golden.py check  before.json      # on the new code: lists every file that changed

Hashes every file each command writes (bytes), so it catches any change in the
pixels, the tags or the layout of the files; and, as ``FILE#pixels``, the
decoded pixels of every page of each image libvips reads, so a change of
metadata alone (a new config key in the embedded config) shows as bytes
changed, pixels not. Hashes depend on the machine's torch and libvips builds:
compare only runs on one machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

BASE = ["--seed", "7", "--width", "300", "--height", "200", "--tile", "64", "-q"]
CASES = {
    "tif-deflate": ["render", *BASE, "-o", "a.tif"],
    "tif-lzw": ["render", *BASE, "--set", "output.compression=lzw", "-o", "a.tif"],
    "tif-jpeg": ["render", *BASE, "--set", "output.compression=jpeg", "-o", "a.tif"],
    "tif-none": ["render", *BASE, "--set", "output.compression=none", "-o", "a.tif"],
    "tif-16": ["render", *BASE, "--depth", "16", "-o", "a.tif"],
    "tif-grey": ["render", *BASE, "--set", "network.color=grey", "-o", "a.tif"],
    "png": ["render", *BASE, "-o", "a.png"],
    "png-16": ["render", *BASE, "--depth", "16", "-o", "a.png"],
    "png-bleed": ["render", "--seed", "3", "--size", "10x8mm", "--dpi", "300", "--bleed", "1mm", "-q", "-o", "a.png"],
    "jpg": ["render", *BASE, "-o", "a.jpg"],
    "webp": ["render", *BASE, "-o", "a.webp"],
    "dzi": ["render", *BASE, "-o", "a.dzi"],
    "dzi-png": ["render", *BASE, "--set", "output.dz_suffix=png", "-o", "a.dzi"],
    "szi": ["render", *BASE, "-o", "a.szi"],
    "pyr-dz": ["pyramid", *BASE, "-o", "p.dzi"],
    "pyr-iiif3": ["pyramid", *BASE, "--layout", "iiif3", "-o", "p"],
    "pyr-zoomify": ["pyramid", *BASE, "--layout", "zoomify", "-o", "p"],
    "pyr-google": ["pyramid", *BASE, "--layout", "google", "--format", "png", "-o", "p"],
    "pyr-webp": ["pyramid", *BASE, "--format", "webp", "--supersample", "3", "-o", "p.dzi"],
    "sheet": ["sheet", "--seeds", "0-3", "--cell", "64", "-q", "-o", "s.png"],
    "tif-flat": ["render", *BASE, "--flat", "-o", "a.tif"],
    "tif-cmyk": ["render", *BASE, "--cmyk", "-o", "a.tif"],
    "jpg-cmyk": ["render", *BASE, "--cmyk", "-o", "a.jpg"],
    "pdf": ["render", "--seed", "3", "--size", "10x8mm", "--dpi", "300", "--bleed", "1mm", "-q", "--crop-marks",
            "-o", "a.pdf"],
    "pdf-jpeg-cmyk": ["render", *BASE, "--cmyk", "--set", "output.compression=jpeg", "-o", "a.pdf"],
}
IMAGES = (".tif", ".png", ".jpg", ".jpeg", ".webp")


def pixel_hash(path: Path) -> str | None:
    """A hash of the decoded pixels of every page of an image (None when libvips cannot read it)."""
    import pyvips

    try:
        first = pyvips.Image.new_from_file(str(path))
        pages = first.get("n-pages") if "n-pages" in first.get_fields() else 1
        h = hashlib.sha256()
        for i in range(pages):
            image = pyvips.Image.new_from_file(str(path), page=i) if pages > 1 else first
            h.update(f"{image.width}x{image.height}x{image.bands}{image.format}".encode())
            h.update(image.write_to_memory())
        return h.hexdigest()
    except pyvips.Error:
        return None


def run_case(args: list[str]) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        env.setdefault("SOURCE_DATE_EPOCH", "1700000000")  # PDF/X dates: same bytes run to run
        res = subprocess.run([sys.executable, "-m", "bigcppn", *args], cwd=d, env=env, capture_output=True, text=True)
        if res.returncode:
            return {"<exit>": f"{res.returncode}: {res.stderr.strip()[-300:]}"}
        out = {}
        for p in sorted(Path(d).rglob("*")):
            if not p.is_file() or p.name.endswith("properties.xml"):  # libvips writes the time into it
                continue
            if p.suffix == ".szi":  # a zip: its entries' names, modes and contents (not their times)
                with zipfile.ZipFile(p) as z:
                    for i in z.infolist():
                        if i.filename.endswith("properties.xml"):
                            continue
                        out[f"{p.relative_to(d)}:{i.filename}"] = hashlib.sha256(
                            z.read(i) + i.external_attr.to_bytes(4, "big")).hexdigest()
                continue
            out[str(p.relative_to(d))] = hashlib.sha256(p.read_bytes()).hexdigest()
            if p.suffix.lower() in IMAGES and (px := pixel_hash(p)) is not None:
                out[f"{p.relative_to(d)}#pixels"] = px
        return out


def main() -> int:
    mode, path = sys.argv[1], Path(sys.argv[2])
    names = sys.argv[3:] or list(CASES)
    got = {n: run_case(CASES[n]) for n in names}
    if mode == "record":
        path.write_text(json.dumps(got, indent=1))
        print(f"recorded {sum(len(v) for v in got.values())} files of {len(got)} cases in {path}")
        return 0
    want = json.loads(path.read_text())
    bad = 0
    for n in names:
        a, b = want.get(n, {}), got[n]
        for f in sorted(set(a) | set(b)):
            if a.get(f) != b.get(f):
                bad += 1
                print(f"{n}: {f}: {'missing' if f not in b else 'new' if f not in a else 'changed'}")
    print(f"{len(names)} cases, {bad} files differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
