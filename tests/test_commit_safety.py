"""A commit stopped at each of its renames leaves the old output or the new one whole, and a rerun the new one.

Every commit path: a single file, a ``.dzi`` render (tiles folder, sidecar,
descriptor), a pyramid replacement (tiles, manifest, page, descriptor) and a
folder pyramid's replacement where the one-step exchange is unavailable. The
commit's renames all go through :func:`bigcppn.core.commit.rename`; the hook
makes the n-th fail, either once (an exception or Ctrl-C: the process goes on
with its error path) or for good (the process dies there: nothing it does
after moves a file). A few real SIGKILLs check the second model.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bigcppn import cli
from bigcppn.core import commit

RENDER = ["render", "--width", 40, "--height", 30, "--tile", 16, "-q"]
PYRAMID = ["pyramid", "--width", 300, "--height", 200, "--tile", 64, "-q"]
CASES = {
    "file": (RENDER, "a.tif"),
    "dzi": (RENDER, "a.dzi"),
    "pyramid": (PYRAMID, "p.dzi"),
    "folder": (PYRAMID + ["--layout", "zoomify"], "z"),
}


class Died(BaseException):
    """The process stopped at a rename (not an Exception: nothing may catch it by accident)."""


def run(*args) -> int:
    return cli.main([str(a) for a in args])


def snapshot(folder):
    """The visible output: every file not hidden, by path (the viewer's page and script left out)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
            and "openseadragon" not in p.parts and p.suffix != ".html"}


def complete(files, name) -> bool:
    """Whether ``files`` has the output's completion mark (a file, a descriptor, a folder pyramid's XML)."""
    return name in files or f"{name}/ImageProperties.xml" in files


def reference(tmp_path, case, seed):
    args, name = CASES[case]
    d = tmp_path / f"ref{seed}"
    d.mkdir()
    assert run(*args, "--seed", seed, "-o", d / name) == 0
    return snapshot(d)


def stop_at(monkeypatch, n, for_good, what):
    calls = []
    real = commit.rename

    def rename(src, dst):
        calls.append((src, dst))
        if len(calls) == n or (for_good and len(calls) > n):
            raise what
        real(src, dst)

    monkeypatch.setattr(commit, "rename", rename)
    return calls


