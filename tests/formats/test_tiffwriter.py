"""The parallel TIFF writer makes the file libvips would, from any split of the rows.

Even JPEG tiles are libvips' own, byte for byte, at any quality: the same libjpeg-turbo,
quality, samples (YCbCr 4:2:0 below 90, RGB from 90), tables and zero padding past the edges.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import pyvips
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st

from bigcppn.formats.tiff.tile import pyramid_sizes
from bigcppn.formats.tiff.writer import TiffTags, TiledTiffWriter

pyvips.cache_set_max(0)  # files are rewritten under the same names


def picture(h: int, w: int, bands: int, depth: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus noise: compressible, and every 2×2 mean's rounding exercised."""
    rng = np.random.default_rng(seed)
    top = 255 if depth == 8 else 65535
    y, x = np.mgrid[0:h, 0:w]
    base = (np.sin(x[..., None] / 37.0 + y[..., None] / 91.0 + np.arange(bands)) + 1) * top / 2.2
    noise = rng.integers(0, top // 8, (h, w, bands))
    return (base + noise).clip(0, top).astype(np.uint8 if depth == 8 else np.uint16)


def libvips_tiff(a: np.ndarray, path, compression: str, tile: int = 256, quality: int = 90) -> None:
    image = pyvips.Image.new_from_array(a)
    if a.dtype == np.uint16:
        image = image.copy(interpretation="rgb16" if a.shape[2] == 3 else "grey16")
    extra = {"Q": quality} if compression == "jpeg" else {}
    image.tiffsave(str(path), tile=True, pyramid=True, tile_width=tile, tile_height=tile, compression=compression,
                   **extra)


def ours(a: np.ndarray, path, compression: str, rows=(97,), tile: int = 256, **kw) -> None:
    h, w, bands = a.shape
    with TiledTiffWriter(path, w, h, bands, 8 * a.itemsize, tile=tile, compression=compression, **kw) as writer:
        y, i = 0, 0
        while y < h:
            n = rows[i % len(rows)]
            writer.write(a[y : y + n])
            y, i = y + n, i + 1


def levels_tifffile(path) -> list[np.ndarray]:
    with tifffile.TiffFile(path) as tf:
        return [p.asarray().reshape(p.shape[0], p.shape[1], -1) for p in tf.pages]


def levels_libvips(path) -> list[np.ndarray]:
    n = pyvips.Image.new_from_file(str(path)).get("n-pages")
    out = []
    for i in range(n):
        image = pyvips.Image.new_from_file(str(path), page=i)
        dtype = {"uchar": np.uint8, "ushort": np.uint16}[image.format]
        out.append(np.frombuffer(image.write_to_memory(), dtype).reshape(image.height, image.width, image.bands))
    return out


@pytest.mark.parametrize(
    "w,h,bands,depth,compression",
    [
        (1000, 700, 3, 8, "deflate"),
        (513, 1300, 3, 8, "lzw"),
        (257, 255, 1, 8, "deflate"),
        (600, 530, 3, 16, "deflate"),
        (300, 520, 1, 16, "lzw"),
        (640, 480, 3, 8, "none"),
        (3, 600, 3, 8, "deflate"),
        (2000, 1, 3, 8, "deflate"),
        (256, 256, 3, 8, "lzw"),
        (1300, 1000, 3, 8, "jpeg"),  # JPEG too: the same libjpeg-turbo, settings and padding as libvips
        (513, 301, 1, 8, "jpeg"),
    ],
)
def test_same_pixels_and_levels_as_libvips(tmp_path, w, h, bands, depth, compression):
    a = picture(h, w, bands, depth)
    libvips_tiff(a, tmp_path / "vips.tif", compression)
    ours(a, tmp_path / "ours.tif", compression, rows=(1, 97, 300))
    expected = levels_tifffile(tmp_path / "vips.tif")
    assert [x.shape for x in expected] == [(hh, ww, bands) for ww, hh in pyramid_sizes(w, h, 256)]
    for reader in (levels_tifffile, levels_libvips):
        got = reader(tmp_path / "ours.tif")
        assert len(got) == len(expected)
        for level, (g, e) in enumerate(zip(got, expected)):
            assert g.dtype == e.dtype and g.shape == e.shape, level
            np.testing.assert_array_equal(g, e, err_msg=f"level {level} ({reader.__name__})")
    with tifffile.TiffFile(tmp_path / "ours.tif") as tf:
        first = tf.pages[0]
        assert first.is_tiled and (first.tilewidth, first.tilelength) == (256, 256)
        assert first.compression == {"none": 1, "lzw": 5, "deflate": 8, "jpeg": 7}[compression]
        assert all(p.is_reduced for p in tf.pages[1:]) and not first.is_reduced


def test_bytes_do_not_depend_on_row_split_or_workers(tmp_path):
    a = picture(900, 777, 3, 8, seed=3)
    ours(a, tmp_path / "a.tif", "deflate", rows=(900,), workers=1)
    ours(a, tmp_path / "b.tif", "deflate", rows=(1, 2, 255, 256, 257), workers=3, max_pending=2)
    ours(a, tmp_path / "c.tif", "deflate", rows=(64,), workers=2)
    data = (tmp_path / "a.tif").read_bytes()
    assert (tmp_path / "b.tif").read_bytes() == data
    assert (tmp_path / "c.tif").read_bytes() == data


@pytest.mark.parametrize("compression", ["deflate", "jpeg"])
def test_each_level_owns_its_metadata_and_resolution(tmp_path, compression):
    # as libvips lays it out: every directory its own copy of the description, XMP, ICC profile
    # (and JPEGTables); one shared copy made exiftool refuse the file ("XMP pointer references
    # previous XMP directory"). Each level says its real resolution: halved per level.
    a = picture(1100, 600, 3, 8)
    tags = TiffTags(dpi=150, description="# config ü\nseed = 1\n", xmp=b"<x:xmpmeta/>", icc=b"not-really-icc" * 4)
    ours(a, tmp_path / "t.tif", compression, tags=tags)
    where: dict[int, set[int]] = {270: set(), 700: set(), 34675: set(), 347: set()}
    with tifffile.TiffFile(tmp_path / "t.tif") as tf:
        assert not tf.is_bigtiff and len(tf.pages) == 4
        for level, page in enumerate(tf.pages):
            t = {tag.code: tag.value for tag in page.tags.values()}
            half = Fraction(150, 2**level)
            assert t[282] == t[283] == (half.numerator, half.denominator) and int(t[296]) == 2
            assert (t.get(317) == 2) == (compression == "deflate")  # horizontal predictor
            assert t[700] == b"<x:xmpmeta/>" and t[34675] == b"not-really-icc" * 4
            assert t[270].rstrip() == "# config ü\nseed = 1"  # (tifffile strips the newline)
            for code in where:
                if code in page.tags:
                    where[code].add(page.tags[code].valueoffset)
    assert [len(v) for v in where.values()] == [4, 4, 4, 4 if compression == "jpeg" else 0]
    image = pyvips.Image.new_from_file(str(tmp_path / "t.tif"))
    assert image.get("image-description") == "# config ü\nseed = 1\n"
    assert abs(image.xres * 25.4 - 150) < 1e-3


def tiles(path) -> tuple[list[dict[int, object]], list[list[bytes]]]:
    """The tags and raw tile bytes of every level."""
    with tifffile.TiffFile(path) as tf:
        tags = [{t.code: t.value for t in p.tags.values()} for p in tf.pages]
        fh = tf.filehandle
        data = []
        for p in tf.pages:
            data.append([])
            for offset, count in zip(p.dataoffsets, p.databytecounts):
                fh.seek(offset)
                data[-1].append(fh.read(count))
    return tags, data


@pytest.mark.parametrize("quality", [75, 50, 90, 20])
@pytest.mark.parametrize("bands", [3, 1])
def test_jpeg_is_libvips_structure_byte_for_byte(tmp_path, quality, bands):
    # below quality 90 libvips writes YCbCr, 4:2:0 (libtiff's default subsampling, so no tag),
    # one JPEGTables per directory and abbreviated tiles; RGB samples from 90 up
    a = picture(700, 1000, bands, 8, seed=quality)
    libvips_tiff(a, tmp_path / "vips.tif", "jpeg", quality=quality)
    ours(a, tmp_path / "ours.tif", "jpeg", quality=quality, rows=(1, 97, 300))
    vtags, vtiles = tiles(tmp_path / "vips.tif")
    otags, otiles = tiles(tmp_path / "ours.tif")
    assert otiles == vtiles  # every tile of every level, byte for byte
    for v, o in zip(vtags, otags, strict=True):
        for code in (259, 262, 277, 258, 347, 530, 532):
            assert o.get(code) == v.get(code), code
    assert otags[0][262] == (6 if bands == 3 and quality < 90 else 2 if bands == 3 else 1)
    assert otags[0][347][:2] == b"\xff\xd8" and len(otags[0][347]) == 574
    size = [(tmp_path / n).stat().st_size for n in ("vips.tif", "ours.tif")]
    assert abs(size[1] - size[0]) < 0.01 * size[0] + 2000, size
    for g, e in zip(levels_libvips(tmp_path / "ours.tif"), levels_libvips(tmp_path / "vips.tif"), strict=True):
        np.testing.assert_array_equal(g, e)


def test_bigtiff_reads_the_same(tmp_path):
    a = picture(600, 700, 3, 8)
    ours(a, tmp_path / "classic.tif", "lzw")
    ours(a, tmp_path / "big.tif", "lzw", bigtiff=True)
    with tifffile.TiffFile(tmp_path / "big.tif") as tf:
        assert tf.is_bigtiff
    for reader in (levels_tifffile, levels_libvips):
        for g, e in zip(reader(tmp_path / "big.tif"), reader(tmp_path / "classic.tif"), strict=True):
            np.testing.assert_array_equal(g, e)


def test_wrong_rows_are_refused_and_abort_closes(tmp_path):
    path = tmp_path / "x.tif"
    writer = TiledTiffWriter(path, 100, 50, 3, compression="deflate")
    with pytest.raises(ValueError, match="do not fit"):
        writer.write(np.zeros((10, 99, 3), np.uint8))
    with pytest.raises(ValueError, match="takes uint8 rows, not float64"):
        writer.write(np.zeros((10, 100, 3)))
    writer.write(np.zeros((40, 100, 3), np.uint8))
    with pytest.raises(ValueError, match="rows high"):
        writer.write(np.zeros((11, 100, 3), np.uint8))
    with pytest.raises(ValueError, match="40 rows written"):
        writer.close()
    writer.abort()
    assert writer._file.closed
    with pytest.raises(ValueError, match="no parallel TIFF codec"):
        TiledTiffWriter(tmp_path / "y.tif", 10, 10, 3, compression="zstd")
    with pytest.raises(ValueError, match="JPEG tiles hold 8-bit"):
        TiledTiffWriter(tmp_path / "y.tif", 10, 10, 3, depth=16, compression="jpeg")


def test_a_failing_source_aborts_inside_with(tmp_path):
    def rows():
        yield np.zeros((300, 400, 3), np.uint8)
        raise RuntimeError("render died")

    with pytest.raises(RuntimeError, match="render died"):
        with TiledTiffWriter(tmp_path / "z.tif", 400, 900, 3) as writer:
            for r in rows():
                writer.write(r)
    assert writer._pool._shutdown


@pytest.mark.parametrize("bigtiff", [False, True])
def test_short_metadata_sits_in_the_entry(tmp_path, bigtiff):
    # values of 4 bytes or less (8 in BigTIFF) are stored in the entry, not pointed to
    a = picture(40, 50, 3, 8)
    ours(a, tmp_path / "s.tif", "deflate", bigtiff=bigtiff,
         tags=TiffTags(description="ab", xmp=b"<x>", icc=b"1234567"))
    with tifffile.TiffFile(tmp_path / "s.tif") as tf:
        t = {tag.code: tag.value for tag in tf.pages[0].tags.values()}
    assert t[270] == "ab" and t[700] == b"<x>" and t[34675] == b"1234567"
    assert pyvips.Image.new_from_file(str(tmp_path / "s.tif")).get("image-description") == "ab"


def test_many_finished_tiles_do_not_nest_the_drain(tmp_path):
    # a narrow, very tall image with a deep queue: thousands of finished tile rows
    # of lower levels at once (this hit Python's recursion limit once)
    a = picture(16 * 4000, 16, 1, 8).reshape(16 * 4000, 16, 1)
    ours(a, tmp_path / "n.tif", "deflate", rows=(16 * 4000,), tile=16, workers=2, max_pending=5000)
    got = levels_tifffile(tmp_path / "n.tif")
    assert [g.shape[:2] for g in got] == [(h, w) for w, h in pyramid_sizes(16, 16 * 4000, 16)]


def test_a_failing_close_still_releases_everything(tmp_path):
    with pytest.raises(ValueError, match="300 rows written"):
        with TiledTiffWriter(tmp_path / "c.tif", 400, 600, 3) as writer:
            writer.write(np.zeros((300, 400, 3), np.uint8))
    assert writer._file.closed and writer._pool._shutdown
    assert all(lv.spool.closed for lv in writer.levels)


@settings(max_examples=25, deadline=None)
@given(
    w=st.integers(1, 140),
    h=st.integers(1, 140),
    tile=st.sampled_from([16, 32]),
    bands=st.sampled_from([1, 3]),
    depth=st.sampled_from([8, 16]),
    compression=st.sampled_from(["deflate", "lzw", "none", "jpeg"]),
    quality=st.integers(5, 100),
    split=st.lists(st.integers(1, 50), min_size=1, max_size=4),
    workers=st.integers(1, 3),
    max_pending=st.sampled_from([1, 2, None]),
)
def test_any_shape_matches_libvips(tmp_path_factory, w, h, tile, bands, depth, compression, quality, split, workers,
                                   max_pending):
    if compression == "jpeg":
        depth = 8
    tmp = tmp_path_factory.mktemp("any")
    a = picture(h, w, bands, depth, seed=w * 1000 + h)
    libvips_tiff(a, tmp / "vips.tif", compression, tile=tile, quality=quality)
    ours(a, tmp / "ours.tif", compression, rows=tuple(split), tile=tile, workers=workers, max_pending=max_pending,
         quality=quality)
    expected = levels_tifffile(tmp / "vips.tif")
    for reader in (levels_tifffile, levels_libvips):
        got = reader(tmp / "ours.tif")
        assert [g.shape for g in got] == [e.shape for e in expected]
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(g, e)
    if compression == "jpeg":  # and the tiles themselves (YCbCr 4:2:0 below quality 90)
        assert tiles(tmp / "ours.tif")[1] == tiles(tmp / "vips.tif")[1]


@pytest.mark.parametrize("w,h,tile,used", [(8, 8, 272, 256), (100, 100, 512, 256), (300, 300, 1024, 304),
                                           (300, 300, 256, 256), (2000, 10, 1024, 1024)])
def test_tiles_far_larger_than_the_picture_are_fitted_so_libvips_opens_it(tmp_path, w, h, tile, used):
    from bigcppn import cli

    out = tmp_path / "x.tif"
    assert cli.main(["render", "--width", str(w), "--height", str(h), "-q", "--set", f"output.tiff_tile={tile}",
                     "-o", str(out)]) == 0
    image = pyvips.Image.new_from_file(str(out))
    assert (image.width, image.height, image.get("tile-width")) == (w, h, used)
    assert image.avg() > 0  # every tile decodes
