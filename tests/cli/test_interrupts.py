"""Ctrl-C in the last moments of a render, after the file is complete: the file stays and the user is told."""

from __future__ import annotations

import pyvips
import pytest

from bigcppn import cli
from bigcppn.cli import render as cli_render
from bigcppn.network.strips import StripStream


def _late_interrupt(*_a, **_k):
    raise KeyboardInterrupt


@pytest.mark.parametrize("where", ["api cleanup", "cli summary"])
def test_ctrl_c_after_the_file_is_complete(tmp_path, monkeypatch, capsys, where):
    out = tmp_path / "a.png"
    if where == "api cleanup":  # while the render threads are joined, after the file was renamed into place
        monkeypatch.setattr(StripStream, "join", _late_interrupt)
    else:  # while the summary line is written
        monkeypatch.setattr(cli_render, "human_duration", _late_interrupt)
    status = cli.main(["render", "--width", "64", "--height", "48", "--device", "cpu", "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 130
    assert err[-1] == f"bigcppn: interrupted after {out} was complete; it is kept"
    assert pyvips.Image.new_from_file(str(out)).width == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_ctrl_c_before_the_file_is_complete_leaves_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(StripStream, "__iter__", _late_interrupt)
    status = cli.main(["render", "--width", "64", "--height", "48", "--device", "cpu", "-o", str(tmp_path / "a.png")])
    assert status == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "bigcppn: interrupted; no file was written"
    assert list(tmp_path.iterdir()) == []