@pytest.mark.parametrize("for_good", [False, True], ids=["fails-once", "dies"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_commit_stopped_at_every_rename_loses_and_mixes_nothing(tmp_path, monkeypatch, case, for_good):
    args, name = CASES[case]
    if case == "folder":
        monkeypatch.setattr("bigcppn.pyramid.store.exchange", lambda a, b: False)
    old, new = reference(tmp_path, case, 1), reference(tmp_path, case, 2)
    assert old != new
    real = commit.rename
    n = 0
    while True:
        n += 1
        site = tmp_path / f"site{n}"
        site.mkdir()
        assert run(*args, "--seed", 1, "-o", site / name) == 0
        calls = stop_at(monkeypatch, n, for_good, Died() if for_good else KeyboardInterrupt())
        try:
            code = run(*args, "--seed", 2, "--overwrite", "-o", site / name)
        except Died:
            code = "died"
        monkeypatch.setattr(commit, "rename", real)
        if len(calls) < n:
            assert code == 0
            break  # the commit has fewer renames than n: every point was tried
        now = snapshot(site)
        if not for_good:  # the error path finishes a commit past its point of no return
            assert now in (old, new), f"rename {n}: {sorted(now)}"
        else:  # killed there: whole, or incomplete without its completion mark, never a mix
            assert now in (old, new) or not complete(now, name), f"rename {n}: {sorted(now)}"
        assert run(*args, "--seed", 2, "--overwrite", "-o", site / name) == 0, f"rename {n}"
        assert snapshot(site) == new, f"rename {n}: the rerun gives the new output"
        assert not [p for p in site.iterdir() if p.name.startswith(".")], "nothing hidden is left"
    renames = {"file": 1, "folder": 3, "dzi": 7, "pyramid": 9}[case]  # (the journal's is the first)
    assert n - 1 == renames, "every rename of the commit was a stop point"


def test_the_next_run_finishes_a_journaled_commit_before_anything_else(tmp_path, monkeypatch):
    """Killed after the point of no return, then a pyramid of the old render: it finds the new one, complete."""
    args, name = CASES["dzi"]
    new = reference(tmp_path, "dzi", 2)
    site = tmp_path / "site"
    site.mkdir()
    assert run(*args, "--seed", 1, "-o", site / name) == 0
    stop_at(monkeypatch, 3, True, Died())
    with pytest.raises(Died):
        run(*args, "--seed", 2, "--overwrite", "-o", site / name)
    monkeypatch.undo()
    assert (site / ".a.bigcppn.commit").is_file() and not (site / name).exists()
    # the same output's other writer takes the owner lock and rolls the commit forward, then refuses
    # to replace a render's output without --overwrite
    assert run(*PYRAMID, "--seed", 1, "-o", site / name) == 2
    assert not (site / ".a.bigcppn.commit").exists()
    assert snapshot(site) == new


KILLER = """
import os, signal, sys
from bigcppn.core import commit
from bigcppn import cli
n, real, calls = int(sys.argv[1]), commit.rename, []
def rename(src, dst):
    calls.append(1)
    if len(calls) == n:
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
commit.rename = rename
sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.mark.parametrize("case,n", [("dzi", 4), ("pyramid", 5)])
def test_a_sigkill_inside_a_commit_then_a_rerun_gives_the_new_output(tmp_path, case, n):
    args, name = CASES[case]
    new = reference(tmp_path, case, 2)
    site = tmp_path / "site"
    site.mkdir()
    assert run(*args, "--seed", 1, "-o", site / name) == 0
    argv = [str(a) for a in (*args, "--seed", 2, "--overwrite", "-o", site / name)]
    proc = subprocess.run([sys.executable, "-c", KILLER, str(n), *argv], capture_output=True, timeout=300)
    assert proc.returncode == -9
    assert not complete(snapshot(site), name) or snapshot(site) == new
    assert run(*args, "--seed", 2, "--overwrite", "-o", site / name) == 0
    assert snapshot(site) == new


def test_render_and_pyramid_of_one_dzi_exclude_each_other(tmp_path, monkeypatch, capsys):
    """The owner lock covers every writer of NAME.dzi: a render --overwrite while a pyramid runs is refused,
    and a pyramid while a render of that name runs (both with one line, exit 2, the output untouched)."""
    from bigcppn.network.strips import Renderer
    from bigcppn.pyramid.store import pyramid_output

    out = tmp_path / "a.dzi"
    assert run(*RENDER, "--seed", 1, "-o", out) == 0
    before = snapshot(tmp_path)
    with pyramid_output(out, "dz").lock():  # a pyramid of a.dzi is running
        assert run(*RENDER, "--seed", 2, "--overwrite", "-o", out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "another bigcppn run is writing" in err[0]
    assert snapshot(tmp_path) == before

    real, codes = Renderer.render_strip, []

    def render_strip(self, strip, **kw):
        if not codes:  # a pyramid of the same name while this render runs
            codes.append(run(*PYRAMID, "--seed", 3, "--overwrite", "-o", out))
        return real(self, strip, **kw)

    monkeypatch.setattr(Renderer, "render_strip", render_strip)
    assert run(*RENDER, "--seed", 2, "--overwrite", "-o", out) == 0
    assert codes and set(codes) == {2}
    assert snapshot(tmp_path) == reference(tmp_path, "dzi", 2)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # (ZipFile.__del__ closes again)
@pytest.mark.parametrize("name", ["a.szi", "a.pdf"])
def test_a_full_disk_fails_in_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys, name):
    """Every write fails with ENOSPC, the writer's own cleanup included (closing a zip writes its directory,
    closing a PDF flushes its buffer)."""
    import errno
    import zipfile

    from bigcppn.formats.pdf import writer as pdfwriter

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", full)
    monkeypatch.setattr(zipfile.ZipFile, "close", full)
    monkeypatch.setattr(pdfwriter.PdfWriter, "close", full)
    monkeypatch.setattr(pdfwriter.PdfWriter, "abort", full)
    # (large enough for tiles to be written while rows still come: the failure reaches the writer's abort)
    assert run("render", "--width", 600, "-q", "--seed", 1, "-o", tmp_path / name) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no space left on device" in err.lower(), err
    assert not list(tmp_path.iterdir()), "no .partial-PID folder is left"
