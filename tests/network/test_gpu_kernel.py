"""The CUDA path: the fused kernel against PyTorch on the GPU, pinned strips, double buffering, OOM retries.

Run on a GPU box with ``python3 -m pytest -m gpu``. Every test skips with its
reason where CUDA or Triton is missing, or where this process interprets
Triton (``TRITON_INTERPRET=1``: the interpreter tests live in test_kernel.py).
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
import torch

from bigcppn.config import load_config
from bigcppn.core.geometry import Window
from bigcppn.core.tiling import make_tiling
from bigcppn.network.strips import Renderer, StripStream, renderer_for
from bigcppn.network.backend import strip_workers

from test_kernel import random_overrides


def _cuda_kernel_missing() -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA device"
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed"
    if os.environ.get("TRITON_INTERPRET") == "1":
        return "TRITON_INTERPRET=1: this process interprets Triton; run -m gpu in a process of its own"
    return None


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(_cuda_kernel_missing() is not None,
                                                  reason=str(_cuda_kernel_missing()))]
CUDA = torch.device("cuda")


def config(w, h, *sets, **extra):
    values = {"canvas.width": w, "canvas.height": h, "render.device": "cuda"}
    values.update({k.replace("__", "."): v for k, v in extra.items()})
    return load_config(None, list(sets), values)


def both(cfg, tile=None, batch=None):
    """The canvas rendered on CUDA by the fused kernel and by PyTorch."""
    fused, plan = renderer_for(cfg, CUDA)
    eager = Renderer(fused.model, plan.canvas, fused.sampling.view, CUDA, depth=cfg.output.depth, kernel="eager")
    if tile or batch:
        plan = make_tiling(plan.canvas, tile or plan.tile, batch or plan.batch_pixels)
    return fused, eager, fused.render(plan), eager.render(plan)


def levels(a, b, depth):
    return np.abs(a.astype(np.int64) - b.astype(np.int64)) / (257 if depth == 16 else 1)


@pytest.mark.parametrize("sets", [[], ["output.depth=16"], ["network.color=\"grey\""], ["network.color=\"hsv\""],
                                  ["network.activation=\"sin\"", "network.output_activation=\"tanh\""],
                                  ["view.zoom=1e9", "view.center=[0.123456789, -0.3]"],
                                  ["network.hidden=[128, 64, 32, 16, 8, 4, 2]"]],
                         ids=["article", "16bit", "grey", "hsv", "sin", "deep-zoom", "wide"])
def test_kernel_matches_pytorch_on_cuda(sets):
    cfg = config(1000, 600, *sets)
    fused, eager, got, ref = both(cfg)
    assert fused.kernel == "triton" and eager.kernel == "eager"
    assert got.shape == ref.shape and got.dtype == ref.dtype
    d = levels(got, ref, cfg.output.depth)
    assert d.max() <= 1.0, f"{d.max():.2f} levels apart"
    assert (d > 0).mean() < 0.05


@pytest.mark.parametrize("seed", range(6))
def test_kernel_matches_pytorch_on_random_networks(seed):
    cfg = config(257, 131, *random_overrides(seed))
    _, _, got, ref = both(cfg)
    assert levels(got, ref, cfg.output.depth).max() <= 1.0


def test_kernel_matches_the_cpu_render():
    cfg = config(512, 384)
    gpu, _ = renderer_for(cfg, CUDA)
    cpu, plan = renderer_for(cfg, torch.device("cpu"))
    assert levels(gpu.render(plan), cpu.render(plan), 8).max() <= 1.0


def test_kernel_pixels_do_not_depend_on_tiles_or_batches():
    cfg = config(700, 300)
    r, plan = renderer_for(cfg, CUDA)
    whole = r.render(make_tiling(plan.canvas, 1024, 2**20))
    for tile, batch in ((64, 1), (256, 3 * 256 * 256)):
        assert np.array_equal(r.render(make_tiling(plan.canvas, tile, batch)), whole)


def test_eager_cuda_path_is_tile_invariant_and_strips_are_pinned():
    cfg = config(300, 200, **{"render.kernel": "eager"})
    r, plan = renderer_for(cfg, CUDA)
    assert r.kernel == "eager"
    whole = r.render(make_tiling(plan.canvas, 300, 300 * 300))
    tiled = r.render(make_tiling(plan.canvas, 64, 3 * 64 * 64))
    assert levels(tiled, whole, 8).max() <= 1.0
    strip = r.render_strip(plan.strip(0))
    assert torch.from_numpy(strip).is_pinned(), "strips come from pinned host memory"


def test_two_workers_hand_strips_on_in_order():
    cfg = config(640, 1000, **{"render.tile": 64})
    r, plan = renderer_for(cfg, CUDA)
    assert strip_workers(CUDA) == 2
    streamed = np.concatenate(list(StripStream(r, plan, queue_size=2, workers=2)))
    assert np.array_equal(streamed, r.render(plan))


def test_a_real_out_of_memory_halves_the_batch():
    """Cap this process's CUDA memory, ask for a batch far too big: the PyTorch path halves it and finishes."""
    cfg = config(4096, 512, **{"render.kernel": "eager", "render.tile": 512, "render.batch": 4096 * 512})
    r, plan = renderer_for(cfg, CUDA)
    ref = r.render(make_tiling(plan.canvas, 512, 65536))  # small batches: fits anyway
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    used = torch.cuda.memory_reserved()
    torch.cuda.set_per_process_memory_fraction(min(1.0, (used + 200 * 2**20) / total))
    try:
        r.chunk = 2**62
        got = r.render(plan)  # 2 MPix at once needs ~400 MB
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    assert r.chunk < 4096 * 512
    assert levels(got, ref, 8).max() <= 1.0


