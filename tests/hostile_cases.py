"""Hypothesis strategies and runners for tests/test_hostile.py: configs that must render, hostile ones that must not.

A case is a dict of dotted config keys and values. The "good" values are valid
together (small networks, an 8x8 canvas set on the command line); a hostile
value (NaN, infinity, a huge or hugely long number, deep nesting, a string with
a NUL, a table where a value belongs, an unknown key) is invalid for every key,
so a case with one is refused whatever else it holds. :func:`call` runs the
command line in this process and captures stderr at the file-descriptor level,
so libvips' and GLib's own warnings are seen too.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import sys
import tempfile
import traceback
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import hostile_files as hf

from bigcppn import cli
from bigcppn.config import ACTIVATIONS, COLORS, INITS
from bigcppn.config import COMPRESSIONS as TIFF_COMPRESSIONS


def call(argv: list) -> tuple[int, str]:
    """``bigcppn ARGV`` here: (exit status, everything written to stderr). An escaped exception is 99."""
    err = io.StringIO()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as c_err:
        os.dup2(c_err.fileno(), 2)
        try:
            with contextlib.redirect_stderr(err):
                try:
                    code = cli.main([str(a) for a in argv])
                except SystemExit as exc:  # argparse's own errors
                    code = exc.code if isinstance(exc.code, int) else 2
                except BaseException:  # noqa: BLE001 - the point is to see it
                    traceback.print_exc(file=err)
                    code = 99
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        c_err.seek(0)
        return code, err.getvalue() + c_err.read().decode("utf-8", "replace")


class Raw(NamedTuple):
    """A value written as given, in TOML and in JSON (what no Python value serialises to)."""

    toml: str
    json: str


def toml_value(v: Any) -> str:
    if isinstance(v, Raw):
        return v.toml
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(x)}" for k, x in v.items()) + "}"


def json_value(v: Any) -> str:
    if isinstance(v, Raw):
        return v.json
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(json_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {json_value(x)}" for k, x in v.items()) + "}"
    return json.dumps(v)  # NaN and Infinity as Python's json writes them


def toml_document(values: dict[str, Any]) -> str:
    """A TOML file setting dotted keys: top-level keys first, then a table per section."""
    top = [f"{k} = {toml_value(v)}" for k, v in values.items() if "." not in k]
    sections: dict[str, list[str]] = {}
    for k, v in values.items():
        if "." in k:
            section, name = k.split(".", 1)
            sections.setdefault(section, []).append(f"{json.dumps(name)} = {toml_value(v)}")
    body = "\n".join(top)
    for section, lines in sections.items():
        body += f"\n[{section}]\n" + "\n".join(lines)
    return body + "\n"


def json_document(values: dict[str, Any]) -> str:
    """A sidecar holding the dotted keys as a nested config."""
    tree: dict[str, Any] = {}
    for k, v in values.items():
        node = tree
        *parents, name = k.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):  # a hostile scalar section already here: this key is lost, fine
                break
        else:
            node[name] = v
    return '{"generator": "fuzz", "config": ' + json_value(tree) + "}"


FORMATS = ("png", "jpg", "webp", "tif", "dzi", "szi")
FINITE = dict(allow_nan=False, allow_infinity=False)


@st.composite
def good(draw) -> tuple[dict[str, Any], str]:
    """(config values that render, the output suffix)."""
    v: dict[str, Any] = {}
    hidden = draw(st.lists(st.integers(1, 24), max_size=4))
    pick = draw(st.sets(st.sampled_from([
        "seed", "inputs", "hidden", "activation", "output_activation", "color", "bias", "init", "scales",
        "view", "canvas", "render", "output"]), max_size=13))
    if "seed" in pick:
        v["seed"] = draw(st.integers(0, 2**63 - 1))
    if "inputs" in pick:
        inputs = draw(st.lists(st.sampled_from(["x", "y", "r", "z"]), min_size=1, max_size=4, unique=True))
        v["network.inputs"] = inputs
        if "z" in inputs:
            size = draw(st.integers(1, 16))
            v["network.z_size"] = size
            if draw(st.booleans()):
                v["network.z"] = draw(st.lists(st.floats(-1e6, 1e6, **FINITE), min_size=size, max_size=size))
    if "hidden" in pick:
        v["network.hidden"] = hidden
    if "activation" in pick:
        v["network.activation"] = draw(st.sampled_from(ACTIVATIONS) | st.lists(
            st.sampled_from(ACTIVATIONS), min_size=len(hidden), max_size=len(hidden)))
        v["network.hidden"] = hidden
    for key, values in (("output_activation", ACTIVATIONS), ("color", COLORS), ("bias", (True, False, "first"))):
        if key in pick:
            v[f"network.{key}"] = draw(st.sampled_from(values))
    if "init" in pick:
        v["network.weight_init"], v["network.bias_init"] = draw(st.sampled_from(INITS)), draw(st.sampled_from(INITS))
    if "scales" in pick:
        for key in ("weight_scale", "bias_scale", "z_scale"):
            v[f"network.{key}"] = draw(st.floats(0, 1e6, **FINITE))
    if "view" in pick:
        v["view.center"] = draw(st.lists(st.floats(-1e9, 1e9, **FINITE), min_size=2, max_size=2))
        v["view.zoom"] = draw(st.floats(1e-15, 1e15, **FINITE))
    if "canvas" in pick:
        w, h = draw(st.integers(4, 2**31 - 1)), draw(st.integers(4, 2**31 - 1))
        v.update({"canvas.width": w, "canvas.height": h, "canvas.bleed": draw(st.integers(0, min(w, h) // 4)),
                  "canvas.dpi": draw(st.floats(1, 1e5, **FINITE))})
    if "render" in pick:
        v.update({"render.tile": draw(st.integers(1, 65536)), "render.batch": draw(st.integers(0, 2**31)),
                  "render.queue": draw(st.integers(1, 16)), "render.workers": draw(st.integers(0, 4)),
                  "render.device": "cpu", "render.kernel": draw(st.sampled_from(["auto", "eager"]))})
    suffix = draw(st.sampled_from(FORMATS))
    if "output" in pick:
        depth = draw(st.sampled_from([8, 16])) if suffix in ("png", "tif") else 8
        comp = draw(st.sampled_from([c for c in TIFF_COMPRESSIONS if not (depth == 16 and c == "jpeg")]))
        dz_tile = draw(st.integers(1, 512))
        v.update({"output.compression": comp, "output.quality": draw(st.integers(1, 100)), "output.depth": depth,
                  # (libvips reads back no TIFF whose tiles are far larger than the picture, 272 on 8x8:
                  # left to the TIFF conformance work; the canvas here is 8x8, so tiles up to 256)
                  "output.tiff_tile": 16 * draw(st.integers(1, 16)), "output.dz_tile": dz_tile,
                  "output.dz_overlap": draw(st.integers(0, dz_tile - 1)),
                  "output.dz_suffix": draw(st.sampled_from(["jpeg", "png", "webp"]))})
    return v, suffix


def _deep(d: int) -> Raw:
    return Raw("[" * d + "]" * d, "[" * d + "]" * d)


HOSTILE_VALUE = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.integers(10**20, 10**300), st.integers(-(10**300), -(10**20)),
    st.integers(4301, 6000).map(lambda n: Raw("9" * n, "9" * n)),
    st.integers(33, 3000).map(_deep),
    st.text(max_size=20).map(lambda s: s + "\x00"),
    st.dictionaries(st.text(min_size=1, max_size=5), st.integers(), min_size=1, max_size=3),
    st.sampled_from([Raw("1\nseed = 2", "1\n]"), Raw("[1e999]", "[1e999]"), Raw("1e999", "1e999")]),
)
KEYS = ("seed", "network.inputs", "network.hidden", "network.activation", "network.output_activation",
        "network.color", "network.bias", "network.weight_init", "network.weight_scale", "network.bias_scale",
        "network.z_size", "network.z", "network.z_scale", "view.center", "view.zoom", "canvas.width",
        "canvas.height", "canvas.bleed", "canvas.dpi", "render.tile", "render.batch", "render.queue",
        "render.workers", "render.kernel", "output.compression", "output.quality", "output.depth",
        "output.tiff_tile", "output.dz_tile", "output.dz_overlap", "output.dz_suffix")


@st.composite
def hostile(draw) -> dict[str, Any]:
    """One to three hostile settings: a hostile value for a known key, an unknown key, a section that is a value."""
    out: dict[str, Any] = {}
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["value", "value", "value", "unknown", "section"]))
        if kind == "value":
            out[draw(st.sampled_from(KEYS))] = draw(HOSTILE_VALUE)
        elif kind == "unknown":
            name = draw(st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
            section = draw(st.sampled_from(["", "network.", "view.", "canvas.", "render.", "output."]))
            if name not in {k.split(".")[-1] for k in KEYS} | {"network", "view", "canvas", "render", "output"}:
                out[section + name] = 1
        else:
            out[draw(st.sampled_from(["network", "view", "canvas", "render", "output"]))] = draw(
                st.integers() | st.text(max_size=5) | st.lists(st.integers(), max_size=3))
    return out


@st.composite
def cases(draw) -> dict[str, Any]:
    """A fuzz case: values (good, maybe with hostile ones on top), how they reach bigcppn, the output suffix."""
    values, suffix = draw(good())
    bad = draw(hostile()) if draw(st.booleans()) else {}
    values = {**values, **bad}
    channel = draw(st.sampled_from(["file", "set", "mixed", "sidecar", "png"]))
    return {"values": values, "hostile": bool(bad), "channel": channel, "suffix": suffix,
            "in_file": draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))}


# --------------------------------------------------------------------------- running the cases


def refused(code: int, err: str, *folders: Path) -> None:
    """Exit 2, one line on stderr, no traceback, and nothing left in ``folders``."""
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for folder in folders:
        assert sorted(p.name for p in folder.iterdir()) == [], f"left behind in {folder}"


def fuzz_argv(case: dict, folder: Path, out: Path) -> list:
    """The command line of a fuzz case; its files written into ``folder``."""
    values, channel = case["values"], case["channel"]
    argv = ["render", "--width", 8, "--height", 8, "-q", "-o", out / f"o.{case['suffix']}"]
    if channel == "sidecar":
        return argv + ["--from", hf.dzi_with_sidecar(folder, "s", json_document(values).encode())]
    if channel == "png":
        text = "# bigcppn config\n" + toml_document(values)
        return argv + ["--from", hf.png_text(folder / "p.png", text.encode())]
    in_file = {k for k, f in zip(values, case["in_file"]) if channel == "file" or (channel == "mixed" and f)}
    if in_file:
        (folder / "c.toml").write_text(toml_document({k: values[k] for k in in_file}))
        argv.append(folder / "c.toml")
    for k, v in values.items():
        if k not in in_file:
            argv += ["--set", f"{k}={toml_value(v)}"]
    return argv


def check_outcome(code: int, err: str, out: Path, expected: int | None, size: tuple | None = (8, 8),
                  config: bool = True) -> str:
    """Exit 0 with a readable output (``size``, carrying its ``config``), or exit 2 with one line and nothing left."""
    assert "Traceback" not in err and code != 99, err
    assert code in (0, 2), (code, err)
    if code == 2:
        refused(code, err, out)
        assert err.startswith("bigcppn"), err
    else:
        assert not err.strip(), err  # -q: nothing at all, no libvips or GLib warnings either
        made = sorted(out.iterdir())
        assert made, "exit 0 but no output"
        main = next((p for p in made if p.name.startswith("o.") and not p.name.endswith("_files")), made[0])
        if main.suffix in (".png", ".jpg", ".webp", ".tif"):
            import pyvips

            image = pyvips.Image.new_from_file(str(main))
            assert size is None or (image.width, image.height) == size
        if config:
            from bigcppn.formats.registry import read_config_from

            cfg = read_config_from(main)  # the embedded config is whole and valid
            assert size is None or (cfg.canvas.width, cfg.canvas.height) == size
        for p in made:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    if expected is not None:
        assert code == expected, f"expected exit {expected}, got {code}: {err}"
    return f"exit {code}"


def fuzz_configs(tmp_path: Path, max_examples: int, derandomize: bool) -> Counter:
    stats: Counter = Counter()

    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=derandomize,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(case=cases())
    def run(case):
        with tempfile.TemporaryDirectory(dir=tmp_path) as d:
            folder, out = Path(d), Path(d) / "out"
            out.mkdir()
            code, err = call(fuzz_argv(case, folder, out))
            # an output carries every setting: --from refuses an empty embedded config
            empty_from = case["channel"] in ("sidecar", "png") and not case["values"]
            expected = 2 if case["hostile"] or empty_from else 0
            if expected == 0 and code == 2 and "overflows float32" in err:
                # scales up to 1e6 are valid values, and some networks they make overflow: a refusal that
                # depends on the drawn weights, which the strategy cannot foresee (still one line, nothing left)
                expected = 2
            stats[check_outcome(code, err, out, expected)] += 1
            stats["must render" if expected == 0 else "must be refused"] += 1

    run()
    return stats


# Flags whose text is fuzzed, with the arguments around them (sizes kept small: --dpi 1 with --size and --bleed).
_FLAGS = {
    "size": (["--dpi", 1, "--size"], st.text("0123456789.xX×mcinAaletrgbodl ", max_size=10)),
    "bleed": (["--width", 8, "--height", 8, "--dpi", 1, "--bleed"], st.text("0123456789.mcin ", max_size=4)),
    "dpi": (["--width", 8, "--height", 8, "--dpi"], st.text("0123456789.e+-naif", max_size=8)),
    "seeds": (["--cell", 8, "--seeds"], st.text("0123456789-, ", max_size=12)),
}


def fuzz_text(tmp_path: Path, max_examples: int, derandomize: bool) -> Counter:
    """Arbitrary text as a config file, a --set value, a key, a sidecar and flags: exit 0 or 2, never a traceback."""
    stats: Counter = Counter()

    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=derandomize,
              suppress_health_check=list(HealthCheck))
    @given(text=st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
           where=st.sampled_from(["file", "set", "sidecar", "key", "name", *_FLAGS]), data=st.data())
    def run(text, where, data):
        with tempfile.TemporaryDirectory(dir=tmp_path) as d:
            folder, out = Path(d), Path(d) / "out"
            out.mkdir()
            argv = ["render", "-q", "-o", out / "o.png"]
            if where == "name":  # any output name: text, or bytes as the file system decodes them
                name = data.draw(st.text(min_size=1, max_size=300) | st.binary(min_size=1, max_size=300).map(
                    os.fsdecode)) + "." + data.draw(st.sampled_from(FORMATS))
                argv[-1] = out / ("o." + name.replace("/", "_"))  # one name inside out/, never a path elsewhere
            if where in _FLAGS:
                flags, strategy = _FLAGS[where]
                argv = (["sheet", "-q", "-o", out / "o.png"] if where == "seeds" else argv) + flags
                text = data.draw(strategy)
                argv.append(text)
            else:
                argv += ["--width", 8, "--height", 8]
            if where == "file":
                (folder / "c.toml").write_text(text, encoding="utf-8", errors="surrogateescape")
                argv.append(folder / "c.toml")
            elif where == "sidecar":
                argv += ["--from", hf.dzi_with_sidecar(folder, "s", text.encode("utf-8", "surrogateescape"))]
            elif where in ("set", "key"):
                arg = f"network.{text}=1" if where == "key" else f"seed={text}"
                if "\x00" in arg:
                    return  # no command line can carry a NUL
                argv += ["--set", arg]
            code, err = call(argv)
            size = None if where in ("size", "bleed", "seeds") else (8, 8)
            stats[check_outcome(code, err, out, None, size=size, config=where not in ("seeds", "name"))] += 1

    run()
    return stats


def report(name: str, stats: Counter) -> None:
    """With BIGCPPN_HOSTILE_STATS=FILE, append this run's counts to FILE (the figures in docs/reliability.md)."""
    path = os.environ.get("BIGCPPN_HOSTILE_STATS")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"test": name, **stats}) + "\n")
