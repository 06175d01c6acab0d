"""DeepZoom bands encoded apart (what Ray's actors do) make the DeepZoom writer's own pyramid, tile for tile.

Pure numpy: no Ray. The band plan's margins are what let a band's tiles carry
their neighbours' overlap; these tests cut random pictures into bands of every
shape and compare every file (and every .szi entry) with a whole-picture write.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bigcppn.formats.deepzoom.blocks import DzBlockGrid, encode_dz_block
from bigcppn.formats.deepzoom.writer import DeepZoomWriter, write_dz
from bigcppn.formats.tiff.blocks import RowJoiner


def picture(w: int, h: int, bands: int, seed: int) -> np.ndarray:
    """Smooth enough for JPEG to matter, with noise so every pixel does."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = (128 + 100 * np.sin(x / 7.0 + seed) * np.cos(y / 5.0)).astype(np.int16)
    noise = rng.integers(-20, 21, (h, w, bands))
    return np.clip(base[:, :, None] + noise, 0, 255).astype(np.uint8)


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def write_in_bands(path: Path, image: np.ndarray, plan: DzBlockGrid, quality: int, order=None) -> None:
    """As the driver does: blocks encoded apart (in any order), placed in order, their pixels joined into rows."""
    h, w, bands = image.shape
    writer = DeepZoomWriter(path, w, h, bands, tile=plan.tile, overlap=plan.overlap, quality=quality,
                            encoded_levels=plan.inside)
    encoded = {}
    for b in order or range(plan.count):
        x, y, rw, rh = plan.region(b)
        encoded[b] = encode_dz_block(image[y : y + rh, x : x + rw], plan, b, quality, workers=2)
    joiner = RowJoiner(plan)
    for b in range(plan.count):
        writer.write_encoded(encoded[b].tiles, joiner.add(b, encoded[b].rows), plan.where(b))
    writer.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(w=st.integers(1, 300), h=st.integers(1, 400), tile=st.integers(4, 64), overlap=st.integers(0, 5),
       k=st.integers(0, 4), bands=st.sampled_from([1, 3]), quality=st.sampled_from([60, 95]), split=st.booleans())
def test_bands_make_the_whole_pictures_pyramid(tmp_path_factory, w, h, tile, overlap, k, bands, quality, split):
    overlap = min(overlap, tile - 1)
    root = tmp_path_factory.mktemp("dz")
    image = picture(w, h, bands, w * h)
    (root / "a").mkdir()
    (root / "b").mkdir()
    write_dz(root / "a" / "x.dzi", image, tile=tile, overlap=overlap, quality=quality)
    plan = DzBlockGrid(w, h, tile, overlap, k, split)
    write_in_bands(root / "b" / "x.dzi", image, plan, quality, order=reversed(range(plan.count)))
    assert files_under(root / "a") == files_under(root / "b")


def test_a_szi_in_bands_has_the_same_entries(tmp_path):
    image = picture(333, 517, 3, 1)
    write_dz(tmp_path / "whole.szi", image, tile=30, overlap=2, quality=80)
    write_in_bands(tmp_path / "banded.szi", image, DzBlockGrid(333, 517, 30, 2, 2, split=True), 80)

    def entries(path: Path) -> dict[str, tuple[bytes, int]]:
        z = zipfile.ZipFile(path)
        return {i.filename.replace(path.stem, "X"): (z.read(i), i.external_attr) for i in z.infolist()
                if not i.filename.endswith("scan-properties.xml")}

    a, b = entries(tmp_path / "whole.szi"), entries(tmp_path / "banded.szi")
    assert len(a) > 100 and a == b


def test_margins_start_on_the_blocks_grid_and_reach_the_neighbours_overlap():
    plan = DzBlockGrid(1000, 5000, 254, 3, 3)
    assert plan.rows == 2032 and plan.count == 3 and plan.inside == 4
    assert [plan.region(b) for b in range(3)] == [(0, 0, 1000, 2032 + 24), (0, 2032 - 24, 1000, 2032 + 48),
                                                  (0, 4064 - 24, 1000, 936 + 24)]
    # a band owns 2**(k - m) tile rows of level m, and the last band the rest
    assert [len(plan.tile_rows(m, 0)) for m in range(4)] == [8, 4, 2, 1]
    assert [len(plan.tile_rows(m, 2)) for m in range(4)] == [4, 2, 1, 1]
    square = DzBlockGrid(5000, 3000, 254, 1, 2, split=True)
    assert square.across == 5 and square.count == 15
    assert square.region(6) == (1016 - 4, 1016 - 4, 1016 + 8, 1016 + 8)
    for b in range(square.count):
        x, y, _, _ = square.region(b)
        assert x % 4 == 0 and y % 4 == 0  # so every level down to k is the whole picture's, pixel for pixel
    assert [len(square.tile_cols(m, 4)) for m in range(3)] == [4, 2, 1]  # the last column of blocks


def test_the_writer_refuses_what_is_not_whole_tile_rows(tmp_path):
    plan = DzBlockGrid(100, 100, 16, 1, 1)
    writer = DeepZoomWriter(tmp_path / "x.dzi", 100, 100, 3, tile=16, overlap=1, encoded_levels=plan.inside)
    band = encode_dz_block(picture(100, 100, 3, 0)[: plan.region(0)[3]], plan, 0, 80)
    with pytest.raises(ValueError, match="whole tile rows"):
        writer.write_encoded([band.tiles[0][:-1], band.tiles[1]], band.rows)
    with pytest.raises(ValueError, match="write_encoded"):
        writer.write(np.zeros((1, 100, 3), np.uint8))
    writer.abort()
