"""The fused kernel: the whole CPPN forward pass in one Triton program per block of pixels.

On a GPU the PyTorch path spends its time moving activations through memory:
every layer reads and writes a (pixels, width) tensor. This kernel keeps the
whole network in registers instead. Each program takes ``BLOCK`` pixels of a
window, makes their float64 coordinates from the global pixel indices exactly
as :meth:`bigcppn.render.Sampling.axis` does, runs the first layer in float64
and the rest in float32, applies the output activation and colour mode,
quantises to uint8 or uint16 the way the renderer does (``floor(v * 255 + 0.5)``)
and stores the pixels straight into an (height, width, bands) array.

The kernel source is generated per network *shape* (inputs, widths,
activations, output activation, colour, depth): every layer is unrolled into
scalar multiply-adds over ``[BLOCK]`` vectors, one vector per neuron. The
weights are data, passed as a float64 buffer (coordinate transform and first
layer) and a float32 buffer (the rest), so one compiled kernel serves every
seed of a shape. It uses the renderer's folded parameters (:attr:`CPPN.fast_wt`,
:attr:`CPPN.fast_b`, :attr:`CPPN.fast_core`: every tanh as a sigmoid).

On a CPU tensor the same source runs in Triton's interpreter (what
``TRITON_INTERPRET=1`` selects): slow, but it lets the tests check the kernel
against the PyTorch reference without a GPU. Triton is imported only when a
kernel is built, so the CPU path never pays for it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import UserError
from .model import CPPN
from .plan import Window

__all__ = ["FusedKernel", "KERNEL_MODES", "select_kernel", "unsupported_reason", "triton_missing"]

KERNEL_MODES = ("auto", "triton", "eager")

# Unrolled code grows with the multiply-adds and registers with the widest
# layer (its inputs and outputs are all live at once); past these the PyTorch
# path (cuBLAS for wide layers) is the better tool.
MAX_MACS = 16384
MAX_LIVE = 96  # inputs + outputs of the widest layer

_ACTS = ("tanh", "sigmoid", "sin", "gauss", "relu", "softplus", "abs", "identity")


def triton_missing() -> str | None:
    """Why Triton cannot be used here, or None when it imports."""
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install
        return f"triton is not available ({exc.__class__.__name__}: {exc}); pip install triton"
    return None


def unsupported_reason(model: CPPN) -> str | None:
    """Why the kernel cannot run this network, or None when it can."""
    widths = [len(model.spatial), *model.net.hidden, model.bands]
    for act in (*model.fast_core, model.net.output_activation):
        if act not in _ACTS:
            return f"activation '{act}' has no kernel version"
    macs = sum(a * b for a, b in zip(widths, widths[1:]))
    if macs > MAX_MACS:
        return f"the network has {macs} multiply-adds per pixel, more than the kernel unrolls ({MAX_MACS})"
    live = max(a + b for a, b in zip(widths[1:], widths[2:])) if len(widths) > 2 else 0
    if live > MAX_LIVE:
        return f"a layer of {live} inputs + outputs would not fit in registers (at most {MAX_LIVE})"
    return None


# --------------------------------------------------------------------------- code generation


def _act(name: str, v: str) -> str:
    """Triton expression of activation ``name`` applied to the float32 vector ``v``."""
    return {
        "tanh": f"2.0 * tl.sigmoid(2.0 * {v}) - 1.0",
        "sigmoid": f"tl.sigmoid({v})",
        "sin": f"tl.sin({v})",
        "gauss": f"tl.exp(-({v} * {v}))",
        "relu": f"tl.maximum({v}, 0.0)",
        # torch's softplus: x past its threshold of 20, else log(1 + exp(x)).
        "softplus": f"tl.where({v} > 20.0, {v}, tl.log(1.0 + tl.exp(tl.minimum({v}, 20.0))))",
        "abs": f"tl.abs({v})",
        "identity": f"{v}",
    }[name]


@dataclass(frozen=True)
class Shape:
    """Everything the generated source depends on (the weights are data)."""

    spatial: tuple[str, ...]
    widths: tuple[int, ...]  # spatial inputs, hidden widths..., network outputs
    core: tuple[str, ...]  # hidden activations, tanh folded into sigmoid
    output_activation: str
    color: str
    depth: int

    @classmethod
    def of(cls, model: CPPN, depth: int) -> "Shape":
        widths = (len(model.spatial), *model.net.hidden, model.bands)
        return cls(tuple(model.spatial), widths, tuple(model.fast_core), model.net.output_activation,
                   model.net.color, depth)

    @property
    def bands(self) -> int:
        return 1 if self.color == "grey" else 3

    @property
    def p64_size(self) -> int:
        return 5 + self.widths[0] * self.widths[1] + self.widths[1]

    @property
    def p32_size(self) -> int:
        return sum(a * b + b for a, b in zip(self.widths[1:], self.widths[2:]))


def generate(shape: Shape) -> str:
    """Python source of the Triton kernel for one network shape."""
    w = shape.widths
    L = [
        "import triton",
        "import triton.language as tl",
        "",
        "",
        "def cppn_kernel(out_ptr, p64, p32, x0, y0, width, n, row_stride, BLOCK: tl.constexpr, I64: tl.constexpr):",
        "    pid = tl.program_id(0)",
        "    if I64:",
        "        pid = pid.to(tl.int64)",
        "    p = pid * BLOCK + tl.arange(0, BLOCK)",
        "    mask = p < n",
        "    row = p // width",
        "    col = p - row * width",
        # Sampling.axis: (index + (0.5 - size / 2)) * pitch + center, in float64.
        "    x = ((col + x0).to(tl.float64) + tl.load(p64 + 0)) * tl.load(p64 + 1) + tl.load(p64 + 2)",
        "    y = ((row + y0).to(tl.float64) + tl.load(p64 + 3)) * tl.load(p64 + 1) + tl.load(p64 + 4)",
    ]
    feats = []
    for name in shape.spatial:
        if name == "r":
            L.append("    r = tl.sqrt(x * x + y * y)")
        feats.append(name)
    # Layer 0 in float64: b + sum_k f_k * W[k, j]; W stored (inputs, outputs) row-major.
    wofs, bofs = 5, 5 + w[0] * w[1]
    h = []
    for j in range(w[1]):
        expr = f"tl.load(p64 + {bofs + j})"
        terms = [f"{f} * tl.load(p64 + {wofs + k * w[1] + j})" for k, f in enumerate(feats)]
        if terms:
            expr = f"({' + '.join(terms)}) + {expr}"
        else:  # only z among the inputs: the first layer is its (folded) bias
            expr = f"tl.zeros([BLOCK], tl.float64) + {expr}"
        L.append(f"    a0_{j} = ({expr}).to(tl.float32)")
        h.append(f"a0_{j}")
    # Hidden layers in float32: activation, then the next layer's multiply-adds.
    ofs = 0
    for i in range(1, len(w) - 1):
        act = shape.core[i - 1]
        acts = []
        for j, v in enumerate(h):
            L.append(f"    h{i}_{j} = {_act(act, v)}")
            acts.append(f"h{i}_{j}")
        n_in, n_out = w[i], w[i + 1]
        bofs = ofs + n_in * n_out
        h = []
        for j in range(n_out):
            acc = f"a{i}_{j}"
            L.append(f"    {acc} = tl.load(p32 + {bofs + j})")
            for k, v in enumerate(acts):
                L.append(f"    {acc} += {v} * tl.load(p32 + {ofs + k * n_out + j})")
            h.append(acc)
        ofs = bofs + n_out
    # Output activation to [0, 1] (signed ones as (v + 1) / 2), clamped, as CPPN._finish.
    outs = []
    for j, v in enumerate(h):
        oa = shape.output_activation
        if oa == "tanh":
            e = f"tl.sigmoid(2.0 * {v})"  # (tanh(v) + 1) / 2
        elif oa == "sin":
            e = f"(tl.sin({v}) + 1.0) * 0.5"
        else:
            e = _act(oa, v)
        L.append(f"    o{j} = tl.minimum(tl.maximum({e}, 0.0), 1.0)")
        outs.append(f"o{j}")
    if shape.color == "hsv":  # model.hsv_to_rgb
        L.append("    h6 = (o0 - tl.floor(o0)) * 6.0")
        for c, k in enumerate((5.0, 3.0, 1.0)):
            L.append(f"    k{c} = h6 + {k}")
            L.append(f"    k{c} = k{c} - tl.floor(k{c} / 6.0) * 6.0")
            L.append(f"    c{c} = o2 - o2 * o1 * tl.minimum(tl.maximum(tl.minimum(k{c}, 4.0 - k{c}), 0.0), 1.0)")
        outs = ["c0", "c1", "c2"]
    scale, qtype = ("255.0", "tl.uint8") if shape.depth == 8 else ("65535.0", "tl.uint16")
    L.append(f"    base = row * row_stride + col * {shape.bands}")
    for c, v in enumerate(outs):
        L.append(f"    tl.store(out_ptr + base + {c}, tl.floor({v} * {scale} + 0.5).to({qtype}), mask=mask)")
    return "\n".join(L) + "\n"


def _cache_dir() -> Path:
    d = Path(tempfile.gettempdir()) / f"bigcppn-kernels-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    d.mkdir(parents=True, exist_ok=True)
    return d


_FUNCTIONS: dict[tuple[str, bool], object] = {}


def _function(shape: Shape, interpret: bool):
    """The Triton function for ``shape``: jit-compiled for CUDA, or interpreted on the CPU.

    Triton reads a kernel's source with ``inspect``, so the generated source is
    written to a file (named by its hash, in a per-user temp folder) and imported.
    The wrapper is chosen here rather than by ``TRITON_INTERPRET``, so a process
    can run both kinds (the CPU tests and the CUDA ones).
    """
    src = generate(shape)
    key = hashlib.sha256(src.encode()).hexdigest()[:20]
    if (key, interpret) in _FUNCTIONS:
        return _FUNCTIONS[(key, interpret)]
    path = _cache_dir() / f"cppn_{key}.py"
    if not path.exists() or path.read_text() != src:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(src)
        os.replace(tmp, path)
    name = f"bigcppn_kernel_{key}"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    if interpret:
        from triton.runtime.interpreter import InterpretedFunction

        fn = InterpretedFunction(module.cppn_kernel)
    else:
        from triton.runtime.jit import JITFunction

        fn = JITFunction(module.cppn_kernel)
    _FUNCTIONS[(key, interpret)] = fn
    return fn


# --------------------------------------------------------------------------- launching


def axis_params(sampling, horizontal: bool) -> tuple[float, float, float]:
    """(offset, pitch, center) with plane = (index + offset) * pitch + center, as Sampling.axis computes it."""
    size = sampling.canvas.width if horizontal else sampling.canvas.height
    center = sampling.view.center_x if horizontal else sampling.view.center_y
    return 0.5 - size / 2, sampling.view.pitch(sampling.canvas), center


class FusedKernel:
    """The fused forward pass of one network on one canvas and device.

    Call it with a device tensor ``out`` of shape (height, width, bands) (rows
    may be strided, pixels must be packed) and a :class:`Window`: it fills
    ``out`` with the window's pixels, uint8 for 8-bit, uint16 for 16-bit.
    """

    def __init__(self, model: CPPN, sampling, device: torch.device, depth: int = 8,
                 block: int | None = None, num_warps: int | None = None) -> None:
        reason = unsupported_reason(model)
        if reason:
            raise ValueError(reason)
        self.shape = Shape.of(model, depth)
        self.device = torch.device(device)
        self.interpret = self.device.type != "cuda"
        self.dtype = torch.uint8 if depth == 8 else torch.uint16
        self.bands = self.shape.bands
        w = self.shape.widths
        live = max([a + b for a, b in zip(w[1:], w[2:])] or [w[1] + w[0]])
        if self.interpret:
            # The interpreter pays per operation, not per pixel: big blocks.
            self.block, self.num_warps = block or 4096, num_warps or 4
        else:
            # Pixels per thread so that a layer's inputs and outputs stay in registers.
            per_thread = 4 if live <= 32 else 2 if live <= 64 else 1
            self.num_warps = num_warps or 4
            self.block = block or per_thread * 32 * self.num_warps
        ox, pitch, cx = axis_params(sampling, True)
        oy, _, cy = axis_params(sampling, False)
        head = torch.tensor([ox, pitch, cx, oy, cy], dtype=torch.float64)
        p64 = [head, model.fast_wt[0].detach().double().cpu().reshape(-1),
               model.fast_b[0].detach().double().cpu().reshape(-1)]
        p32 = [t.detach().float().cpu().reshape(-1) for i in range(1, len(model.fast_wt))
               for t in (model.fast_wt[i], model.fast_b[i])]
        self.p64 = torch.cat(p64).to(self.device)
        self.p32 = (torch.cat(p32) if p32 else torch.zeros(1)).to(self.device)
        assert self.p64.numel() == self.shape.p64_size
        assert not p32 or self.p32.numel() == self.shape.p32_size
        self.fn = _function(self.shape, self.interpret)

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
        self.fn[grid](out, self.p64, self.p32, win.x, win.y, win.width, n, row_stride,
                      BLOCK=self.block, I64=i64, num_warps=self.num_warps)
        return out


def select_kernel(model: CPPN, sampling, device: torch.device, depth: int, mode: str) -> FusedKernel | None:
    """The fused kernel the renderer should use, or None for the PyTorch path.

    ``auto`` uses it on CUDA when Triton imports and the network is supported;
    ``triton`` insists (on a CPU it runs in Triton's interpreter: for tests,
    slow); ``eager`` never uses it.
    """
    if mode not in KERNEL_MODES:
        raise ValueError(f"unknown kernel mode {mode!r}")
    if mode == "eager" or (mode == "auto" and device.type != "cuda"):
        return None
    reason = triton_missing() or unsupported_reason(model)
    if reason is not None:
        if mode == "triton":
            raise UserError(f"render.kernel=triton cannot be used: {reason}; use render.kernel=auto or eager")
        return None
    return FusedKernel(model, sampling, device, depth)
