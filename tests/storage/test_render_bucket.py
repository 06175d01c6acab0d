"""``render -o s3://...``: one multipart upload, complete or absent; ``render --from s3://...``."""

from __future__ import annotations

import pytest

from bigcppn import cli
from s3helpers import comparable, files, objects, pending_uploads

SMALL = ["--width", "160", "--height", "120", "--seed", "4", "--device", "cpu", "-q"]


@pytest.mark.parametrize("name", ["poster.tif", "poster.png", "poster.jpg", "poster.pdf", "poster.szi",
                                  "poster.dzi"])
def test_a_file_in_a_bucket_has_the_bytes_of_the_local_render(weed, bucket, tmp_path, name):
    assert cli.main(["render", *SMALL, "-o", str(tmp_path / name)]) == 0
    assert cli.main(["render", *SMALL, "-o", f"s3://{bucket}/out/{name}"]) == 0
    assert comparable(objects(weed, bucket, "out")) == comparable(files(tmp_path))


def test_an_existing_object_is_refused_then_overwritten(weed, bucket, capsys):
    out = f"s3://{bucket}/o/p.png"
    assert cli.main(["render", *SMALL, "-o", out]) == 0
    first = objects(weed, bucket, "o")
    assert cli.main(["render", *SMALL, "-o", out]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["render", *SMALL[:4], "--seed", "5", "--device", "cpu", "-q", "-o", out, "--overwrite"]) == 0
    assert objects(weed, bucket, "o").keys() == first.keys() and objects(weed, bucket, "o") != first


def test_a_large_file_goes_up_in_parts_and_a_failed_upload_leaves_nothing(weed, bucket, tmp_path, monkeypatch):
    from bigcppn.formats import upload
    from bigcppn.storage import StorageOptions, open_storage

    storage = open_storage(f"s3://{bucket}/mp", StorageOptions())
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (40 << 12))  # 40 MiB: three parts
    upload._upload_file(storage, big, "big.bin")
    assert objects(weed, bucket, "mp") == {"big.bin": big.read_bytes()}
    assert storage.stats.puts == 3 + 2  # create, 3 parts, complete: as plan counts them

    class Failing:
        def __init__(self, *a):
            self.n = 0

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def read(self, n):
            self.n += 1
            if self.n > 2:
                raise OSError("disk gone")
            return b"x" * n

    monkeypatch.setattr(upload, "open", lambda *a: Failing(), raising=False)
    with pytest.raises(OSError):
        upload._upload_file(storage, big, "other.bin")
    assert set(objects(weed, bucket, "mp")) == {"big.bin"}
    assert pending_uploads(weed, bucket) == []  # the parts sent were aborted


def test_render_from_an_object_in_a_bucket(weed, bucket, tmp_path):
    import tifffile

    assert cli.main(["render", *SMALL, "-o", f"s3://{bucket}/f/a.tif"]) == 0
    assert cli.main(["render", "--from", f"s3://{bucket}/f/a.tif", "--width", "160", "--height", "120", "-q",
                     "--device", "cpu", "-o", str(tmp_path / "b.tif")]) == 0
    assert cli.main(["render", *SMALL, "-o", str(tmp_path / "c.tif")]) == 0
    assert tifffile.imread(tmp_path / "b.tif").tobytes() == tifffile.imread(tmp_path / "c.tif").tobytes()


