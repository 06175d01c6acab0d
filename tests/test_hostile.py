"""Hostile input (issue 13): whatever a config, an override, an output name or a ``--from`` file holds,
bigcppn either renders it or refuses it with one line and exit status 2, before any work, leaving nothing.

The regression tests reproduce each attack the adversary found; the fuzz tests (Hypothesis) and the
crafted ``--from`` corpus keep the adversary in the suite.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

import hostile_cases as hc
import hostile_files as hf
from hostile_cases import call, refused

SUBPROCESS_TIMEOUT = 120  # generous: a refusal takes a second or two; the old code took minutes or memory


def refuse(argv: list, *folders: Path, message: str = "") -> str:
    code, err = call(argv)
    refused(code, err, *folders)
    assert message in err, err
    return err


@pytest.fixture
def out(tmp_path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


def child(argv: list, memory_limit: int | None = None) -> subprocess.CompletedProcess:
    """``bigcppn ARGV`` in a fresh interpreter (optionally under an address-space limit); prints its peak RSS (KB)."""
    code = textwrap.dedent(f"""
        import resource, sys
        if {memory_limit!r}:
            resource.setrlimit(resource.RLIMIT_AS, ({memory_limit!r}, {memory_limit!r}))
        from bigcppn import cli
        try:
            code = cli.main({[str(a) for a in argv]!r})
        finally:
            # VmHWM: this process' own peak (ru_maxrss keeps a forked parent's peak across exec, and pytest's
            # process grows with the suite)
            try:
                print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")))
            except OSError:
                print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        sys.exit(code)
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
                          cwd=Path(__file__).resolve().parent.parent)


# --------------------------------------------------------------------------- A, B: --from costs bounded


def test_xmp_with_unclosed_config_tags_reads_in_linear_time(tmp_path, out):
    """A. ``<bigcppn:config>`` repeated and never closed made the XMP regex quadratic (256 KB: 19.5 s)."""
    src = hf.image_with(tmp_path / "x.png", xmp=hf.unclosed_xmp(60000))  # 940 KB: hours at the old quadratic cost
    r = child(["render", "--from", src, "-o", out / "o.png", "-q"])
    refused(r.returncode, r.stderr, out)
    assert "carries no bigcppn config" in r.stderr


def test_zip_bomb_in_szi_is_refused_without_inflating(tmp_path, out):
    """B. A .szi whose config entry inflates to 512 MB (a 2.3 MB file): refused having read at most 1 MB of it."""
    src = hf.zip_bomb(tmp_path / "bomb.szi", 512 << 20)
    assert src.stat().st_size < 4 << 20
    r = child(["render", "--from", src, "-o", out / "o.png", "-q"])
    refused(r.returncode, r.stderr, out)
    assert "over the 1.0 MB bigcppn reads" in r.stderr
    peak_kb = int(r.stdout.split()[-1])
    assert peak_kb < 700 * 1024, f"peak RSS {peak_kb} KB: the entry was inflated"  # the old code: 1.29 GB


def test_huge_xmp_is_refused_by_size(tmp_path, out):
    """B. A compressed iTXt XMP inflating to 16 MB is refused by its size, not scanned."""
    src = hf.png_itxt(tmp_path / "x.png", hf.xmp("#" * (16 << 20)), compress=True)
    refuse(["render", "--width", 8, "--from", src, "-o", out / "o.png"], out, message="over the 1.0 MB bigcppn reads")


# --------------------------------------------------------------------------- C: one line, not a traceback


@pytest.mark.parametrize("config", ["[1]", '"seed = 1"', "null", "1", "true"])
def test_embedded_config_of_the_wrong_type_is_one_line(tmp_path, out, config):
    src = hf.dzi_with_sidecar(tmp_path, "a", f'{{"config": {config}}}'.encode())
    refuse(["render", "--from", src, "-o", out / "b.png"], out, message="is not a bigcppn sidecar")
    szi = hf.szi_with(tmp_path / "a.szi", f'{{"config": {config}}}'.encode())
    refuse(["render", "--from", szi, "-o", out / "b.png"], out, message="is not a bigcppn sidecar")


