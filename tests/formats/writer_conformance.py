"""The conformance suite every writer runs (issue 17): one base class of tests, one small subclass per output.

As zarr's ``StoreTests``: :class:`WriterTests` holds the tests, and a subclass in ``test_writers.py`` says
only how to make one output (its file name, its ``output.*`` settings, the bands of the rows), how close its
pixels must come (exactly, or a stated PSNR and largest difference for lossy codecs), what it holds (the
levels, a resolution, an ICC profile) and how to read it back (a reader: libvips by default, the DeepZoom and
PDF readers here). This module is not collected by itself (no ``test_`` prefix, no ``Test`` class).

Every writer is reached the way a render reaches it: ``open_writer`` for the writer protocol (rows in,
``close``, ``abort``), ``save_strips`` / ``OutputTarget`` for the atomic save with the config embedded. The
picture is small (173 x 91, not tile-aligned: the TIFF and DeepZoom subclasses take 64-pixel tiles so that it
spans several) and fed in uneven chunks; it is a smooth gradient with hard-edged rings and a little noise,
so lossy codecs have a fair target and every pixel of a lossless one matters.

The shared tests: (1) rows in, a complete file out, of the right size, bands and depth, and nothing else in
its folder; (2) the pixels equal the whole array (CMYK: all of it converted at once), and any split of the rows
(one write, row by row, empty writes) gives the same pixels; a wrong number of rows is refused; (3) a feed that
raises before, during or after the rows leaves no output and no temporary (and an older output as it was), and
``abort`` ends the writer's threads; (4) the config, the resolution and the ICC profile read back; (5) the
pyramid's levels. A writer that fails one is a finding: its subclass marks that test with :func:`xfail`.
"""

from __future__ import annotations

import functools
import threading
import time
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import pyvips

from bigcppn.config import OutputConfig
from bigcppn.formats.registry import read_config_from
from bigcppn.formats.registry import format_for
from bigcppn.formats.target import OutputTarget, save_strips
from bigcppn.formats.writers import open_writer

import test_pdf as pdf_tests  # its PDF readers (pikepdf), which skip without it
from conftest import psnr, small_config

__all__ = ["WriterTests", "VIPS", "DEEPZOOM", "PDF", "W", "H", "DPI", "tiff_levels", "dz_levels", "xfail"]

W, H = 173, 91
DPI = 150.0  # the config's canvas.dpi (not the default 300), so a resolution read back is the config's
CHUNKS = (1, 30, 7, 44, 9)  # uneven row chunks, top to bottom
assert sum(CHUNKS) == H


