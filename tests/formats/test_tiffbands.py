"""A TIFF encoded band by band (as cluster workers do) is the row writer's file, byte for byte."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigcppn.formats.tiff.blocks import TiffBlockGrid, RowJoiner, choose_blocks, encode_block, reduce2x2
from bigcppn.formats.tiff.writer import TiffTags, TiledTiffWriter

from conftest import tiles_and_tags  # noqa: F401 (the cluster tests import it from conftest too)
from test_tiffwriter import picture

TAGS = TiffTags(dpi=300, description="a config", xmp=b"<x/>", icc=b"\0" * 200)


def by_rows(a, path, tile, compression, quality=85):
    h, w, bands = a.shape
    with TiledTiffWriter(path, w, h, bands, 8 * a.itemsize, tile=tile, compression=compression, quality=quality,
                         tags=TAGS) as writer:
        for y in range(0, h, 97):
            writer.write(a[y : y + 97])


def by_bands(a, path, tile, compression, k, quality=85, workers=2, split=False, pyramid=True):
    """As the driver does: blocks encoded apart, placed in order, their reduced pixels joined into rows."""
    h, w, bands = a.shape
    plan = TiffBlockGrid(w, h, tile, k, pyramid=pyramid, split=split)
    joiner = RowJoiner(plan)
    with TiledTiffWriter(path, w, h, bands, 8 * a.itemsize, tile=tile, compression=compression, quality=quality,
                         tags=TAGS, encoded_levels=plan.inside, pyramid=pyramid) as writer:
        for b in range(plan.count):
            x, y, bw, bh = plan.block(b)
            band = encode_block(a[y : y + bh, x : x + bw], plan, b, compression, quality, workers)
            assert band.nbytes > 0
            writer.write_encoded(band.tiles, joiner.add(b, band.reduced), plan.where(b))
    return plan




@pytest.mark.parametrize("w,h,tile,bands,depth,compression,k", [
    (700, 500, 64, 3, 8, "deflate", 1),
    (1000, 1000, 64, 3, 8, "jpeg", 2),     # tiles of three levels inside each band
    (513, 1025, 32, 1, 16, "lzw", 3),
    (300, 77, 16, 3, 8, "deflate", 0),      # bands of one tile row
    (2000, 130, 32, 3, 8, "jpeg", 5),       # one band holds the whole image: the driver builds no level
    (64, 64, 64, 3, 8, "deflate", 2),       # a single level
    (33, 900, 16, 3, 8, "none", 1),
])
def test_bands_make_the_row_writers_file(tmp_path, w, h, tile, bands, depth, compression, k):
    a = picture(h, w, bands, depth, seed=w + h)
    by_rows(a, tmp_path / "rows.tif", tile, compression)
    by_bands(a, tmp_path / "bands.tif", tile, compression, k)
    assert (tmp_path / "rows.tif").read_bytes() == (tmp_path / "bands.tif").read_bytes()


@settings(max_examples=25, deadline=None)
@given(w=st.integers(1, 300), h=st.integers(1, 300), tile=st.sampled_from([16, 32]), k=st.integers(0, 4),
       compression=st.sampled_from(["deflate", "jpeg", "lzw"]), bands=st.sampled_from([1, 3]))
def test_any_shape_and_band_height(tmp_path_factory, w, h, tile, k, compression, bands):
    tmp = tmp_path_factory.mktemp("bands")
    a = picture(h, w, bands, 8, seed=w * 7 + h)
    by_rows(a, tmp / "rows.tif", tile, compression)
    plan = by_bands(a, tmp / "bands.tif", tile, compression, k, workers=1)
    assert (tmp / "rows.tif").read_bytes() == (tmp / "bands.tif").read_bytes(), plan


@settings(max_examples=25, deadline=None)
@given(w=st.integers(1, 300), h=st.integers(1, 300), tile=st.sampled_from([16, 32]), k=st.integers(0, 3),
       compression=st.sampled_from(["deflate", "jpeg", "lzw"]), bands=st.sampled_from([1, 3]),
       depth=st.sampled_from([8, 16]), pyramid=st.booleans())
def test_square_blocks_make_the_same_tiles_and_tags(tmp_path_factory, w, h, tile, k, compression, bands, depth,
                                                     pyramid):
    """Square blocks place their tiles block by block: the file differs only in where each tile lies."""
    if compression == "jpeg":
        depth = 8
    tmp = tmp_path_factory.mktemp("blocks")
    a = picture(h, w, bands, depth, seed=w * 5 + h)
    with TiledTiffWriter(tmp / "rows.tif", w, h, bands, depth, tile=tile, compression=compression, quality=85,
                         tags=TAGS, pyramid=pyramid) as writer:
        for y in range(0, h, 97):
            writer.write(a[y : y + 97])
    plan = by_bands(a, tmp / "blocks.tif", tile, compression, k, workers=1, split=True, pyramid=pyramid)
    assert tiles_and_tags(tmp / "rows.tif") == tiles_and_tags(tmp / "blocks.tif"), plan
    if plan.across == 1:
        assert (tmp / "rows.tif").read_bytes() == (tmp / "blocks.tif").read_bytes()


def test_reduce2x2_is_the_rounded_mean():
    a = np.array([[[0], [1], [9]], [[1], [1], [9]], [[5], [5], [5]]], np.uint8)
    assert reduce2x2(a).tolist() == [[[1]]]  # (0 + 1 + 1 + 1 + 2) >> 2, odd edges dropped
    b = np.full((2, 2, 1), 65535, np.uint16)
    assert reduce2x2(b).tolist() == [[[65535]]]


def test_blocks_fit_memory_and_workers_and_keep_the_drivers_share_small():
    assert choose_blocks(8192, 8192, 256, 2) == (2, False)      # 8 bands of 1024 rows: four per worker
    assert choose_blocks(8192, 8192, 256, 1) == (3, False)
    assert choose_blocks(1000, 100, 256, 4) == (0, False)       # too small for more than one tile row
    # one tile row of a very wide image is over the memory budget: square blocks of 4096, 5 levels inside
    assert choose_blocks(200_000, 8192, 256, 1) == (4, True)
    assert choose_blocks(316_000, 316_000, 256, 64) == (4, True)
    # many workers on a tall image: full-width bands would be one tile row each (the driver would build
    # a quarter of the pixels); square blocks keep k
    assert choose_blocks(8192, 8192, 256, 16) == (2, True)      # 64 blocks of 1024²
    for w, h, workers in [(8192, 8192, 2), (200_000, 8192, 1), (316_000, 316_000, 64), (50_000, 3_000, 8)]:
        k, split = choose_blocks(w, h, 256, workers)
        plan = TiffBlockGrid(w, h, 256, k, split=split)
        x, y, bw, bh = plan.block(plan.count - 1)
        assert x + bw == w and y + bh == h
        assert bw * bh <= 1 << 25
    # short and wide with many workers: one full-width tile row is over the budget, so squares even at k = 0
    # and rather one block per actor than k = 0 (the driver building a quarter of the pixels)
    assert choose_blocks(200_000, 256, 256, 100) == (2, True)   # 196 blocks of 1024 x 256
    assert choose_blocks(400_000, 512, 256, 200) == (2, True)
    # DeepZoom margins count in a block's area: a wide overlap keeps blocks smaller
    k, _ = choose_blocks(100_000, 100_000, 254, 8, overlap=127)
    assert ((254 << k) + 2 * (127 << k)) ** 2 <= 1 << 25 and choose_blocks(100_000, 100_000, 254, 8)[0] > k


def test_wrong_bands_are_refused(tmp_path):
    a = picture(100, 100, 3, 8)
    plan = TiffBlockGrid(100, 100, 16, 1)
    with pytest.raises(ValueError, match="block 0"):
        encode_block(a[:10], plan, 0, "deflate", 90)
    w = TiledTiffWriter(tmp_path / "x.tif", 100, 100, 3, tile=16, encoded_levels=plan.inside)
    try:
        with pytest.raises(ValueError, match="levels of encoded tiles"):
            w.write_encoded([[b"x"]])
    finally:
        w.abort()


def test_a_flat_tiff_in_bands(tmp_path):
    a = picture(300, 200, 3, 8)
    with TiledTiffWriter(tmp_path / "rows.tif", 200, 300, 3, tile=32, tags=TAGS, pyramid=False) as w:
        w.write(a)
    plan = TiffBlockGrid(200, 300, 32, 1, pyramid=False)
    assert plan.inside == 1
    with TiledTiffWriter(tmp_path / "bands.tif", 200, 300, 3, tile=32, tags=TAGS, pyramid=False,
                         encoded_levels=plan.inside) as w:
        for b in range(plan.count):
            x, y, bw, bh = plan.block(b)
            band = encode_block(a[y : y + bh], plan, b, "deflate", 90)
            assert band.reduced is None
            w.write_encoded(band.tiles, band.reduced)
    assert (tmp_path / "rows.tif").read_bytes() == (tmp_path / "bands.tif").read_bytes()


def test_square_blocks_in_a_bigtiff(tmp_path):
    """64-bit offsets: the tiles a block places land where the directories say, as in the row writer's BigTIFF."""
    a = picture(300, 520, 3, 8, seed=3)
    with TiledTiffWriter(tmp_path / "rows.tif", 520, 300, 3, tile=32, tags=TAGS, bigtiff=True) as w:
        w.write(a)
    plan = TiffBlockGrid(520, 300, 32, 2, split=True)
    joiner = RowJoiner(plan)
    with TiledTiffWriter(tmp_path / "blocks.tif", 520, 300, 3, tile=32, tags=TAGS, bigtiff=True,
                         encoded_levels=plan.inside) as w:
        for b in range(plan.count):
            x, y, bw, bh = plan.block(b)
            band = encode_block(a[y : y + bh, x : x + bw], plan, b, "deflate", 90)
            w.write_encoded(band.tiles, joiner.add(b, band.reduced), plan.where(b))
    assert plan.across == 5 and (tmp_path / "blocks.tif").read_bytes()[2:4] == b"\x2b\x00"  # BigTIFF
    assert tiles_and_tags(tmp_path / "rows.tif") == tiles_and_tags(tmp_path / "blocks.tif")
    import pyvips

    for page in range(3):
        ra = pyvips.Image.new_from_file(str(tmp_path / "rows.tif"), page=page).numpy()
        rb = pyvips.Image.new_from_file(str(tmp_path / "blocks.tif"), page=page).numpy()
        assert (ra == rb).all()


def test_a_tile_placed_twice_is_refused(tmp_path):
    a = picture(64, 64, 3, 8)
    plan = TiffBlockGrid(64, 64, 16, 1, split=True)
    band = encode_block(a[:32, :32], plan, 0, "deflate", 90)
    w = TiledTiffWriter(tmp_path / "x.tif", 64, 64, 3, tile=16, encoded_levels=plan.inside)
    try:
        w.write_encoded(band.tiles, None, plan.where(0))
        with pytest.raises(ValueError, match="placed twice"):
            w.write_encoded(band.tiles, None, plan.where(0))
    finally:
        w.abort()
