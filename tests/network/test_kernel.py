"""The fused Triton kernel agrees with the PyTorch path, checked on the CPU in Triton's interpreter.

Triton reads ``TRITON_INTERPRET`` when it is imported, and a process either
interprets kernels or compiles them, so the interpreter runs in one child
process (``TRITON_INTERPRET=1``) that renders every case both ways; the tests
here check its answers. Canvases are tiny (32x24): the interpreter pays per
operation. The same checks on a real GPU are in ``test_gpu_kernel.py``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from bigcppn.config import ACTIVATIONS, load_config
from bigcppn.errors import ConfigError, UserError
from bigcppn.network.triton.kernel import axis_params, select_kernel, unsupported_reason
from bigcppn.network.model import CPPN
from bigcppn.core.geometry import Window
from bigcppn.network.strips import renderer_for

from conftest import small_config

HAVE_TRITON = importlib.util.find_spec("triton") is not None
needs_triton = pytest.mark.skipif(not HAVE_TRITON, reason="triton is not installed (pip install triton)")

W, H = 32, 24


def random_overrides(seed: int) -> list[str]:
    """A random network, view and output: widths, depth, activations, inputs, colour, bit depth."""
    g = np.random.default_rng(seed)
    depth = int(g.integers(0, 5))
    hidden = [int(w) for w in g.integers(1, 40, depth)]
    acts = [str(a) for a in g.choice(ACTIVATIONS, depth)]
    inputs = [n for n in ("x", "y", "r", "z") if g.random() < 0.7] or ["x"]
    return [
        f"network.hidden={hidden}",
        f"network.activation={json.dumps(acts)}",
        f"network.output_activation=\"{g.choice(ACTIVATIONS)}\"",
        f"network.inputs={json.dumps(inputs)}",
        f"network.color=\"{g.choice(['rgb', 'grey', 'hsv'])}\"",
        f"network.weight_scale={float(g.uniform(0.5, 2.5)):.3f}",
        f"output.depth={int(g.choice([8, 16]))}",
        f"view.zoom={float(10 ** g.uniform(-1, 3)):.4g}",
        f"view.center=[{float(g.uniform(-1, 1)):.4f}, {float(g.uniform(-1, 1)):.4f}]",
    ]


CASES = {
    "article": [],
    "article-16bit": ["output.depth=16"],
    "grey": ["network.color=\"grey\""],
    "hsv": ["network.color=\"hsv\""],
    "sin-tanh": ["network.activation=\"sin\"", "network.output_activation=\"tanh\""],
    "deep-zoom": ["view.zoom=1e7", "view.center=[0.123456789, -0.3]"],
    "bleed": ["canvas.bleed=3"],
    "only-z": ["network.inputs=[\"z\"]"],
    "no-hidden": ["network.hidden=[]"],
    "wide": ["network.hidden=[128, 64, 32, 16, 8, 4, 2]"],
    **{f"random-{s}": random_overrides(s) for s in range(8)},
}

CHILD = r"""
import json, sys
import numpy as np
from bigcppn.config import load_config
from bigcppn.core.geometry import Window
from bigcppn.core.tiling import make_tiling
from bigcppn.network.strips import Renderer, renderer_for
import torch

cases, W, H = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
out = {}
for name, sets in cases.items():
    cfg = load_config(None, sets, {"canvas.width": W, "canvas.height": H, "render.device": "cpu"})
    eager, plan = renderer_for(cfg)  # the PyTorch path (kernel "auto" on a CPU)
    ref = eager.render(plan)
    fused = Renderer(eager.model, plan.canvas, eager.sampling.view, torch.device("cpu"),
                     depth=cfg.output.depth, kernel="triton")
    got = fused.render(plan)
    d = np.abs(got.astype(np.int64) - ref.astype(np.int64))
    level = 257 if cfg.output.depth == 16 else 1
    out[name] = {"kernel": fused.kernel, "shape": list(got.shape), "dtype": str(got.dtype),
                 "ref_shape": list(ref.shape), "ref_dtype": str(ref.dtype),
                 "max_levels": float(d.max() / level), "mean_levels": float(d.mean() / level)}

