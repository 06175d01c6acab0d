"""The README's snippets run as written, in order, in one folder, after the install (issue 21, section 7).

Every ```sh and ```python block is extracted. The slow test runs them all in order in one temporary folder
that holds the checkout's ``configs/`` (as a checkout after ``pip install -e .`` does), except what cannot run
here, each for its reason (:data:`NOT_HERE`). The fast tests run the Python snippet as written and parse every
``bigcppn`` command line with the real parser (a flag that no longer exists fails).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import pyvips

from bigcppn.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
# What runs elsewhere: the install itself (done before), this test suite, web servers that run until
# stopped, and commands for a Ray cluster with a /shared filesystem.
NOT_HERE = (re.compile(r"^pip install [^&]*(&&\s*)?"), re.compile(r"python3 -m pytest"),
            re.compile(r"http\.server|^bigcppn explore"), re.compile(r"--executor ray|^ray start"))


def snippets() -> list[tuple[str, str]]:
    """The README's sh and python blocks; a shell line continued with a backslash joined into one."""
    text = (ROOT / "README.md").read_text()
    return [(lang, body.replace("\\\n", " ") if lang == "sh" else body)
            for lang, body in FENCE.findall(text) if lang in ("sh", "python")]


def runnable(line: str) -> str:
    """The line as it runs here ('' for one that cannot): the install prefix of an install line dropped."""
    line = line.split("  #")[0].strip()
    if not line or any(p.search(line) for p in NOT_HERE[1:]):
        return ""
    return NOT_HERE[0].sub("", line).strip()


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def folder(tmp_path: Path) -> Path:
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    return tmp_path


def test_the_python_snippet_runs_as_written(tmp_path):
    """It imported matplotlib, wrote poster.tif over the first command's file (then 'add --overwrite' to an API
    user), and its 'poster' was 512² (normal.toml's canvas)."""
    [code] = [body for lang, body in snippets() if lang == "python"]
    assert "matplotlib" not in code
    cwd = folder(tmp_path)
    for _ in range(2):  # twice in the same folder: the second replaces the first's file
        proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env(), capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    [written] = [p for p in cwd.iterdir() if p.suffix == ".tif"]
    img = pyvips.Image.new_from_file(str(written))
    assert (img.width, img.height) == (2048, 2048)  # what the comment says


def test_every_command_in_the_readme_parses():
    parser = build_parser()
    lines = [runnable(line) for lang, body in snippets() if lang == "sh" for line in body.splitlines()]
    commands = [shlex.split(line) for line in lines if line.startswith("bigcppn ")]
    assert len(commands) >= 8
    for argv in commands:
        parser.parse_args(argv[1:])  # SystemExit(2) on a flag that does not exist


@pytest.mark.slow
def test_every_snippet_runs_in_order_in_one_folder(tmp_path):
    cwd = folder(tmp_path)
    script = ["set -e"]
    for n, (lang, body) in enumerate(snippets()):
        if lang == "python":
            (cwd / f"snippet{n}.py").write_text(body)
            script.append(f"{shlex.quote(sys.executable)} snippet{n}.py")
        else:
            script += [line for line in map(runnable, body.splitlines()) if line]
    bigcppn = f"{shlex.quote(sys.executable)} -m bigcppn"
    text = "\n".join(re.sub(r"^bigcppn ", bigcppn + " ", line) for line in script)
    proc = subprocess.run(["bash", "-c", text], cwd=cwd, env=env(), capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("poster.tif", "seed11.tif", "sheet.png", "a2.tif", "a2.pdf", "preview.png", "poster-7.png",
                 "site/poster.dzi", "site/poster.html"):
        assert (cwd / name).exists(), name
