"""The fused kernel: the whole CPPN forward pass in one Triton program per block of pixels.

On a GPU the PyTorch path spends its time moving activations through memory:
every layer reads and writes a (pixels, width) tensor. This kernel keeps the
whole network in registers instead. Each program takes ``BLOCK`` pixels of a
window, makes their float64 coordinates from the global pixel indices exactly
as :meth:`bigcppn.network.backend.Sampling.axis` does, runs the first layer in float64
and the rest in float32, applies the output activation and colour mode,
quantises to uint8 or uint16 as :func:`~bigcppn.network.backend.quantise_` does (``floor(v * 255 + 0.5)``)
and stores the pixels straight into an (height, width, bands) array.

The kernel source is generated per network *shape* (inputs, widths,
activations, output activation, colour, depth). Each hidden layer is a
[BLOCK, width] float32 tile (widths padded to a power of two, at least 16):
the activation, then ``tl.dot`` with the next layer's weights in IEEE float32,
which Triton lowers to plain FMAs, never TF32. The weights are data, passed as a
float64 buffer (coordinate transform and first layer) and a float32 buffer (the
rest), so one compiled kernel serves every seed of a shape, and integers are
not specialised, so every canvas too. It uses the folded parameters of :meth:`CPPN.evaluate`
(:attr:`CPPN.fast_wt`, :attr:`CPPN.fast_b`, :attr:`CPPN.fast_core`: every tanh
as a sigmoid), and folds -log2(e) into each layer that feeds a sigmoid, which
leaves ``1 / (1 + 2^v)``: on CUDA one ``ex2.approx`` and one ``rcp.approx``.

Measured offline (Triton 3.9 compiling for sm_90 on this project's 2-core CPU,
the article's network): 3608 SASS instructions per pixel of which 2064 FFMA, 104
registers, no spills, compiled in ~4 s. Unrolling every neuron into scalar
multiply-adds instead gave ~2900-3400 instructions per pixel but took 25-55 s to
compile (Triton's coalescing pass on ~15k operations), per shape.

Under ``TRITON_INTERPRET=1`` (set before the process starts) the same source
runs in Triton's interpreter on CPU tensors: slow, but it lets the tests check
the kernel against the PyTorch reference without a GPU. Triton is imported only
when a kernel is built, so the CPU path never pays for it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import math
import os
import sys
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np
import torch

from ...core.atomic import write_atomic
from ...core.geometry import axis_offset
from ...errors import UserError
from ..devices import policy_for
from ..model import CPPN, not_finite, pixels_text
from ...core.geometry import Window
from .source import Shape, generate

__all__ = ["FusedKernel", "KERNEL_MODES", "select_kernel", "unsupported_reason", "triton_missing"]

KERNEL_MODES = ("auto", "triton", "eager")

# Layers are [BLOCK, width] tiles in registers; past this width the tiles get
# too small to pay and the PyTorch path (cuBLAS) is the better tool.
MAX_WIDTH = 128

_ACTS = ("tanh", "sigmoid", "sin", "gauss", "relu", "softplus", "abs", "identity")


def triton_missing() -> str | None:
    """Why Triton cannot be used here, or None when it imports."""
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401  (a broken install fails here)
    except Exception as exc:  # ImportError, or a broken install
        return f"triton is not available ({exc.__class__.__name__}: {exc}); pip install triton"
    return None


def unsupported_reason(model: CPPN) -> str | None:
    """Why the kernel cannot run this network, or None when it can."""
    for act in (*model.fast_core, model.net.output_activation):
        if act not in _ACTS:
            return f"activation '{act}' has no kernel version"
    widest = max(model.net.hidden, default=0)
    if widest > MAX_WIDTH:
        return f"a hidden layer of {widest} is wider than the kernel's tiles ({MAX_WIDTH})"
    return None


# --------------------------------------------------------------------------- code generation


def pack_parameters(model: CPPN, shape: Shape, sampling) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernel's two parameter buffers, on the CPU, zero-padded to the tile widths.

    float64: (offset, pitch, center) of x, of y (without the repeated pitch),
    then the first layer's weights (inputs, outputs) and bias. float32: every
    later layer's weights (inputs, outputs) then bias. Each layer is scaled by
    its :attr:`Shape.layer_scales` factor, in float64 before any rounding.
    Padding is zero, so padded columns never reach a real output.
    """
    P = shape.padded
    scales = shape.layer_scales
    ox, pitch, cx = axis_params(sampling, True)
    oy, _, cy = axis_params(sampling, False)
    w0 = torch.zeros(P[0] + 1, P[1], dtype=torch.float64)
    w0[: P[0], : shape.widths[1]] = model.fast_wt[0].detach().cpu().double()
    w0[P[0], : shape.widths[1]] = model.fast_b[0].detach().cpu().double()
    p64 = torch.cat([torch.tensor([ox, pitch, cx, oy, cy], dtype=torch.float64), (w0 * scales[0]).reshape(-1)])
    p32 = []
    for i in range(1, len(shape.widths) - 1):
        wi = torch.zeros(P[i] + 1, P[i + 1], dtype=torch.float64)
        wi[: shape.widths[i], : shape.widths[i + 1]] = model.fast_wt[i].detach().cpu().double()
        wi[P[i], : shape.widths[i + 1]] = model.fast_b[i].detach().cpu().double()
        p32.append((wi * scales[i]).float().reshape(-1))
    return p64, (torch.cat(p32) if p32 else torch.zeros(1))