# Tiling: tiny tiles and batches give the very same pixels as one window.
cfg = load_config(None, [], {"canvas.width": W, "canvas.height": H, "render.device": "cpu", "render.kernel": "triton"})
r, plan = renderer_for(cfg)
whole = r.render(make_tiling(plan.canvas, 64, 64 * 64))
tiled = r.render(make_tiling(plan.canvas, 8, 3 * 8 * 8))
# A window written into a strided view of a bigger buffer, at an offset.
buf = torch.full((H + 4, W + 10, 3), 7, dtype=torch.uint8)
r.fused(buf[2:2 + 11, 5:5 + 13], Window(9, 4, 13, 11))
out["_layout"] = {"tiling_equal": bool(np.array_equal(whole, tiled)),
                  "window_equal": bool(np.array_equal(buf[2:13, 5:18].numpy(), whole[4:15, 9:22])),
                  "outside_untouched": int((buf[:2] != 7).sum() + (buf[13:] != 7).sum()
                                           + (buf[:, :5] != 7).sum() + (buf[:, 18:] != 7).sum())}
# The 64-bit index path gives the same pixels.
k = r.fused
o64 = torch.zeros((H, W, 3), dtype=torch.uint8)
k.fn[(-(-W * H // k.block),)](o64, torch.zeros(1, dtype=torch.int32), k.p64, k.p32, 0, 0, W, W * H, W * 3,
      BLOCK=k.block, I64=True)
out["_layout"]["i64_equal"] = bool(np.array_equal(o64.numpy(), whole))

# Pyramid levels (Backend.render_many) through the level kernel: shifts below, at and past the base,
# K x K supersampling, a window at the clipped canvas edge.
levels = {}
for name, sets in {"article": [], "hsv": ['network.color="hsv"'], "zoom": ["view.zoom=1e6"]}.items():
    cfg = load_config(None, sets, {"canvas.width": 37, "canvas.height": 23, "render.device": "cpu"})
    eager, plan = renderer_for(cfg)
    fused = Renderer(eager.model, plan.canvas, eager.sampling.view, torch.device("cpu"), kernel="triton")
    rects = [(0, 3, 2, 20, 9), (1, 0, 0, 19, 12), (3, 0, 0, 5, 3), (-2, 70, 40, 13, 7), (1, 18, 11, 1, 1)]
    for k in (1, 2, 3):
        for r, a, b in zip(rects, eager.render_many(rects, k), fused.render_many(rects, k)):
            d = np.abs(a.astype(np.int64) - b.astype(np.int64))
            levels[f"{name}-k{k}-{r}"] = {"kernel": fused.kernel,
                                          "same_shape": a.shape == b.shape and b.dtype == np.uint8,
                                          "max_levels": int(d.max()), "differing": float((d > 0).mean())}
out["_levels"] = levels

# Colours that are not finite: the network of test_untrusted_input's NaN case overflows toward two corners
# of a 512x512 canvas only. Each window (and pyramid-level window) fails where the PyTorch path fails, with
# the same line. The kernel is used without its check against PyTorch: where the colours are finite here
# they are sin() of numbers near 1e30, which no two evaluation orders agree on.
from bigcppn.errors import RenderError
from bigcppn.network.triton.kernel import FusedKernel
NAN = ["network.hidden=[16,16,16,16,16,16]", 'network.activation="identity"', "network.bias=false",
       'network.output_activation="sin"', "network.weight_scale=1e5"]
cfg = load_config(None, NAN, {"canvas.width": 512, "canvas.height": 512, "render.device": "cpu", "seed": 23})
eager, plan = renderer_for(cfg)
kern = FusedKernel(eager.model, eager.sampling, torch.device("cpu"))
def outcome(fn):
    try:
        fn()
        return "finite"
    except RenderError as exc:
        return str(exc)
finite = {}
for x, y in ((0, 0), (224, 224), (448, 0), (448, 448)):
    win = Window(x, y, 64, 64)
    finite[f"window {x},{y}"] = [outcome(lambda: eager.render_window(win)),
                                 outcome(lambda: kern(torch.empty((64, 64, 3), dtype=torch.uint8), win))]
for sh, x, y in ((3, 0, 0), (1, 96, 96), (1, 0, 0)):
    finite[f"level {sh}: {x},{y}"] = [outcome(lambda: eager.render_many([(sh, x, y, 64, 64)], 2)),
                                      outcome(lambda: kern.level(torch.empty((64, 64, 3), dtype=torch.uint8),
                                                                 Window(x, y, 64, 64), sh, 2))]
out["_finite"] = finite
print(json.dumps(out))
"""


def _interpret(cases: dict) -> dict:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    res = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cases), str(W), str(H)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def interpreted():
    """The interpreted kernel's answers, from one run: a disagreement fails at once (issue 21, section 6).

    This used to run a case off by more than a level again and keep the second answer, so a kernel wrong
    one time in ten would pass. One miss is on record (CI run of 2026-11-30, the sin-tanh case 195 levels
    off, not reproduced in 40 runs since); its cause is not known. Should it come back, the failure names
    the case and how many levels apart it was.
    """
    return _answers(CASES)


def _answers(cases: dict, interpret=None) -> dict:
    """What the kernel tests judge: the first run's answers, never replaced by a second run's."""
    return (interpret or _interpret)(cases)


def test_a_disagreement_is_not_hidden_by_a_second_run():
    """A kernel wrong one time in ten: its first, wrong answer is the one judged."""
    runs = iter([{"sin-tanh": {"max_levels": 195}}, {"sin-tanh": {"max_levels": 0}}])
    assert _answers({"sin-tanh": {}}, lambda cases: next(runs))["sin-tanh"]["max_levels"] == 195


@pytest.mark.triton
@needs_triton
@pytest.mark.parametrize("case", list(CASES))
def test_kernel_agrees_with_pytorch_within_one_level(interpreted, case):
    r = interpreted[case]
    assert r["kernel"] == "triton"
    assert r["shape"] == r["ref_shape"] and r["dtype"] == r["ref_dtype"]
    assert r["max_levels"] <= 1.0, f"{case}: {r['max_levels']:.2f} 8-bit levels apart"
    assert r["mean_levels"] < 0.1, f"{case}: mean difference {r['mean_levels']:.3f} levels"


@pytest.mark.triton
@needs_triton
def test_kernel_pixels_do_not_depend_on_tiles_windows_or_index_width(interpreted):
    lay = interpreted["_layout"]
    assert lay["tiling_equal"], "tiles and batches must not change a single pixel"
    assert lay["window_equal"], "a window written into a strided buffer at an offset"
    assert lay["outside_untouched"] == 0, "the kernel wrote outside its window"
    assert lay["i64_equal"], "64-bit indexing gives other pixels"


THREADS_CHILD = r"""
import json, sys, threading
import numpy as np
from bigcppn.config import load_config
from bigcppn.core.geometry import Window
from bigcppn.network.strips import renderer_for

sys.setswitchinterval(1e-5)  # switch threads often, so that two launches overlap
win = Window(0, 0, 16, 8)
backends = [renderer_for(load_config(None, sets, {"canvas.width": 16, "canvas.height": 8, "render.device": "cpu",
                                                   "render.kernel": "triton"}))[0]
            for sets in (["network.hidden=[4]"], ["network.hidden=[4]", 'network.color="grey"'])]
refs = [b.render_window(win) for b in backends]
problems = []

def launches(backend, ref):
    for _ in range(40):
        try:
            if not np.array_equal(backend.render_window(win), ref):
                problems.append("other pixels")
        except Exception as exc:
            problems.append(f"{exc.__class__.__name__}: {str(exc)[:120]}")

threads = [threading.Thread(target=launches, args=pair) for pair in zip(backends, refs)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"kernels": [b.kernel for b in backends], "problems": problems}))
"""


@pytest.mark.triton
@needs_triton
def test_two_kernels_launched_from_two_threads_under_the_interpreter():
    """Triton's interpreter holds a launch's state in the process: two kernels (own locks) must not overlap.

    Before the interpreter lock was process-wide, about one launch in ten here failed with
    "Did you forget to add @triton.jit ?" (one launch restoring triton.language under the other).
    """
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    res = subprocess.run([sys.executable, "-c", THREADS_CHILD], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["kernels"] == ["triton", "triton"]
    assert out["problems"] == [], out["problems"][:3]


# ----------------------------------------------------------------- without the interpreter


def test_kernel_coordinates_are_the_samplings():
    """The kernel's (offset, pitch, center) reproduce Sampling.axis to the bit."""
    for sets in ([], ["view.zoom=1e9", "view.center=[0.123456789, -0.3]"], ["canvas.bleed=5"]):
        cfg = small_config(300, 77, *sets)
        r, _ = renderer_for(cfg)
        for horizontal, size in ((True, 300), (False, 77)):
            off, pitch, center = axis_params(r.sampling, horizontal)
            idx = torch.arange(0, size, dtype=torch.float64)
            assert torch.equal((idx + off) * pitch + center, r.sampling.axis(0, size, horizontal, r.device))


