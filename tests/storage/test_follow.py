"""A single file uploaded while it is written (bigcppn.formats.follow): parts go up during the render, nothing is
visible before it is whole, a rewritten byte or a failure aborts the followed upload."""

from __future__ import annotations

import threading
import time

import pytest

from bigcppn import cli
from s3helpers import comparable, files, objects, pending_uploads

MIB = 1 << 20


def _until(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f} s"
        time.sleep(0.05)


@pytest.fixture
def growing(weed, bucket, tmp_path, monkeypatch):
    """A file being written in a hidden folder of a stage (as a writer's partial file), and its follower,
    started, with 1 MiB parts and 1 MiB held back."""
    from bigcppn.formats import follow
    from bigcppn.storage import StorageOptions, open_storage

    monkeypatch.setattr(follow, "HOLD", MIB)
    (tmp_path / ".x.bin.partial-1").mkdir()
    f = open(tmp_path / ".x.bin.partial-1" / "x.bin", "wb")
    storage = open_storage(f"s3://{bucket}/g", StorageOptions())
    follower = follow.Follower(tmp_path, "x.bin", storage, "x.bin", None, MIB)
    follower.start()
    yield f, follower
    f.close()
    follower.abort()


def _written(f, data: bytes) -> None:
    f.write(data)
    f.flush()


def test_a_growing_file_goes_up_in_parts_while_written_and_appears_only_whole(weed, bucket, tmp_path, growing):
    f, follower = growing
    body = bytes(range(256)) * (18 << 10)  # 4.5 MiB
    _written(f, body[: 3 * MIB])
    _until(lambda: follower.sent >= 2 * MIB, "2 MiB (3 written, 1 held back) sent")
    assert follower.sent == 2 * MIB and "x.bin" not in objects(weed, bucket, "g")
    _written(f, body[3 * MIB:])
    f.close()
    final = tmp_path / "x.bin"
    (tmp_path / ".x.bin.partial-1" / "x.bin").rename(final)
    assert follower.finish(final) is True
    assert objects(weed, bucket, "g") == {"x.bin": body}


def test_a_byte_rewritten_behind_the_parts_sent_aborts_the_followed_upload(weed, bucket, tmp_path, growing):
    f, follower = growing
    _written(f, b"a" * (3 * MIB))
    _until(lambda: follower.sent >= 2 * MIB, "2 MiB sent")
    f.seek(10)
    _written(f, b"patched")  # as a TIFF writer patches its header at the end
    f.close()
    final = tmp_path / "x.bin"
    (tmp_path / ".x.bin.partial-1" / "x.bin").rename(final)
    assert follower.finish(final) is False  # the caller then sends the whole file
    assert objects(weed, bucket, "g") == {} and pending_uploads(weed, bucket) == []


def test_a_failed_render_aborts_the_parts_already_sent(weed, bucket, growing):
    f, follower = growing
    _written(f, b"b" * (20 * MIB))  # more than one part of the bucket's writer (16 MiB): one went up
    _until(lambda: follower.sent >= 19 * MIB, "19 MiB sent")
    follower.abort()
    assert objects(weed, bucket, "g") == {} and pending_uploads(weed, bucket) == []


