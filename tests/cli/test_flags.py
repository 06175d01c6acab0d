"""One set of flags: every flag a subcommand's --help lists is accepted and changes what it does."""

import argparse
import json
from pathlib import Path

import pytest

from bigcppn import api, cli
from bigcppn.api import PyramidResult, RenderResult
from bigcppn.cli.common import run_reporting
from bigcppn.config import config_to_dict
from bigcppn.errors import UserError

# For each flag: the arguments that give it (and a baseline without it, when it needs company).
# A flag listed in a --help but missing here fails the test: add it, with a value that should change something.
VALUES = {
    "--output": (["-o", "{tmp}/x.png"], []),
    "--from": (["--from", "{tmp}/source.png"], []),
    "--seed": (["--seed", "5"], []),
    "--device": (["--device", "cpu"], []),
    "--set": (["--set", "network.hidden=[4]"], []),
    "--verbose": (["-v"], []),
    "--quiet": (["-q"], []),
    "--width": (["--width", "64"], []),
    "--height": (["--height", "48"], []),
    "--size": (["--size", "A6"], []),
    "--dpi": (["--dpi", "150"], []),
    "--landscape": (["--size", "A6", "--landscape"], ["--size", "A6"]),
    "--bleed": (["--bleed", "3mm"], []),
    "--depth": (["--depth", "16"], []),
    "--tile": (["--tile", "64"], []),
    "--compression": (["--compression", "lzw"], []),
    "--quality": (["--quality", "50"], []),
    "--seeds": (["--seeds", "1-2"], []),
    "--frame": (["--frame", "3"], []),
    "--overwrite": (["--overwrite"], []),
    "--json": (["--json"], []),
    "--layout": (["--layout", "iiif3"], []),
    "--overlap": (["--overlap", "2"], []),
    "--format": (["--format", "png"], []),
    "--supersample": (["--supersample", "3"], []),
    "--base-url": (["--base-url", "https://example.org/p"], []),
    "--dry-run": (["--dry-run"], []),
    "--cell": (["--cell", "64"], []),
    "--columns": (["--columns", "3"], []),
    "--aspect": (["--aspect", "3:2"], []),
    "--host": (["--host", "0.0.0.0"], []),
    "--port": (["--port", "0"], []),
    "--extra-levels": (["--extra-levels", "2"], []),
    "--cache-mb": (["--cache-mb", "64"], []),
    "--cors": (["--cors"], []),
    "--max-size": (["--layout", "iiif3", "--max-size", "1024"], ["--layout", "iiif3"]),
    "--flat": (["--flat"], []),
    "--cmyk": (["--cmyk"], []),
    "--intent": (["--cmyk", "--intent", "perceptual"], ["--cmyk"]),
    "--crop-marks": (["--crop-marks"], []),
    "--pdfx": (["--pdfx"], []),
    "--force": (["--size", "A6", "--dpi", "3000", "--force"], ["--size", "A6", "--dpi", "3000"]),
    "--executor": (["--executor", "ray"], []),
    "--break-lock": (["--break-lock"], []),
    "--ray-address": (["--executor", "ray", "--ray-address", "auto"], ["--executor", "ray"]),
    "--workers": (["--workers", "2"], []),
    "--endpoint-url": (["--endpoint-url", "http://127.0.0.1:9"], []),
    "--cache-control": (["--cache-control", "max-age=60"], []),
    # plan's clip options: each makes it plan a clip (here without -o, so it asks for the clip's name)
    "--seconds": (["--seconds", "2"], []),
    "--fps": (["--fps", "12"], []),
    "--z-loop": (["--z-loop"], []),
    "--z-walk": (["--z-walk", "1:2"], []),
    "--zoom": (["--zoom", "1:2"], []),
    "--center": (["--center", "0.1,0"], []),
    "--pan": (["--pan", "0,0:1,0"], []),
    "--tween": (["--tween", "network.weight_scale=1:2"], []),
    "--ease": (["--ease", "smooth"], []),
    "--preset": (["--preset", "fast"], []),
    "--palette": (["--palette", "frame"], []),
}
SHEET = {"--landscape": (["--aspect", "A4", "--landscape"], ["--aspect", "A4"]),
         "--quality": (["-o", "{tmp}/x.jpg", "--quality", "50"], ["-o", "{tmp}/x.jpg"])}


