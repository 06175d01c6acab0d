"""Hypothesis strategies for tests/test_hostile.py: configs that must render, and hostile ones that must be refused.

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
import sys
import tempfile
import traceback
from typing import Any, NamedTuple

from hypothesis import strategies as st

from bigcppn import cli
from bigcppn.config import ACTIVATIONS, COLORS, INITS
from bigcppn.formats import TIFF_COMPRESSIONS


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
        v["view.zoom"] = draw(st.floats(1e-9, 1e15, **FINITE))
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
    st.sampled_from([Raw("1\nseed = 2", "1\n"), Raw("[1e999]", "[1e999]"), Raw("1e999", "1e999")]),
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