def test_the_cpu_path_never_uses_the_kernel_unless_asked():
    cfg = small_config(32, 32)
    r, _ = renderer_for(cfg)
    assert r.kernel == "eager"
    assert select_kernel(r.model, r.sampling, torch.device("cpu"), 8, "auto") is None
    assert select_kernel(r.model, r.sampling, torch.device("cpu"), 8, "eager") is None


def test_kernel_mode_is_validated():
    assert load_config(None, ["render.kernel=eager"]).render.kernel == "eager"
    with pytest.raises(ConfigError, match="render.kernel"):
        load_config(None, ["render.kernel=cuda"])


def test_unsupported_networks_fall_back_or_fail_with_a_reason():
    wide = CPPN(load_config(None, ["network.hidden=[256]"]).network, 0)
    assert "wider" in unsupported_reason(wide)
    assert unsupported_reason(CPPN(load_config().network, 0)) is None
    cfg = small_config(16, 16, "network.hidden=[256]")
    r, _ = renderer_for(cfg)
    with pytest.raises(UserError, match="render.kernel=triton"):
        select_kernel(r.model, r.sampling, torch.device("cpu"), 8, "triton")


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") == "1", reason="this process interprets Triton")
def test_asking_for_the_kernel_on_a_cpu_without_the_interpreter_is_a_user_error():
    cfg = small_config(16, 16, "render.kernel=triton")
    with pytest.raises(UserError, match="render.kernel=triton"):
        renderer_for(cfg)