def test_sidecar_that_is_not_utf8(tmp_path, out):
    src = hf.dzi_with_sidecar(tmp_path, "c", b'{"config": {"network": {"color": "gr\xfcn"}}}')
    refuse(["render", "--from", src, "-o", out / "b.png"], out, message="is not UTF-8 text")
    toml = tmp_path / "c.toml"
    toml.write_bytes(b"seed = 1 # gr\xfcn\n")
    refuse(["render", toml, "-o", out / "b.png"], out, message="is not UTF-8 text")


@pytest.mark.parametrize("where", ["set", "toml", "sidecar", "tables"])
def test_deeply_nested_values_are_refused(tmp_path, out, where):
    deep = hf.nested(2000)
    if where == "set":
        argv = ["render", "--set", f"network.hidden={deep}"]
    elif where == "toml":
        (tmp_path / "d.toml").write_text(f"[network]\nhidden = {deep}\n")
        argv = ["render", tmp_path / "d.toml"]
    elif where == "sidecar":
        argv = ["render", "--from", hf.dzi_with_sidecar(tmp_path, "d", f'{{"config": {deep}}}'.encode())]
    else:
        (tmp_path / "t.toml").write_text("[" + ".".join(["a"] * 100) + "]\nx = 1\n")
        argv = ["render", tmp_path / "t.toml"]
    err = refuse([*argv, "-o", out / "o.png"], out)
    assert "deep" in err


@pytest.mark.parametrize("where", ["set", "toml", "sidecar", "seeds", "size", "bleed", "float"])
def test_numbers_with_thousands_of_digits(tmp_path, out, where):
    digits = "9" * 5000
    argv = {
        "set": ["render", "--set", f"seed={digits}"],
        "toml": ["render", tmp_path / "n.toml"],
        "sidecar": ["render", "--from", hf.dzi_with_sidecar(tmp_path, "n", f'{{"config": {{"seed": {digits}}}}}'.encode())],
        "seeds": ["sheet", "--seeds", digits],
        "size": ["render", "--size", f"{'1' * 400}x1mm"],
        "bleed": ["render", "--width", 8, "--bleed", f"{'1' * 400}mm"],
        "float": ["render", "--set", f"network.weight_scale={'9' * 400}"],
    }[where]
    (tmp_path / "n.toml").write_text(f"seed = {digits}\n")
    refuse([*argv, "-o", out / "o.png"], out)


@pytest.fixture
def no_network_built(monkeypatch):
    """Building a network fails the test: a refusal must come before the weights are allocated."""
    import bigcppn.network.model

    def fail(self, net, seed):
        raise AssertionError(f"a network of {net.hidden} was built")

    monkeypatch.setattr(bigcppn.network.model.CPPN, "__init__", fail)


@pytest.mark.parametrize("sets", [
    ["network.hidden=[100000,100000]"],
    ["network.inputs=['x','y','z']", "network.z_size=1000000000"],
    ["network.hidden=[60000,60000,60000,60000]"],
])
@pytest.mark.parametrize("command", ["render", "plan", "sheet"])
def test_network_too_big_for_memory_is_refused_before_it_is_built(out, no_network_built, sets, command):
    argv = [command, "-o", out / "o.png"] + [a for s in sets for a in ("--set", s)]
    refuse(argv if command == "sheet" else [*argv, "--width", 64], out)


def test_network_memory_counts_activations_against_this_machine(out, no_network_built, monkeypatch):
    """``hidden=[100000]`` used 3.8 GB for a 64x48 picture: refused on a machine with less memory."""
    import bigcppn.core.limits

    monkeypatch.setattr(bigcppn.core.limits, "physical_memory", lambda: 2 * 1000**3)
    err = refuse(["render", "--device", "cpu", "--width", 64, "--height", 48, "--set", "network.hidden=[100000]",
                  "-o", out / "o.png"], out, message="needs about")
    assert "more than this machine's 2.0 GB" in err