def _cache_dir() -> Path:
    d = Path(tempfile.gettempdir()) / f"bigcppn-kernels-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    d.mkdir(parents=True, exist_ok=True)
    return d


_FUNCTIONS: dict[tuple[str, bool], object] = {}

# Triton's interpreter keeps a launch's state in the process, not in the kernel:
# it patches triton.language's functions for the launch (and restores them at
# its end) and holds the program id in one module-level builder. Two launches
# in two threads, even of different kernels, break each other (seen: the
# unpatched functions raise "Did you forget to add @triton.jit ?"), so under the
# interpreter every kernel of the process takes this one lock; compiled
# kernels take their own.
_INTERPRETER_LOCK = threading.Lock()


def interpreting() -> bool:
    """Whether Triton runs kernels in its interpreter (``TRITON_INTERPRET=1``).

    Triton reads the variable when ``triton.language`` is imported (its own
    functions, such as ``tl.sigmoid``, are wrapped then), so it must be set
    before the process imports Triton; a process either interprets or compiles.
    """
    import triton

    knobs = getattr(triton, "knobs", None)
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def _function(shape: Shape, level: bool = False):
    """The Triton function for ``shape`` (jit-compiled, or interpreted under ``TRITON_INTERPRET=1``).

    Triton reads a kernel's source with ``inspect``, so the generated source is
    written to a file (named by its hash, in a per-user temp folder) and imported.
    """
    import triton

    src = generate(shape, cuda=not interpreting(), level=level)
    key = hashlib.sha256(src.encode()).hexdigest()[:20]
    interpret = interpreting()
    if (key, interpret) in _FUNCTIONS:
        return _FUNCTIONS[(key, interpret)]
    path = _cache_dir() / f"cppn_{key}.py"
    if not path.exists() or path.read_text() != src:
        write_atomic(path, src)
    name = f"bigcppn_kernel_{key}"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    # Integers are not specialised (on divisibility by 16, or being 1): one
    # compilation per shape, whatever the canvas, window or strip.
    ints = ["x0", "y0", "width", "n", "row_stride"]
    try:
        fn = triton.jit(module.cppn_level if level else module.cppn_kernel, do_not_specialize=ints,
                        do_not_specialize_on_alignment=["out_ptr"])
    except TypeError:  # a Triton without do_not_specialize_on_alignment
        fn = triton.jit(module.cppn_level if level else module.cppn_kernel, do_not_specialize=ints)
    _FUNCTIONS[(key, interpret)] = fn
    return fn


# --------------------------------------------------------------------------- launching


def axis_params(sampling, horizontal: bool) -> tuple[float, float, float]:
    """(offset, pitch, center) with plane = (index + offset) * pitch + center, as Sampling.axis computes it."""
    size = sampling.canvas.width if horizontal else sampling.canvas.height
    center = sampling.view.center_x if horizontal else sampling.view.center_y
    return axis_offset(size), sampling.view.pitch(sampling.canvas), center


