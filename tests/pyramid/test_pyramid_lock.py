"""Two runs into one pyramid folder at once: one owns it, the other is refused, tiles never mix."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

import bigcppn


def _config(seed: int):
    return bigcppn.load_config(None, [f"seed={seed}", "canvas.width=96", "canvas.height=80", "render.device=cpu",
                                      "render.workers=1"])


def _files(root: Path, name: str) -> dict[str, bytes]:
    tiles = root / f"{name}_files"
    out = {str(p.relative_to(root)): p.read_bytes() for p in tiles.rglob("*") if p.is_file()}
    out["dzi"] = (root / f"{name}.dzi").read_bytes()
    return out


def _race(tmp: Path, i: int, refs: dict[int, dict[str, bytes]]) -> None:
    out = tmp / f"race{i}" / "p.dzi"
    out.parent.mkdir()
    ended: dict[int, str] = {}
    go = threading.Barrier(2)

    def run(seed: int) -> None:
        go.wait()
        try:
            bigcppn.render_pyramid(_config(seed), out)
            ended[seed] = "ok"
        except bigcppn.UserError as exc:
            ended[seed] = f"refused: {exc}"

    threads = [threading.Thread(target=run, args=(s,)) for s in (7, 8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    winners = [s for s, how in ended.items() if how == "ok"]
    assert len(ended) == 2 and len(winners) == 1, ended
    loser = ({7, 8} - set(winners)).pop()
    assert "another" in ended[loser]
    assert _files(out.parent, "p") == refs[winners[0]], f"race {i}: the pyramid is not all seed {winners[0]}'s"


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    d = tmp_path_factory.mktemp("refs")
    out = {}
    for seed in (7, 8):
        (d / f"s{seed}").mkdir()
        bigcppn.render_pyramid(_config(seed), d / f"s{seed}" / "p.dzi")
        out[seed] = _files(d / f"s{seed}", "p")
    return out


def test_concurrent_runs_with_other_configs_never_mix(tmp_path, refs):
    for i in range(20):
        _race(tmp_path, i, refs)


@pytest.mark.slow
def test_two_hundred_concurrent_runs_never_mix(tmp_path, refs):
    for i in range(200):
        _race(tmp_path, i, refs)


def test_two_processes_one_folder(tmp_path, refs):
    """The issue's reproduction: two CLI processes with seeds 7 and 8 into one p.dzi."""
    args = [sys.executable, "-m", "bigcppn", "pyramid", "--width", "96", "--height", "80", "--device", "cpu",
            "-q", "-o", str(tmp_path / "p.dzi"), "--set", "render.workers=1"]
    procs = [subprocess.Popen([*args, "--seed", str(s)], stderr=subprocess.PIPE, text=True) for s in (7, 8)]
    codes = [p.wait(120) for p in procs]
    errs = [p.stderr.read() for p in procs]
    assert sorted(codes) == [0, 2], errs
    winner = (7, 8)[codes.index(0)]
    assert _files(tmp_path, "p") == refs[winner]
    assert "another" in errs[codes.index(2)] and len(errs[codes.index(2)].strip().splitlines()) == 1


@pytest.mark.parametrize("layout,name", [("zoomify", "z"), ("dz", "p.dzi")])
def test_a_swapped_in_replacement_is_locked_from_its_first_moment(tmp_path, monkeypatch, layout, name):
    """A folder layout's replacement takes the old folder's place, lock file and all: the old lock moved
    aside with it, so a run arriving then found an unlocked folder (and its lock file was then removed
    under it). Now the replacement's lock is taken before the swap."""
    from bigcppn.errors import UserError
    from bigcppn.pyramid.store import PyramidOutput

    out = tmp_path / name
    bigcppn.render_pyramid(_config(1), out, layout=layout, tile=64)
    real, seen = PyramidOutput.swap_in, []

    def swap_then_try(self, new, lock=None):
        real(self, new, lock)
        with pytest.raises(UserError, match="another bigcppn run"):
            with PyramidOutput(self.root, self.name, self.layout).lock():
                pass
        seen.append(1)

    monkeypatch.setattr(PyramidOutput, "swap_in", swap_then_try)
    result = bigcppn.render_pyramid(_config(2), out, layout=layout, tile=64, overwrite=True)
    assert seen and result.replaced
    monkeypatch.undo()
    assert not list(tmp_path.rglob("*.lock")), "the lock files are gone at the end"
    with PyramidOutput(out if layout != "dz" else tmp_path, out.stem if layout == "dz" else name, layout).lock():
        pass  # and the next run may take the lock


def test_exchange_swaps_two_folders_in_one_step(tmp_path):
    from bigcppn.core.atomic import exchange

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "from-a").write_text("a")
    (b / "from-b").write_text("b")
    if not exchange(a, b):
        pytest.skip("no renameat2(RENAME_EXCHANGE) on this system or filesystem (the two-rename fallback is used)")
    assert [p.name for p in a.iterdir()] == ["from-b"] and [p.name for p in b.iterdir()] == ["from-a"]
    with pytest.raises(FileNotFoundError):
        exchange(a, tmp_path / "missing")