def test_config_path_must_be_a_regular_file(tmp_path, out):
    """``bigcppn render /dev/zero`` read until MemoryError; a FIFO would hang. Both are refused at once."""
    os.mkfifo(tmp_path / "fifo.toml")
    for path in ("/dev/zero", tmp_path / "fifo.toml"):  # in a child: the old code ran out of memory, or hung
        r = child(["render", path, "-o", out / "o.png"], memory_limit=4 << 30)
        refused(r.returncode, r.stderr, out)
        assert "is not a regular file" in r.stderr
    refuse(["render", tmp_path, "-o", out / "o.png"], out, message="is a directory")
    big = tmp_path / "big.toml"
    big.write_text("#" * (2 << 20))
    refuse(["render", big, "-o", out / "o.png"], out, message="over the 1.0 MB bigcppn reads")


@pytest.mark.parametrize("command", ["render", "pyramid", "sheet", "plan"])
def test_output_name_the_file_system_cannot_encode(out, monkeypatch, command):
    """``-o $'bad\\xff.png'`` rendered in full, then failed; pyramid left ``.index.html.partial-PID``."""
    import bigcppn.network.strips
    import bigcppn.sheet

    monkeypatch.setattr(bigcppn.network.strips, "renderer_for", lambda *a, **k: pytest.fail("rendering started"))
    monkeypatch.setattr(bigcppn.sheet, "render_cells", lambda *a, **k: pytest.fail("rendering started"))
    name = os.fsdecode(b"bad\xff" + (b".dzi" if command == "pyramid" else b".png"))
    size = [] if command == "sheet" else ["--width", 8]
    refuse([command, *size, "-o", out / name], out, message="not valid utf-8 text")


# --------------------------------------------------------------------------- D: no wrong successes


def test_multiline_set_value_is_refused(out):
    """``--set $'seed=1\\nseed=2'`` silently dropped everything after the first line."""
    refuse(["render", "--width", 8, "--set", "seed=1\nseed=2", "-o", out / "o.png"], out, message="one line")
    refuse(["render", "--width", 8, "--set", "network.hidden=[4,\n4]", "-o", out / "o.png"], out, message="one line")


@pytest.mark.parametrize("where", ["set", "toml", "sidecar", "png"])
@pytest.mark.parametrize("key,value", [("network.z", "[nan, inf]"), ("network.z", "[0.5, -inf]"), ("view.zoom", "inf"),
                                      ("view.zoom", "nan")])
def test_nan_and_infinity_are_refused(tmp_path, out, where, key, value):
    """``network.z=[nan, inf]`` wrote an all-black image."""
    import tomllib

    section, name = key.split(".")
    sets = ["network.inputs=['x','y','z']", "network.z_size=2", f"{key}={value}"]
    net = "[network]\ninputs = ['x','y','z']\nz_size = 2\n"
    body = net + (f"{name} = {value}\n" if section == "network" else f"[{section}]\n{name} = {value}\n")
    if where == "set":
        argv = ["render"] + [a for s in sets for a in ("--set", s)]
    elif where == "toml":
        (tmp_path / "c.toml").write_text(body)
        argv = ["render", tmp_path / "c.toml"]
    elif where == "sidecar":
        cfg = tomllib.loads(body)
        argv = ["render", "--from", hf.dzi_with_sidecar(tmp_path, "s", json.dumps({"config": cfg}).encode())]
    else:
        argv = ["render", "--from", hf.png_text(tmp_path / "p.png", ("# bigcppn config\n" + body).encode())]
    refuse([*argv, "--width", 8, "-o", out / "o.png"], out, message="finite")