class FusedKernel:
    """The fused forward pass of one network on one canvas and device.

    Call it with a device tensor ``out`` of shape (height, width, bands) (rows
    may be strided, pixels must be packed) and a :class:`Window`: it fills
    ``out`` with the window's pixels, uint8 for 8-bit, uint16 for 16-bit, or
    raises RenderError naming the window when a colour in it is not finite.
    """

    def __init__(self, model: CPPN, sampling, device: torch.device, depth: int = 8,
                 block: int | None = None, num_warps: int | None = None) -> None:
        reason = unsupported_reason(model)
        if reason:
            raise ValueError(reason)
        self.shape = Shape.of(model, depth)
        self.device = torch.device(device)
        self.interpret = interpreting()
        if not policy_for(self.device).compiles_kernel and not self.interpret:
            raise ValueError("the kernel runs on a CPU only in Triton's interpreter: set TRITON_INTERPRET=1 "
                             "before the process starts")
        self.dtype = torch.uint8 if depth == 8 else torch.uint16
        self.bands = self.shape.bands
        if self.interpret:
            # The interpreter pays per operation, not per pixel: big blocks.
            self.block, self.num_warps = block or 4096, num_warps or 4
        else:
            # About 16 tile values per thread (the article's network: 128 pixels, 4 warps, no spills).
            self.num_warps = num_warps or 4
            self.block = block or max(16, min(128, 32 * self.num_warps * 16 // max(self.shape.padded[1:])))
        p64, p32 = pack_parameters(model, self.shape, sampling)
        self.p64, self.p32 = p64.to(self.device), p32.to(self.device)
        self.fn = _function(self.shape)
        self.size = (sampling.canvas.width, sampling.canvas.height)
        self._level_fn = None  # the pyramid-level kernel, built at its first use
        # Multiply-adds fused into FMAs (Triton 3.10 turns this off by default).
        self._options = {} if self.interpret else {"enable_fp_fusion": True}
        self._lock = _INTERPRETER_LOCK if self.interpret else threading.Lock()

    def __call__(self, out: torch.Tensor, win: Window) -> torch.Tensor:
        if tuple(out.shape) != (win.height, win.width, self.bands) or out.dtype != self.dtype:
            raise ValueError(f"kernel output must be ({win.height}, {win.width}, {self.bands}) {self.dtype}, "
                             f"got {tuple(out.shape)} {out.dtype}")
        if out.stride(2) != 1 or out.stride(1) != self.bands:
            raise ValueError("kernel output must have packed pixels (the rows may be strided)")
        n = win.pixels
        if n == 0:
            return out
        row_stride = out.stride(0)
        last = (win.height - 1) * row_stride + win.width * self.bands
        i64 = n + self.block >= 2**31 or last + self.block * self.bands >= 2**31
        grid = (math.ceil(n / self.block),)
        bad = torch.zeros(1, dtype=torch.int32, device=self.device)
        with self._lock:  # a launch is quick; the first one compiles, once, whichever thread gets there
            self.fn[grid](out, bad, self.p64, self.p32, win.x, win.y, win.width, n, row_stride,
                          BLOCK=self.block, I64=i64, num_warps=self.num_warps, **self._options)
        if bad.item():  # (waits for the launch, as the PyTorch path's check does for each batch)
            raise not_finite(pixels_text(win.x, win.y, win.width, win.height))
        return out

    def level(self, out: torch.Tensor, win: Window, shift: int, k: int) -> torch.Tensor:
        """Fill ``out`` ((height, width, bands) uint8 on the device) with a window of a pyramid level.

        ``shift`` is the level's scale (one pixel spans 2**shift base pixels),
        ``k``×``k`` samples per pixel are averaged: what
        :meth:`bigcppn.network.backend.Backend.render_many` computes with PyTorch.
        """
        if tuple(out.shape) != (win.height, win.width, self.bands) or out.dtype != torch.uint8:
            raise ValueError(f"level output must be ({win.height}, {win.width}, {self.bands}) uint8")
        n = win.pixels
        if n == 0:
            return out
        if self._level_fn is None:
            self._level_fn = _function(dataclasses.replace(self.shape, depth=8), level=True)
        w, h = self.size
        lim = (float(w), float(h)) if shift > 0 else (math.inf, math.inf)
        sub = (torch.arange(k, dtype=torch.float64) + 0.5) / k
        lv = torch.cat([torch.tensor([2.0**shift, *lim, w / 2, h / 2], dtype=torch.float64), sub]).to(self.device)
        row_stride = out.stride(0)
        last = (win.height - 1) * row_stride + win.width * self.bands
        i64 = n + self.block >= 2**31 or last + self.block * self.bands >= 2**31
        grid = (math.ceil(n / self.block),)
        bad = torch.zeros(1, dtype=torch.int32, device=self.device)
        with self._lock:
            self._level_fn[grid](out, bad, self.p64, self.p32, lv, win.x, win.y, win.width, n, row_stride,
                                 BLOCK=self.block, I64=i64, K=k, num_warps=self.num_warps, **self._options)
        if bad.item():
            raise not_finite(pixels_text(win.x, win.y, win.width, win.height, shift))
        return out


    @torch.no_grad()
    def check(self, model: CPPN, sampling) -> None:
        """Compile (the first launch) and compare an 8x8 window with the PyTorch path; raise if they differ."""
        canvas = sampling.canvas
        w, h = min(8, canvas.width), min(8, canvas.height)
        win = Window((canvas.width - w) // 2, (canvas.height - h) // 2, w, h)
        out = torch.empty((h, w, self.bands), dtype=self.dtype, device=self.device)
        self(out, win)
        xs = sampling.axis(win.x, w, True, self.device)
        ys = sampling.axis(win.y, h, False, self.device)
        scale, level = (255.0, 1) if self.shape.depth == 8 else (65535.0, 257)
        ref = model.evaluate(xs.repeat(h), ys.repeat_interleave(w)).mul_(scale).add_(0.5).floor_()
        # Compared on the host: CUDA has few operations for uint16 tensors.
        got = out.cpu().numpy().reshape(-1, self.bands).astype(np.float64)
        diff = float(np.abs(got - ref.double().cpu().numpy()).max())
        if not diff <= level:
            raise RuntimeError(f"the fused kernel is {diff / level:.1f} 8-bit levels off the PyTorch path")


def select_kernel(model: CPPN, sampling, device: torch.device, depth: int, mode: str) -> FusedKernel | None:
    """The fused kernel a :class:`~bigcppn.network.backend.Backend` should use, or None for the PyTorch path.

    ``auto`` uses it where Triton compiles it (CUDA: the device policy's
    :attr:`~bigcppn.network.devices.DevicePolicy.compiles_kernel`) when Triton
    imports and the network is supported; ``triton`` insists (on a CPU it runs
    in Triton's interpreter: for tests, slow); ``eager`` never uses it. The kernel is compiled and checked against
    PyTorch on a few pixels here; under ``auto`` a failure falls back to PyTorch
    with a warning.
    """
    if mode not in KERNEL_MODES:
        raise ValueError(f"unknown kernel mode {mode!r}")
    compiles = policy_for(device).compiles_kernel
    if mode == "eager" or (mode == "auto" and not compiles):
        return None
    reason = triton_missing() or unsupported_reason(model)
    if reason is None and not compiles and not interpreting():
        reason = "on a CPU the kernel runs only in Triton's interpreter; set TRITON_INTERPRET=1 before starting"
    if reason is not None:
        if mode == "triton":
            raise UserError(f"render.kernel=triton cannot be used: {reason}; use render.kernel=auto or eager")
        return None
    try:
        kernel = FusedKernel(model, sampling, device, depth)
        kernel.check(model, sampling)
    except Exception as exc:
        if mode == "triton":
            raise
        warnings.warn(f"the fused Triton kernel failed ({exc.__class__.__name__}: {exc}); "
                      "rendering with PyTorch instead", RuntimeWarning, stacklevel=2)
        return None
    return kernel