def picture(bands: int, depth: int, seed: int = 17) -> np.ndarray:
    """A (H, W, bands) picture: per-band gradients, rings with hard edges, a little noise."""
    y, x = np.mgrid[0:H, 0:W] / np.array([H, W])[:, None, None]
    gradients = [0.15 + 0.6 * x + 0.1 * y, 0.2 + 0.55 * y + 0.1 * x, 0.8 - 0.35 * (x + y)]
    rings = 0.12 * ((np.hypot((x - 0.4) * W, (y - 0.55) * H) // 9) % 2)
    noise = np.random.default_rng(seed).normal(0, 0.01, (H, W, bands))
    a = np.stack([gradients[b % 3] + rings for b in range(bands)], -1) + noise
    top = 255 if depth == 8 else 65535
    return (a.clip(0, 1) * top).round().astype(np.uint8 if depth == 8 else np.uint16)


def tiff_levels(width: int, height: int, tile: int) -> tuple[tuple[int, int], ...]:
    """A pyramidal TIFF's pages: halved (rounding down) until the level fits in one tile."""
    sizes = [(width, height)]
    while width > tile or height > tile:
        width, height = width // 2, height // 2
        sizes.append((width, height))
    return tuple(sizes)


def dz_levels(width: int, height: int) -> tuple[tuple[int, int], ...]:
    """A DeepZoom pyramid's levels, full size first: halved (rounding up) down to one pixel."""
    sizes = [(width, height)]
    while (width, height) != (1, 1):
        width, height = -(-width // 2), -(-height // 2)
        sizes.append((width, height))
    return tuple(sizes)


@functools.cache
def builtin_icc(name: str) -> bytes:
    """The bytes libvips' savers embed for ``profile=name`` (``srgb``, ``sgrey``, ``cmyk``)."""
    bands, interpretation = {"sgrey": (1, "b-w"), "cmyk": (4, "cmyk")}.get(name, (3, "srgb"))
    probe = pyvips.Image.black(1, 1, bands=bands).copy(interpretation=interpretation)
    return bytes(pyvips.Image.new_from_buffer(probe.tiffsave_buffer(profile=name), "").get("icc-profile-data"))


def xfail(test, reason: str):
    """``test`` (a :class:`WriterTests` method) expected to fail in one subclass, for ``reason`` (strict)."""
    @functools.wraps(test)
    def expected_to_fail(self, *args, **kwargs):
        return test(self, *args, **kwargs)

    return pytest.mark.xfail(strict=True, reason=reason)(expected_to_fail)


# --------------------------------------------------------------------------- readers


class VipsReader:
    """An image libvips opens (``fail_on="warning"``: a damaged or short file fails)."""

    holds_dpi = True
    holds_icc = True

    def files(self, path: Path) -> set[str]:
        """The names a complete output leaves in its folder."""
        return {path.name}

    def check(self, path: Path) -> None:
        """Whatever the container itself can say about being complete (libvips' load says it for images)."""

    def _image(self, path: Path, page: int | None = None) -> pyvips.Image:
        paged = {} if page is None else {"page": page}  # (only multi-page loaders take a page)
        return pyvips.Image.new_from_file(str(path), fail_on="warning", **paged)

    def pixels(self, path: Path) -> np.ndarray:
        image = self._image(path)
        return image.numpy().reshape(image.height, image.width, image.bands)

    def levels(self, path: Path) -> list[tuple[int, int]]:
        image = self._image(path)
        pages = image.get("n-pages") if "n-pages" in image.get_fields() else 1
        return [(image.width, image.height)] + [(p.width, p.height) for p in (self._image(path, i)
                                                                            for i in range(1, pages))]

    def dpi(self, path: Path) -> float:
        return self._image(path).xres * 25.4

    def icc(self, path: Path) -> bytes | None:
        image = self._image(path)
        return bytes(image.get("icc-profile-data")) if "icc-profile-data" in image.get_fields() else None


class DeepZoomReader:
    """A DeepZoom pyramid, ``NAME.dzi`` + ``NAME_files/`` or a ``.szi`` zip, its levels assembled from the tiles.

    libvips has no DeepZoom loader: each level is put together from its tiles, each tile checked to have the
    size the layout gives it (``TileSize`` plus ``Overlap`` on the sides that have a neighbour). The tiles
    carry no resolution and no profile.
    """

    holds_dpi = False
    holds_icc = False

    def files(self, path: Path) -> set[str]:
        if path.suffix.lower() == ".szi":
            return {path.name}
        return {path.name, f"{path.stem}_files", f"{path.stem}.bigcppn.json"}

    def _open(self, path: Path):
        """The .dzi's text, the names of the files under ``NAME_files/``, and a function from a name to its bytes."""
        if path.suffix.lower() != ".szi":
            files = path.with_name(f"{path.stem}_files")
            names = {p.relative_to(files).as_posix() for p in files.rglob("*") if p.is_file()}
            return path.read_text(), names, lambda name: (files / name).read_bytes()
        with zipfile.ZipFile(path) as z:
            entries = {n: z.read(n) for n in z.namelist()}
        dzi = next(n for n in entries if n.endswith(".dzi"))
        folder = dzi[: -len(".dzi")] + "_files/"
        names = {n[len(folder):] for n in entries if n.startswith(folder)}
        return entries[dzi].decode(), names, lambda name: entries[folder + name]

    def check(self, path: Path) -> None:
        if path.suffix.lower() == ".szi":
            with zipfile.ZipFile(path) as z:
                assert z.testzip() is None, "every entry of the .szi reads back"

    def _pyramid(self, path: Path) -> list[np.ndarray]:
        """Every level, full size first; the tiles present are exactly the layout's (and libvips' properties)."""
        text, names, tile_bytes = self._open(path)
        root = ET.fromstring(text)
        size = root.find("dz:Size", {"dz": "http://schemas.microsoft.com/deepzoom/2008"})
        tile, overlap, suffix = int(root.get("TileSize")), int(root.get("Overlap")), root.get("Format")
        sizes = dz_levels(int(size.get("Width")), int(size.get("Height")))
        top = len(sizes) - 1
        expected = {f"{top - i}/{c}_{r}.{suffix}" for i, (w, h) in enumerate(sizes)
                    for c in range(-(-w // tile)) for r in range(-(-h // tile))}
        assert names - {"vips-properties.xml"} == expected, "the tiles of every level, no others"
        return [self._level(tile_bytes, top - i, w, h, tile, overlap, suffix) for i, (w, h) in enumerate(sizes)]

    @staticmethod
    def _level(tile_bytes, number: int, width: int, height: int, tile: int, overlap: int,
               suffix: str) -> np.ndarray:
        rows = []
        for r in range(-(-height // tile)):
            row = []
            for c in range(-(-width // tile)):
                image = pyvips.Image.new_from_buffer(tile_bytes(f"{number}/{c}_{r}.{suffix}"), "",
                                                     fail_on="warning")
                x0, y0 = max(0, c * tile - overlap), max(0, r * tile - overlap)
                x1, y1 = min(width, (c + 1) * tile + overlap), min(height, (r + 1) * tile + overlap)
                assert (image.width, image.height) == (x1 - x0, y1 - y0), f"tile {number}/{c}_{r}"
                a = image.numpy().reshape(image.height, image.width, image.bands)
                row.append(a[r * tile - y0 : min(height, (r + 1) * tile) - y0,
                             c * tile - x0 : min(width, (c + 1) * tile) - x0])
            rows.append(np.concatenate(row, axis=1))
        return np.concatenate(rows, axis=0)

    def pixels(self, path: Path) -> np.ndarray:
        return self._pyramid(path)[0]

    def levels(self, path: Path) -> list[tuple[int, int]]:
        return [(a.shape[1], a.shape[0]) for a in self._pyramid(path)]

    def dpi(self, path: Path) -> float | None:
        return None

    def icc(self, path: Path) -> bytes | None:
        return None


class PdfReader:
    """A one-page PDF, read by pikepdf (qpdf): the image XObject's samples, the page size, the output intent.

    Without pikepdf the tests skip (fail under CI), as ``test_pdf.py``'s do.
    """

    holds_dpi = True
    holds_icc = True

    def files(self, path: Path) -> set[str]:
        return {path.name}

    def check(self, path: Path) -> None:
        with pdf_tests.pikepdf().open(path) as doc:
            assert doc.check_pdf_syntax() == [], "qpdf finds no syntax or stream errors"
            assert len(doc.pages) == 1

    def pixels(self, path: Path) -> np.ndarray:
        info, a = pdf_tests.image_of(path)
        a = a.reshape(info["/Height"], info["/Width"], -1)
        return a.astype(a.dtype.newbyteorder("="))  # 16-bit samples are big-endian in the PDF

    def levels(self, path: Path) -> list[tuple[int, int]]:
        info, _ = pdf_tests.image_of(path)
        return [(info["/Width"], info["/Height"])]

    def dpi(self, path: Path) -> float:
        """The image's pixels per inch of the page (no bleed, no crop marks here: the image fills the page)."""
        x0, _, x1, _ = pdf_tests.boxes(path)["/MediaBox"]
        return self.levels(path)[0][0] / ((x1 - x0) / 72)

    def icc(self, path: Path) -> bytes | None:
        with pdf_tests.pikepdf().open(path) as doc:
            (intent,) = doc.Root.OutputIntents
            return intent.DestOutputProfile.read_bytes()


VIPS, DEEPZOOM, PDF = VipsReader(), DeepZoomReader(), PdfReader()


# --------------------------------------------------------------------------- the tests


def _threads_of_ours() -> set[threading.Thread]:
    # libvips' own worker threads show up as _DummyThread once they call into Python (a
    # stream's read callback) and stay listed for good: they are libvips', not a writer's
    return {t for t in threading.enumerate() if not isinstance(t, threading._DummyThread)}


def assert_no_threads_left(before: set[threading.Thread], within: float = 10.0) -> None:
    """Every thread started since ``before`` ends within ``within`` seconds."""
    deadline = time.monotonic() + within
    while (left := _threads_of_ours() - before) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not left, f"threads still running: {sorted(t.name for t in left)}"


class WriterTests:
    """The shared tests. A subclass sets ``name`` and what differs from these defaults."""

    name: str = ""  # the output's file name; its suffix picks the format (format_for)
    output: dict = {}  # output.* settings besides the defaults
    bands: int = 3  # bands of the rows given: 1 grey, 3 RGB (a CMYK output holds 4)
    least_psnr: float | None = None  # None: lossless, every pixel equal; else a lossy codec's bounds:
    most_diff: int = 0  # the largest difference of one sample
    levels: tuple[tuple[int, int], ...] = ((W, H),)  # (width, height) of each level, full size first
    reader = VIPS

    @property
    def holds_dpi(self) -> bool:
        return self.reader.holds_dpi

    @property
    def holds_icc(self) -> bool:
        return self.reader.holds_icc

    # ------------------------------------------------------------------ what is written

    @property
    def out(self) -> OutputConfig:
        return OutputConfig(**self.output)

    @property
    def config(self):
        cfg = small_config(W, H, canvas__dpi=DPI)
        return replace(cfg, output=self.out)

    @property
    def written_bands(self) -> int:
        return 4 if self.out.cmyk else self.bands

    def picture(self) -> np.ndarray:
        return picture(self.bands, self.out.depth)

    def expected(self) -> np.ndarray:
        """The samples the file must hold: the picture, or all of it converted to CMYK at once."""
        a = self.picture()
        if not self.out.cmyk:
            return a
        grey = self.bands == 1
        image = pyvips.Image.new_from_array(a).copy(interpretation="b-w" if grey else "srgb")
        cmyk = image.icc_transform(self.out.cmyk, input_profile="sgrey" if grey else "srgb", intent=self.out.intent,
                                   embedded=False, black_point_compensation=self.out.intent == "relative")
        return cmyk.numpy().reshape(H, W, 4)

    def expected_icc(self) -> bytes:
        return builtin_icc(self.out.cmyk or ("srgb" if self.bands == 3 else "sgrey"))

    def chunks(self, sizes=CHUNKS):
        a, y = self.picture(), 0
        for n in sizes:
            yield a[y : y + n]
            y += n

    def save(self, path: Path, feed=None, cancel=None) -> None:
        """The atomic save a render makes: ``feed`` (default: the picture in CHUNKS) into ``path``, with the config."""
        target = OutputTarget(path, format_for(path))
        save_strips(feed if feed is not None else self.chunks(), target, W, H, self.bands, self.out, cancel=cancel,
                    config=self.config)

    def write_directly(self, path: Path, sizes) -> None:
        """Rows in through the writer protocol alone: ``open_writer``, ``write`` in ``sizes`` rows, ``close``."""
        before = _threads_of_ours()
        writer = open_writer(path, format_for(path), W, H, self.bands, self.out)
        for rows in self.chunks(sizes):
            writer.write(rows)
        writer.close()
        assert_no_threads_left(before)

    @pytest.fixture(scope="class")
    def saved(self, tmp_path_factory) -> Path:
        path = tmp_path_factory.mktemp(type(self).__name__) / self.name
        self.save(path)
        return path

    # ------------------------------------------------------------------ 1. rows in, a complete file out

    def test_rows_in_a_complete_file_out(self, saved):
        assert {p.name for p in saved.parent.iterdir()} == self.reader.files(saved), "the output, nothing else"
        self.reader.check(saved)
        pixels = self.reader.pixels(saved)
        assert pixels.shape == (H, W, self.written_bands)
        assert pixels.dtype == (np.uint8 if self.out.depth == 8 else np.uint16)

    # ------------------------------------------------------------------ 2. the pixels

    def test_pixels_equal_the_whole_array(self, saved):
        got, want = self.reader.pixels(saved), self.expected()
        if self.least_psnr is None:
            np.testing.assert_array_equal(got, want)
            return
        assert psnr(got, want) >= self.least_psnr
        assert np.abs(got.astype(int) - want).max() <= self.most_diff

    @pytest.mark.parametrize("sizes", [(H,), (1,) * H, (45, 45, 1)], ids=["one-write", "row-by-row", "45-45-1"])
    def test_any_row_split_gives_the_same_pixels(self, saved, tmp_path, sizes):
        self.write_directly(tmp_path / self.name, sizes)
        np.testing.assert_array_equal(self.reader.pixels(tmp_path / self.name), self.reader.pixels(saved))

    def test_empty_writes_are_taken(self, saved, tmp_path):
        self.write_directly(tmp_path / self.name, (0, 45, 0, 46, 0))
        np.testing.assert_array_equal(self.reader.pixels(tmp_path / self.name), self.reader.pixels(saved))

    @pytest.mark.parametrize("wrong", ["short", "past-the-end"])
    def test_a_wrong_number_of_rows_is_refused(self, tmp_path, wrong):
        """Rows short of the picture (the last chunk left out) or past its end (the first chunk again) fail the
        write or the close, never a complete-looking file; the writer then aborts and leaves no thread.
        (Any exception: which one, and its message, is the writer's.)"""
        chunks = list(self.chunks())
        parts = chunks[:-1] if wrong == "short" else [*chunks, chunks[0]]
        before = _threads_of_ours()
        writer = open_writer(tmp_path / self.name, format_for(self.name), W, H, self.bands, self.out)
        with pytest.raises(Exception):
            for rows in parts:
                writer.write(rows)
            writer.close()
        writer.abort()
        assert_no_threads_left(before)

    # ------------------------------------------------------------------ 3. abort leaves nothing

    @pytest.mark.parametrize("given", [0, 2, len(CHUNKS)], ids=["before-any-row", "mid-way", "after-every-row"])
    def test_a_failing_feed_leaves_nothing(self, tmp_path, given):
        def dying():
            yield from list(self.chunks())[:given]
            raise RuntimeError("renderer died")

        cancelled = []
        with pytest.raises(RuntimeError, match="renderer died"):
            self.save(tmp_path / self.name, dying(), cancel=lambda: cancelled.append(1))
        assert cancelled == [1]
        assert sorted(p.name for p in tmp_path.iterdir()) == [], "no output and no temporary"

    def test_a_failing_feed_keeps_the_old_output(self, tmp_path):
        def files() -> dict[str, bytes]:
            return {str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

        self.save(tmp_path / self.name)
        old = files()

        def dying():
            yield from list(self.chunks())[:2]
            raise RuntimeError("renderer died")

        with pytest.raises(RuntimeError, match="renderer died"):
            self.save(tmp_path / self.name, dying())
        assert files() == old

    def test_abort_stops_the_work_in_flight(self, tmp_path):
        before = _threads_of_ours()
        writer = open_writer(tmp_path / self.name, format_for(self.name), W, H, self.bands, self.out)
        for rows in list(self.chunks())[:-1]:  # all but the last rows: tiles and pieces are in flight
            writer.write(rows)
        writer.abort()
        assert_no_threads_left(before)

    # ------------------------------------------------------------------ 4. metadata read back

    def test_config_reads_back(self, saved):
        assert read_config_from(saved) == self.config

    def test_resolution_reads_back(self, saved):
        if not self.holds_dpi:
            pytest.skip(f"{self.name} holds no resolution")
        assert self.reader.dpi(saved) == pytest.approx(DPI, abs=0.02)  # (PNG stores whole pixels per metre)

    def test_icc_profile_reads_back(self, saved):
        if not self.holds_icc:
            pytest.skip(f"{self.name} holds no ICC profile")
        assert self.reader.icc(saved) == self.expected_icc()

    # ------------------------------------------------------------------ 5. pyramid levels

    def test_levels(self, saved):
        assert self.reader.levels(saved) == list(self.levels)