@pytest.mark.parametrize("dpi", ["1e300", "0.5", "1e6"])
def test_dpi_out_of_range_is_refused(out, dpi):
    """``--dpi 1e300`` wrote 72 DPI with GLib warnings."""
    refuse(["render", "--width", 8, "--dpi", dpi, "-o", out / "o.png"], out, message="canvas.dpi must be")
    refuse(["render", "--width", 8, "--set", f"canvas.dpi={dpi}", "-o", out / "o.png"], out)


def test_the_highest_dpi_is_written_into_a_tiff(out):
    """The fuzzer's find: over 42950 dpi the TIFF writer's resolution fraction overflowed 32 bits (exit 1)."""
    import pyvips

    code, err = call(["render", "--width", 8, "-q", "--dpi", "94772.85935258961", "-o", out / "d.tif"])
    assert code == 0, err
    assert abs(pyvips.Image.new_from_file(str(out / "d.tif")).xres * 25.4 - 94772.86) < 1


@pytest.mark.parametrize("setting", [
    "render.batch=99999999999999999999", "network.z_size=100000000", "network.z_size=-1",
    "network.hidden=[2000000]", f"network.hidden=[{','.join(['1'] * 2000)}]",
    f"network.z=[{','.join(['0.5'] * 70000)}]", "network.weight_scale=1e300", "network.bias_scale=1e300",
    "network.z_scale=1e300", "view.zoom=1e300", "view.zoom=1e-300", "view.center=[1e300, 0]",
], ids=lambda s: s[:40])
def test_numbers_out_of_range_are_refused(out, no_network_built, setting):
    refuse(["render", "--width", 8, "--set", setting, "-o", out / "o.png"], out, message="must be")


def test_an_unused_activation_is_still_checked(out):
    """The fuzzer's find: with no hidden layer any activation string passed, NUL included, and was written
    unescaped into the output's embedded config, which no longer loaded."""
    refuse(["render", "--width", 8, "--set", "network.hidden=[]", "--set", 'network.activation="\\u0000"',
            "-o", out / "o.png"], out, message="unknown activation")


def test_the_embedded_config_escapes_every_character():
    """The embedded TOML must load again, whatever a string holds."""
    import tomllib

    from bigcppn.core.tomltext import toml_value as _toml_value

    odd = 'a\x00b\n"\\ \x7f\x1f é 😀'
    assert tomllib.loads(f"v = {_toml_value(odd)}")["v"] == odd


def test_long_output_name_fits_with_its_temporary_folder(out):
    """A 240-byte name was refused with a raw "[Errno 36]" naming the hidden ``.NAME.partial-PID`` folder."""
    name = "a" * 240 + ".png"  # its temporary sibling .NAME.partial-PID is over 255 bytes
    code, err = call(["render", "--width", 8, "-q", "-o", out / name])
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [name]


@pytest.mark.parametrize("name", ["a" * 252 + ".png", "d" * 246 + ".dzi"], ids=["png-256", "dzi-250"])
def test_output_name_too_long_names_the_users_path(out, name):
    err = refuse(["render", "--width", 8, "-o", out / name], out, message="too long for this file system")
    assert "partial" not in err and "Errno" not in err


# --------------------------------------------------------------------------- E: a read-only folder


def test_read_only_directory_names_it_and_says_what_to_do(out, monkeypatch):
    """On a read-only mount the raw ``[Errno 30] … .x.png.partial-PID`` replaced the friendly line."""
    real_mkdir, real_unlink = pathlib.Path.mkdir, pathlib.Path.unlink

    def read_only(real):
        def op(self, *a, **k):
            if Path(self).parent == out:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
            return real(self, *a, **k)
        return op

    monkeypatch.setattr(pathlib.Path, "mkdir", read_only(real_mkdir))
    monkeypatch.setattr(pathlib.Path, "unlink", read_only(real_unlink))
    for argv in (["render", "--width", 8], ["sheet"]):
        err = refuse([*argv, "-o", out / "x.png"], out, message=f"cannot write in output directory '{out}'")
        assert "partial" not in err and "choose another -o" in err and "read-only" in err.lower()