@pytest.mark.parametrize("name", ["poster.png", "poster.pdf", "poster.szi", "poster.jpg"])
def test_a_render_sends_parts_before_it_finishes_and_the_bytes_are_the_local_render(weed, bucket, tmp_path,
                                                                                      monkeypatch, name):
    """With 64 KiB parts and 64 KiB held back, these writers' files go up before the render commits (the
    commit waits, bounded, for a first part), the followed upload completes (their writers only append), and
    the object is the local render's file."""
    from bigcppn.formats import follow, target, upload

    monkeypatch.setattr(upload, "CHUNK", 64 << 10)
    monkeypatch.setattr(follow, "HOLD", 64 << 10)
    followers, results = [], []
    start, finish, commit = follow.Follower.start, follow.Follower.finish, target.OutputTarget.commit

    def started(self):
        followers.append(self)
        start(self)

    def finished(self, path):
        results.append(finish(self, path))
        return results[-1]

    def committed(self):
        if followers:  # the bucket's render: its file is whole, still under its partial name
            _until(lambda: followers[0].sent > 0, "a part sent before the commit")
        commit(self)

    monkeypatch.setattr(follow.Follower, "start", started)
    monkeypatch.setattr(follow.Follower, "finish", finished)
    monkeypatch.setattr(target.OutputTarget, "commit", committed)
    args = ["render", "--width", "900", "--height", "700", "--seed", "4", "--device", "cpu", "-q",
            "--set", "output.quality=100"]
    assert cli.main([*args, "-o", f"s3://{bucket}/r/{name}"]) == 0
    assert results == [True]
    followers.clear()
    assert cli.main([*args, "-o", str(tmp_path / name)]) == 0
    assert comparable(objects(weed, bucket, "r")) == comparable(files(tmp_path))
    assert (tmp_path / name).stat().st_size > 128 << 10  # (more than one part and the bytes held back)


def test_a_tiff_is_sent_once_complete(weed, bucket, monkeypatch):
    """A TIFF's header is written last: not followed (else every render would be sent twice)."""
    from bigcppn.formats import follow

    monkeypatch.setattr(follow.Follower, "start", lambda self: pytest.fail("a TIFF was followed"))
    assert cli.main(["render", "--width", "160", "--height", "120", "--device", "cpu", "-q",
                     "-o", f"s3://{bucket}/t/p.tif"]) == 0
    assert set(objects(weed, bucket, "t")) == {"p.tif"}


def test_abort_sends_no_more_parts_of_the_backlog(tmp_path, monkeypatch):
    """A render that fails (Ctrl-C) while the follower is behind, with parts written but not sent: abort()
    aborts after the part in flight, instead of first sending every part the file holds."""
    from bigcppn.formats import follow

    monkeypatch.setattr(follow, "HOLD", 0)
    gate, sending, log = threading.Event(), threading.Event(), []

    class Up:  # a slow link: the first part is in flight until the gate opens
        def write(self, data):
            log.append("part")
            sending.set()
            gate.wait(30)

        def complete(self):
            log.append("complete")

        def abort(self):
            log.append("abort")

    class Store:
        def upload(self, key, content_type=None):
            return Up()

    (tmp_path / ".x.bin.partial-1").mkdir()
    (tmp_path / ".x.bin.partial-1" / "x.bin").write_bytes(b"x" * (8 << 10))  # 8 parts of 1 KiB, written
    follower = follow.Follower(tmp_path, "x.bin", Store(), "x.bin", None, 1 << 10)
    follower.start()
    assert sending.wait(30)
    aborting = threading.Thread(target=follower.abort)
    aborting.start()
    _until(follower._ended.is_set, "abort() called")
    gate.set()
    aborting.join(30)
    assert not follower.is_alive() and log == ["part", "abort"]


def test_a_part_that_fails_aborts_the_upload_its_own_round_began(tmp_path):
    """The first round of parts creates the upload and a later part of that round fails (the link dropped):
    the upload is aborted (no parts left in the bucket) and finish() raises the failure."""
    from bigcppn.formats import follow

    log = []

    class Up:
        def write(self, data):
            log.append("part")
            if len(log) == 2:
                raise OSError("connection reset")

        def complete(self):
            log.append("complete")

        def abort(self):
            log.append("abort")

    class Store:
        def upload(self, key, content_type=None):
            return Up()

    (tmp_path / ".x.bin.partial-1").mkdir()
    partial = tmp_path / ".x.bin.partial-1" / "x.bin"
    partial.write_bytes(b"x" * (8 << 20))  # 8 MiB: 4 whole parts of 1 MiB beyond the 4 MiB held back
    follower = follow.Follower(tmp_path, "x.bin", Store(), "x.bin", None, 1 << 20)
    follower.start()
    _until(lambda: not follower.is_alive(), "the failed round ended the follower")
    final = tmp_path / "x.bin"
    partial.rename(final)
    with pytest.raises(OSError, match="connection reset"):
        follower.finish(final)
    assert log == ["part", "part", "abort"]