def test_64_bit_indexing_gives_the_same_pixels():
    cfg = config(333, 77)
    r, plan = renderer_for(cfg, CUDA)
    k = r.fused
    ref = torch.empty((77, 333, 3), dtype=torch.uint8, device=CUDA)
    k(ref, Window(0, 0, 333, 77))
    o64 = torch.zeros_like(ref)
    n = 333 * 77
    bad = torch.zeros(1, dtype=torch.int32, device=CUDA)
    k.fn[(-(-n // k.block),)](o64, bad, k.p64, k.p32, 0, 0, 333, n, 333 * 3, BLOCK=k.block, I64=True,
                               num_warps=k.num_warps, enable_fp_fusion=True)
    assert torch.equal(o64, ref)


@pytest.mark.parametrize("sets", [[], ["network.color=\"hsv\""], ["view.zoom=1e6"]])
def test_pyramid_levels_go_through_the_fused_kernel(sets):
    """Backend.render_many on CUDA uses the level kernel; it agrees with PyTorch within one level."""
    cfg = config(1000, 700, *sets)
    fused, _plan = renderer_for(cfg, CUDA)
    eager = Renderer(fused.model, fused.canvas, fused.sampling.view, CUDA, kernel="eager")
    assert fused.kernel == "triton"
    rects = [(0, 100, 50, 254, 254), (1, 0, 0, 500, 350), (3, 120, 80, 5, 8), (-3, 8000, 5000, 256, 256)]
    for k in (1, 2, 4):
        for a, b in zip(eager.render_many(rects, k), fused.render_many(rects, k)):
            assert a.shape == b.shape and levels(b, a, 8).max() <= 1.0


def test_the_kernel_fails_on_colours_that_are_not_finite_on_cuda():
    """test_kernel's NaN case, compiled: the corner windows fail as PyTorch's do, the others render."""
    from bigcppn.errors import RenderError
    from bigcppn.network.triton.kernel import FusedKernel

    cfg = config(512, 512, "network.hidden=[16,16,16,16,16,16]", 'network.activation="identity"',
                 "network.bias=false", 'network.output_activation="sin"', "network.weight_scale=1e5",
                 'render.kernel="eager"', seed=23)
    eager, _plan = renderer_for(cfg, CUDA)  # PyTorch; the kernel is built apart, without its check (chaotic sin)
    k = FusedKernel(eager.model, eager.sampling, CUDA)
    for x, y in ((0, 0), (224, 224), (448, 448)):
        win = Window(x, y, 64, 64)
        outcomes = []
        for fn in (lambda: eager.render_window(win),
                   lambda: k(torch.empty((64, 64, 3), dtype=torch.uint8, device=CUDA), win)):
            try:
                fn()
                outcomes.append("finite")
            except RenderError as exc:
                outcomes.append(str(exc))
        assert outcomes[0] == outcomes[1], (x, y, outcomes)