# --------------------------------------------------------------------------- G: the adversary, kept


def test_fuzzed_configs_render_or_are_refused_in_one_line(tmp_path):
    stats = hc.fuzz_configs(tmp_path, max_examples=300, derandomize=True)
    hc.report("fuzzed configs", stats)
    assert stats["must render"] and stats["must be refused"]


def test_fuzzed_text_never_gives_a_traceback(tmp_path):
    hc.report("fuzzed text", hc.fuzz_text(tmp_path, max_examples=300, derandomize=True))


@pytest.mark.slow
def test_many_fuzzed_configs(tmp_path):
    stats = hc.fuzz_configs(tmp_path, max_examples=2000, derandomize=False)
    hc.report("fuzzed configs (slow)", stats)
    text = hc.fuzz_text(tmp_path, max_examples=1000, derandomize=False)
    hc.report("fuzzed text (slow)", text)


def test_crafted_from_files_are_refused_in_one_line(tmp_path):
    """Every crafted --from file, run in one child process (under a memory limit, with a generous timeout)."""
    files = hf.corpus(tmp_path / "corpus")
    assert len(files) >= 100
    listing = tmp_path / "files.json"
    listing.write_text(json.dumps([str(f) for f in files]))
    script = textwrap.dedent(f"""
        import json, resource, sys, pathlib
        resource.setrlimit(resource.RLIMIT_AS, ({4 << 30}, {4 << 30}))
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from hostile_cases import call
        out = pathlib.Path({str(tmp_path / "out")!r})
        out.mkdir()
        for f in json.loads(pathlib.Path({str(listing)!r}).read_text()):
            code, err = call(["render", "--from", f, "--width", 8, "-q", "-o", out / "o.png"])
            left = sorted(p.name for p in out.iterdir())
            for p in out.iterdir():
                p.unlink()
            print(json.dumps({{"file": f, "code": code, "err": err, "left": left}}), flush=True)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                       cwd=Path(__file__).resolve().parent.parent)
    results = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(results) == len(files), f"the run stopped after {len(results)} files: {r.stderr[-2000:]}"
    bad = [x for x in results if x["code"] != 2 or len(x["err"].strip().splitlines()) != 1 or x["left"]
           or "Traceback" in x["err"]]
    assert not bad, "\n".join(f"{Path(x['file']).name}: exit {x['code']}: {x['err'][:300]}" for x in bad)
    hc.report("crafted --from files", Counter(f"exit {x['code']}" for x in results))


OVERFLOW = ["--set", "network.activation='identity'", "--set", f"network.hidden=[{','.join(['64'] * 24)}]",
            "--set", "network.weight_scale=100", "--set", "network.weight_init='normal'"]


@pytest.mark.parametrize("argv", [
    ["render", "--width", 64, "-o", "{out}/o.png"],
    ["render", "--width", 64, "--seeds", "1-2", "-o", "{out}/o-{seed}.png"],
    ["pyramid", "--width", 64, "-o", "{out}/p.dzi"],
    ["plan", "--width", 64, "-o", "{out}/o.tif"],
], ids=["render", "series", "pyramid", "plan"])
def test_a_network_that_overflows_float32_is_refused_not_written_black(out, argv):
    """Legal settings (wide normal weights through 24 identity layers) overflowed float32: every pixel NaN,
    written as an all-black picture without a word."""
    refuse([str(a).replace("{out}", str(out)) for a in argv] + OVERFLOW, out, message="overflows float32")


def test_a_network_near_the_edge_still_renders(out):
    """The check refuses only colours that are not finite: large but finite values render (saturated)."""
    code, err = call(["render", "--width", 16, "-q", "-o", out / "o.png", "--set", "network.activation='identity'",
                      "--set", "network.hidden=[16,16,16]", "--set", "network.weight_scale=50"])
    assert code == 0, err