def test_out_of_memory_halves_the_batch_and_retries(monkeypatch):
    """The PyTorch path on CUDA: an out-of-memory error halves the piece and retries (simulated here)."""
    cfg = small_config(200, 40)
    r, _ = renderer_for(cfg)
    win = Window(0, 0, 200, 40)
    ref = r.render_window(win)
    r.chunk = 2**62  # as on CUDA: the whole window at once
    evaluate = r.model.evaluate
    sizes = []

    def tight(x, y):
        sizes.append(x.shape[0])
        if x.shape[0] > 3000:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return evaluate(x, y)

    monkeypatch.setattr(r.model, "evaluate", tight)
    dst = torch.zeros((40, 200, 3), dtype=torch.uint8)
    r.fill(dst, win)
    assert np.array_equal(dst.numpy(), ref)
    assert sizes[0] == 8000 and r.chunk <= 3000
    assert sum(s for s in sizes if s <= 3000) == 8000  # every pixel once, once it fits


@needs_triton
def test_a_kernel_that_fails_falls_back_to_pytorch_under_auto():
    """Under "auto" any failure to build or check the kernel means PyTorch, with a warning; "triton" raises.

    Here the failure is real: CUDA is asked for on a machine without it, so the parameters cannot move there.
    """
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    r, _ = renderer_for(small_config(16, 16))
    with pytest.warns(RuntimeWarning, match="rendering with PyTorch"):
        assert select_kernel(r.model, r.sampling, torch.device("cuda"), 8, "auto") is None
    with pytest.raises(Exception):
        select_kernel(r.model, r.sampling, torch.device("cuda"), 8, "triton")