def test_render_to_a_missing_bucket_exits_2(bucket, capsys):
    assert cli.main(["render", *SMALL, "-o", "s3://no-such-bucket/x/p.png"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_plan_counts_the_parts_of_the_upload():
    from bigcppn import api
    from bigcppn.config import load_config
    from bigcppn.formats.upload import CHUNK

    cfg = load_config(None, [], {"canvas.width": 6000, "canvas.height": 4000, "render.device": "cpu",
                                 "output.compression": "none"})
    info = api.plan(cfg, "s3://bucket/prints/p.tif", measure=False)
    parts = -(-info.estimated_bytes // CHUNK)
    assert parts > 1 and info.requests == {"puts": parts + 2, "parts": parts, "objects": 1, "lists": 1, "gets": 1,
                                           "deletes": 0, "bytes_up": info.estimated_bytes}
    assert info.path == "s3://bucket/prints/p.tif" and "multipart" in str(info)
    assert api.plan(cfg, "s3://bucket/prints/small.png", measure=False).requests["puts"] >= 1


@pytest.mark.parametrize("name", ["p.png", "p.szi", "p.dzi"])
def test_plan_counts_the_requests_a_render_to_a_bucket_makes(bucket, name, capsys):
    """plan -o s3://.../NAME: the PUTs, LISTs, GETs and DELETEs the render then makes (a .dzi: one PUT a tile)."""
    from bigcppn import api
    from bigcppn.config import load_config

    cfg = load_config(None, [], {"canvas.width": 700, "canvas.height": 500, "render.device": "cpu", "seed": 3})
    out = f"s3://{bucket}/plan/{name}"
    info = api.plan(cfg, out, measure=False)
    r = api.render_file(cfg, out)
    for k in ("puts", "lists", "gets", "deletes"):
        assert info.requests[k] == r.requests[k], (k, info.requests, r.requests)
    assert r.requests["bytes_up"] > 0
    if name.endswith(".dzi"):
        assert info.requests["objects"] == r.requests["puts"] > 10
    assert cli.main(["plan", "--width", "700", "--height", "500", "--device", "cpu", "-o", out]) == 0
    assert f"{info.requests['puts']} PUTs" in capsys.readouterr().out


def test_a_series_of_seeds_to_a_bucket_has_the_bytes_of_the_local_files(weed, bucket, tmp_path, capsys):
    args = ["render", "--seeds", "1,2", "--width", "160", "--height", "120", "--device", "cpu", "-q"]
    assert cli.main([*args, "-o", f"s3://{bucket}/s/p-{{seed}}.png"]) == 0
    assert cli.main([*args, "-o", str(tmp_path / "p-{seed}.png")]) == 0
    assert objects(weed, bucket, "s") == files(tmp_path) and len(files(tmp_path)) == 2


def test_a_series_is_refused_before_rendering_when_one_object_is_there(weed, bucket, capsys):
    import obstore

    obstore.put(weed.store(bucket), "e/p-3.png", b"old")
    args = ["render", "--seeds", "2,3", "--width", "160", "--height", "120", "--device", "cpu", "-q"]
    assert cli.main([*args, "-o", f"s3://{bucket}/e/p-{{seed}}.png"]) == 2
    assert "p-3.png' already exists" in capsys.readouterr().err
    assert objects(weed, bucket, "e") == {"p-3.png": b"old"}  # seed 2 was not rendered either


def test_a_contact_sheet_to_a_bucket_has_the_bytes_of_the_local_sheet(weed, bucket, tmp_path):
    args = ["sheet", "--seeds", "0-3", "--cell", "64", "--device", "cpu", "-q"]
    assert cli.main([*args, "-o", f"s3://{bucket}/c/sheet.png"]) == 0
    assert cli.main([*args, "-o", str(tmp_path / "sheet.png")]) == 0
    assert objects(weed, bucket, "c") == files(tmp_path)


def test_seed_in_a_bucket_url_is_filled_in(weed, bucket):
    assert cli.main(["render", *SMALL[:4], "--seed", "7", "--device", "cpu", "-q",
                     "-o", f"s3://{bucket}/sd/p-{{seed}}.png"]) == 0
    assert set(objects(weed, bucket, "sd")) == {"p-7.png"}


def test_ctrl_c_once_the_staged_file_is_whole_claims_no_file_kept(weed, bucket, monkeypatch, capsys):
    """Ctrl-C in the last moments of the render, after the staged file was committed but before it went up:
    nothing is in the bucket, so the message must not say a file (the staged one, about to be removed) is kept."""
    import bigcppn.engines as engines

    real = engines._save_stream

    def late(job, stream, target, c, progress, t0):
        def poll(done, total):
            if target.path.exists():  # committed under its name in the staging folder
                raise KeyboardInterrupt

        return real(job, stream, target, c, poll, t0)

    monkeypatch.setattr(engines, "_save_stream", late)
    assert cli.main(["render", *SMALL, "-o", f"s3://{bucket}/ci/p.png"]) == 130
    err = capsys.readouterr().err
    assert "kept" not in err and "no file was written" in err
    assert objects(weed, bucket, "ci") == {} and pending_uploads(weed, bucket) == []
