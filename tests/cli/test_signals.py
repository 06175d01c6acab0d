"""Signals to every long-running subcommand: Ctrl-C exits 130, SIGTERM 143, nothing half-written.

(``render`` is in test_cli.py, ``pyramid`` Ctrl-C and resume in test_pyramid.py, ``serve`` in
test_serve_process.py.)
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _start(args: list[str], ready) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "bigcppn", *args], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not ready():
        time.sleep(0.01)
    assert proc.poll() is None, "the command finished before it could be signalled"
    return proc


def test_sigterm_to_a_pyramid_exits_143_and_keeps_the_tiles(tmp_path):
    tiles = tmp_path / "p_files"
    proc = _start(["pyramid", "--width", "2000", "--height", "1400", "--device", "cpu", "-q",
                   "-o", str(tmp_path / "p.dzi")],
                  lambda: tiles.is_dir() and sum(1 for _ in tiles.rglob("*.jpeg")) >= 3)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith("bigcppn: terminated;")
    assert "run the same command again to resume" in err
    assert not (tmp_path / "p.dzi").exists() and not list(tmp_path.rglob("*.partial-*"))
    assert not list(tmp_path.glob(".*lock"))


@pytest.mark.parametrize("signame,code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_to_a_contact_sheet_leaves_nothing(tmp_path, signame, code):
    started = time.monotonic()
    # (about 40 MPix of network, tens of seconds here; signalled once Python has surely reached the command)
    proc = _start(["sheet", "--seeds", "0-255", "--cell", "400", "--device", "cpu", "-q", "-o", str(tmp_path / "s.png")],
                  lambda: time.monotonic() - started > 5.0)
    proc.send_signal(getattr(signal, signame))
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert len(err.strip().splitlines()) == 1 and "no file was written" in err
    assert list(Path(tmp_path).iterdir()) == []


EARLY = """
import os, signal, sys
import argparse
real = argparse.ArgumentParser.parse_known_args


def parse_known_args(self, *a, **k):  # SIGTERM while the arguments are parsed
    os.kill(os.getpid(), signal.SIGTERM)
    return real(self, *a, **k)


argparse.ArgumentParser.parse_known_args = parse_known_args
sys.argv = ["bigcppn", "plan", "--width", "64"]
from bigcppn.cli import entry
entry()
"""


def test_sigterm_while_the_arguments_are_parsed_exits_143_in_one_line():
    proc = subprocess.run([sys.executable, "-c", EARLY], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 143, proc.stderr
    assert proc.stderr.strip().splitlines() == ["bigcppn: terminated; nothing was done"]


IN_CALLBACK = """
import os, signal, sys, threading
from bigcppn import cli

got = []
cli.signal.signal(signal.SIGTERM, cli._on_signal)


def logging_inside():  # what pyvips' log handler calls (the logging module): the signal lands here
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(2000):  # the handler runs here, inside the callback
        pass
    got.append("callback returned")


# a function of pyvips' name and module, as libvips calls it through cffi
ns = {"__name__": "pyvips", "logging_inside": logging_inside}
exec(compile("def _log_handler_callback():\\n    logging_inside()\\n", "pyvips/__init__.py", "exec"), ns)
try:
    ns["_log_handler_callback"]()
    threading.Event().wait(30)  # the signal comes again, out of the callback
    got.append("not raised")
except cli.Terminated:
    got.append("raised after")
print(got)
"""


def test_a_signal_inside_a_libvips_callback_is_raised_once_out_of_it():
    """Raised inside a callback from libvips, it would be printed as "Exception ignored" and lost (the sheet
    then wrote its file anyway, 1 run in 10): it is sent again and raised where Python code can catch it."""
    proc = subprocess.run([sys.executable, "-c", IN_CALLBACK], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "['callback returned', 'raised after']", proc.stdout + proc.stderr
    assert "Exception ignored" not in proc.stderr


@pytest.mark.parametrize("command,call", [("render", "render_file"), ("pyramid", "render_pyramid")])
def test_a_sigterm_a_library_reports_as_an_interrupt_still_exits_143(tmp_path, monkeypatch, capsys, command, call):
    """Ray's blocking calls (in the main thread, where Python runs signal handlers) turn any KeyboardInterrupt
    raised in them, Terminated included, into a plain KeyboardInterrupt: under load a SIGTERM to a Ray driver
    said "interrupted" and exited 130. The CLI remembers the signals it took, so it is still terminated."""
    import os

    from bigcppn import api, cli

    def as_ray_does(*_args, **_kwargs):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises Terminated here
        except KeyboardInterrupt:
            raise KeyboardInterrupt() from None  # what Ray's check_signals makes of it
        raise AssertionError("no signal came")

    monkeypatch.setattr(api, call, as_ray_does)
    out = tmp_path / ("a.png" if command == "render" else "p.dzi")
    assert cli.main([command, "--width", "64", "--height", "48", "-q", "-o", str(out)]) == 143
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("bigcppn: terminated;")
    monkeypatch.undo()
    assert cli.main(["render", "--width", "64", "-q", "-o", str(tmp_path / "b.png")]) == 0  # forgotten after


def test_a_pyramid_stopped_before_its_first_tile_says_none_was_written(tmp_path, monkeypatch, capsys):
    """It said "0 new tiles are kept in .../p_files/", a folder that did not exist."""
    from bigcppn import api, cli

    def stopped(*_args, **_kwargs):
        raise KeyboardInterrupt()

    monkeypatch.setattr(api, "render_pyramid", stopped)
    assert cli.main(["pyramid", "--width", "64", "-q", "-o", str(tmp_path / "p.dzi")]) == 130
    assert capsys.readouterr().err.strip().splitlines() == ["bigcppn: interrupted; no tile was written"]
    assert list(tmp_path.iterdir()) == []