@pytest.mark.triton
@needs_triton
def test_pyramid_levels_go_through_the_kernel_within_one_level(interpreted):
    """Backend.render_many on a kernel backend (CUDA, or here the interpreter) is the fused level kernel."""
    levels = interpreted["_levels"]
    assert len(levels) == 45
    for case, r in levels.items():
        assert r["kernel"] == "triton" and r["same_shape"], case
        assert r["max_levels"] <= 1, case
        assert r["differing"] < 0.02, case


@pytest.mark.triton
@needs_triton
def test_the_kernel_fails_on_colours_that_are_not_finite_where_pytorch_does(interpreted):
    """A NaN clamped in the kernel became 0 or 1 (min and max return the other operand) and the render
    exited 0; the kernel now counts colours that are not finite before the clamp, per launch, as the PyTorch
    path checks each batch, and the error names the same window."""
    outcomes = interpreted["_finite"]
    assert any(e == "finite" for e, _ in outcomes.values()) and any(e != "finite" for e, _ in outcomes.values())
    for case, (eager, fused) in outcomes.items():
        assert fused == eager, case


PADDED_CHILD = r"""
import json, warnings
import numpy as np, torch
warnings.simplefilter("ignore")
from bigcppn.config import load_config
from bigcppn.core.geometry import Window
from bigcppn.errors import RenderError
from bigcppn.network.strips import renderer_for
from bigcppn.network.triton.kernel import FusedKernel
SETS = ["network.hidden=[1,1,1,1,1,1,1]", 'network.activation="abs"', "network.bias=false",
        'network.output_activation="sigmoid"', "network.weight_scale=1e6"]
cfg = load_config(None, SETS, {"canvas.width": 16, "canvas.height": 16, "render.device": "cpu", "seed": 2})
eager, _plan = renderer_for(cfg)
a = eager.render_window(Window(0, 0, 16, 16))
kern = FusedKernel(eager.model, eager.sampling, torch.device("cpu"))
try:
    b = kern(torch.empty((16, 16, 3), dtype=torch.uint8), Window(0, 0, 16, 16)).numpy()
    out = {"fused": "finite", "max_levels": int(np.abs(a.astype(int) - b.astype(int)).max())}
except RenderError as exc:
    out = {"fused": str(exc)}
print(json.dumps({"levels": sorted(int(v) for v in np.unique(a)), **out}))
"""


@pytest.mark.triton
@needs_triton
def test_an_infinite_hidden_value_does_not_make_the_kernels_padding_nan():
    """A layer narrower than its tile (here 1 unit, padded to 16) whose value overflowed to inf: PyTorch's
    sigmoid takes +-inf to 1 or 0 and renders, but the kernel's padding columns were inf x 0 = NaN, which the
    next layer's dot spread to every colour, so the kernel refused a render that PyTorch makes."""
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    res = subprocess.run([sys.executable, "-c", PADDED_CHILD], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    r = json.loads(res.stdout.strip().splitlines()[-1])
    assert r["levels"] == [0, 255]  # PyTorch: saturated colours, finite
    assert r["fused"] == "finite" and r["max_levels"] == 0, r
