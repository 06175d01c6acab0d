"""A pyramid on a simulated two-node Ray cluster (``ray.cluster_utils.Cluster``): one actor per node."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from bigcppn import cli

from conftest import tiles_and_tags

ROOT = Path(__file__).resolve().parents[2]


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "openseadragon" not in p.parts}


@pytest.fixture(scope="module")
def two_nodes():
    """A head and a second node of one CPU each, on 127.0.0.1; the driver connected to it."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        mp.setenv("PYTHONPATH", str(ROOT))
        temp = tempfile.mkdtemp(prefix="rn-", dir="/tmp")
        # The cluster writes its address for ray.init() to find: here, not in the machine's /tmp/ray.
        mp.setenv("RAY_TMPDIR", temp)
        Path(temp, "ray").mkdir()
        opts = {"num_cpus": 1, "object_store_memory": 128 * 2**20, "include_dashboard": False}
        cluster = Cluster(initialize_head=True, head_node_args={**opts, "temp_dir": temp})
        try:
            cluster.add_node(**opts)
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, log_to_driver=False)
            yield cluster
        finally:
            ray.shutdown()
            cluster.shutdown()
            shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.ray
@pytest.mark.slow
def test_two_nodes_one_actor_each_same_pyramid(tmp_path, two_nodes, monkeypatch):
    import ray

    from bigcppn.cluster.executor import RaySession, place_actors

    nodes = RaySession.nodes()
    assert len(nodes) == 2 and len({s.node for s in place_actors(nodes)}) == 2
    monkeypatch.setattr("bigcppn.cluster.pyramid.JOB_SAMPLES", 30_000)
    args = ["pyramid", "--width", "700", "--height", "450", "--seed", "9", "-q", "--layout", "zoomify"]
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    assert cli.main([*args, "-o", str(tmp_path / "a" / "p")]) == 0
    assert cli.main([*args, "-o", str(tmp_path / "b" / "p"), "--executor", "ray"]) == 0
    assert files_under(tmp_path / "a") == files_under(tmp_path / "b")
    assert ray.is_initialized()  # the caller's session is left running


@pytest.mark.ray
@pytest.mark.slow
def test_two_nodes_same_tiff(tmp_path, two_nodes):
    args = ["render", "--width", "800", "--height", "1200", "--seed", "9", "-q", "--set", "output.tiff_tile=64",
            "--set", "output.compression=jpeg"]
    assert cli.main([*args, "-o", str(tmp_path / "a.tif")]) == 0
    assert cli.main([*args, "-o", str(tmp_path / "b.tif"), "--executor", "ray"]) == 0
    assert tiles_and_tags(tmp_path / "a.tif") == tiles_and_tags(tmp_path / "b.tif")  # (blocks: tiles placed by block)