def listed_flags(parser: argparse.ArgumentParser) -> list[str]:
    """The long flags its --help shows (suppressed ones are not listed)."""
    return [a.option_strings[-1] for a in parser._actions
            if a.option_strings and a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)]


class Recorder:
    """Stands in for the API (and serve's server): records each call's arguments; fails on demand."""

    def __init__(self, monkeypatch):
        self.calls: list = []
        self.fail = False
        for name in ("render_file", "render_series", "plan", "render_pyramid", "plan_pyramid", "render_sheet"):
            monkeypatch.setattr(api, name, self._stub(name))
        import bigcppn.server.app

        record = self._stub("serve")

        def make_server(*args, **kwargs):  # records what the server would be built with; never binds
            record(*args, **kwargs)
            raise UserError("stubbed server")

        monkeypatch.setattr(bigcppn.server.app, "make_server", make_server)

    def _stub(self, name):
        def call(*args, **kwargs):
            plain = [config_to_dict(a) if hasattr(a, "network") else
                     sorted((k, str(v)) for k, v in vars(a).items() if k != "run") if isinstance(a, argparse.Namespace)
                     else str(a) if isinstance(a, Path) else a for a in args]
            self.calls.append((name, json.dumps(plain, default=str),
                               sorted((k, repr(v)) for k, v in kwargs.items() if not callable(v))))
            if self.fail:
                raise UserError("stubbed failure")
            result = RenderResult(Path("x.png"), 8, 8, 1, 1.0)
            if name == "render_series":
                kwargs["on_done"](result)
                return [result]
            if name == "render_pyramid":
                return PyramidResult(Path("p.dzi"), 8, 8, 4, 5, 5, 0, 64, Path("p.html"), 1.0)
            if name == "plan":
                return type("Info", (), {"as_dict": lambda self: {"plan": 1}, "__str__": lambda self: "plan",
                                         "estimated_seconds": None})()
            return "pyramid plan" if name == "plan_pyramid" else result
        return call


def outcome(rec: Recorder, capsys, argv: list[str]) -> tuple:
    """What the command does with ``argv``: the API calls, stdout and stderr, when the API works and fails."""
    seen = []
    for fail in (False, True):
        rec.calls.clear()
        rec.fail = fail
        args = cli.build_parser().parse_args(argv)
        status = run_reporting(args.run, args)
        out, err = capsys.readouterr()
        seen.append((status, list(rec.calls), out, err.replace("Traceback", "TRACEBACK")))
    return tuple(seen)


@pytest.mark.parametrize("command", ["render", "plan", "pyramid", "sheet", "serve"])
def test_every_listed_flag_is_accepted_and_used(tmp_path, monkeypatch, capsys, command):
    assert cli.main(["render", "--seed", "9", "--width", "16", "-q", "-o", str(tmp_path / "source.png")]) == 0
    rec = Recorder(monkeypatch)
    parser = cli.build_parser().subcommands[command]
    flags = listed_flags(parser)
    assert flags, command
    unknown = [f for f in flags if f not in VALUES]
    assert not unknown, f"{command} lists {unknown}: add them to VALUES with a value that should change something"
    for flag in flags:
        given, base = (SHEET if command == "sheet" else {}).get(flag, VALUES[flag])
        given = [a.replace("{tmp}", str(tmp_path)) for a in given]
        with_flag = outcome(rec, capsys, [command, *given])
        without = outcome(rec, capsys, [command, *base])
        assert with_flag != without, f"bigcppn {command} {' '.join(given)} changes nothing: is {flag} used?"


@pytest.mark.parametrize("command", ["render", "plan", "pyramid", "sheet", "serve"])
def test_a_wrong_flag_points_to_the_subcommands_help(capsys, command):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--bogus"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --bogus" in err and f"see 'bigcppn {command} --help'" in err
    assert len(err.strip().splitlines()) == 1


def test_print_sizes_only_where_they_mean_something():
    parsers = cli.build_parser().subcommands
    for command in ("render", "plan"):
        assert {"--size", "--dpi", "--landscape", "--bleed"} <= set(listed_flags(parsers[command]))
    for command in ("pyramid", "serve", "sheet"):
        assert not {"--size", "--dpi", "--bleed"} & set(listed_flags(parsers[command]))
    assert "--compression" not in listed_flags(parsers["pyramid"]), "pyramid tiles have a --format, not a compression"
    assert "--quality" in listed_flags(parsers["pyramid"]) and "--quality" in listed_flags(parsers["render"])
