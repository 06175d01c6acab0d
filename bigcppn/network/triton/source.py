"""The fused kernel's source: Triton code generated per network shape.

:func:`generate` writes the Python source of two kernels from one network body
(:func:`_network`): ``cppn_kernel`` samples a window of the canvas at pixel
centres, ``cppn_level`` a window of a pyramid level with ``K``×``K`` samples per
pixel. :class:`Shape` is everything the source depends on; the weights are data
(see :func:`bigcppn.network.triton.kernel.pack_parameters`). No Triton import here: this is text.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import CPPN

__all__ = ["Shape", "generate", "LOG2E"]


def _sigmoid2_ptx(v: str) -> str:
    """1 / (1 + 2^v) as one MUFU.EX2 and one MUFU.RCP (flushing subnormals, which only ever round to 1 or 0 here)."""
    e = f'tl.inline_asm_elementwise("ex2.approx.ftz.f32 $0, $1;", "=f,f", [{v}], dtype=tl.float32, is_pure=True, pack=1)'
    return f'tl.inline_asm_elementwise("rcp.approx.ftz.f32 $0, $1;", "=f,f", [1.0 + {e}], dtype=tl.float32, is_pure=True, pack=1)'


# Activations with a faster CUDA version in inline PTX (which the interpreter cannot run).
_PTX = {"sigmoid2": _sigmoid2_ptx}


def _act(name: str, v: str, cuda: bool) -> str:
    """Triton expression of activation ``name`` applied to the float32 tile ``v``."""
    if cuda and name in _PTX:
        return _PTX[name](v)
    return {
        "tanh": f"2.0 * tl.sigmoid(2.0 * {v}) - 1.0",
        "sigmoid": f"tl.sigmoid({v})",
        # sigmoid of a pre-activation already scaled by -log2(e): 1 / (1 + 2^v).
        "sigmoid2": f"tl.fdiv(1.0, 1.0 + tl.exp2({v}))",
        "sin": f"tl.sin({v})",
        "gauss": f"tl.exp(-({v} * {v}))",
        "relu": f"tl.maximum({v}, 0.0)",
        # torch's softplus: x past its threshold of 20, else log(1 + exp(x)).
        "softplus": f"tl.where({v} > 20.0, {v}, tl.log(1.0 + tl.exp(tl.minimum({v}, 20.0))))",
        "abs": f"tl.abs({v})",
        "identity": f"{v}",
    }[name]


LOG2E = 1.4426950408889634


def _pad(n: int) -> int:
    """A layer width as a tile dimension: a power of two, at least 16 (what tl.dot needs)."""
    return max(16, 1 << (max(1, n) - 1).bit_length())


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
    def padded(self) -> tuple[int, ...]:
        """Tile widths of the layer outputs (index 0, the inputs, is not padded)."""
        return (self.widths[0], *(_pad(w) for w in self.widths[1:]))

    @property
    def layer_scales(self) -> tuple[float, ...]:
        """Factor folded into each layer's weights and bias.

        A layer whose output goes through a sigmoid is scaled by -log2(e), so the
        kernel's sigmoid is ``1 / (1 + 2^v)``: one exp2 and one reciprocal. The
        output tanh is mapped to [0, 1] as (tanh(v) + 1) / 2 = sigmoid(2v).
        """
        scales = [-LOG2E if act == "sigmoid" else 1.0 for act in self.core]
        oa = self.output_activation
        scales.append(-LOG2E if oa == "sigmoid" else -2 * LOG2E if oa == "tanh" else 1.0)
        return tuple(scales)


def _network(shape: Shape, cuda: bool, indent: str) -> list[str]:
    """Lines that take the float64 [BLOCK] coordinates ``x``, ``y`` to ``o``, [BLOCK, outputs] float32 in [0, 1].

    The first layer in float64, as outer products; every hidden layer a [BLOCK, width] float32 tile: activation,
    then ``tl.dot`` with the next weights in IEEE float32 (FMA, never TF32), its padding columns kept 0 (an
    infinite h times their 0 weights would be NaN, spread by the next dot); the output activation, clamped, and
    the colour mode, as :meth:`CPPN.evaluate`. Expects ``c``, the output column indices [1, outputs].
    """
    P = shape.padded
    scales = shape.layer_scales
    L = []
    if "r" in shape.spatial:
        L.append("r = tl.sqrt(x * x + y * y)")
    # The first layer in float64, as outer products: b + sum_k f_k * W[k, :].
    L.append(f"j = tl.arange(0, {P[1]})")
    terms = [f"{f}[:, None] * tl.load(p64 + {5 + k * P[1]} + j)[None, :]" for k, f in enumerate(shape.spatial)]
    bias = f"tl.load(p64 + {5 + P[0] * P[1]} + j)[None, :]"
    if terms:
        L.append(f"h = (({' + '.join(terms)}) + {bias}).to(tl.float32)")
    else:  # only z among the inputs: the first layer is its (folded) bias
        L.append(f"h = (tl.zeros([BLOCK, {P[1]}], tl.float64) + {bias}).to(tl.float32)")

    def activation(name: str, scale: float) -> str:
        return _act("sigmoid2" if scale != 1.0 else name, "h", cuda)

    ofs = 0
    for i in range(1, len(P) - 1):
        pi, po = P[i], P[i + 1]
        L += [
            f"h = {activation(shape.core[i - 1], scales[i - 1])}",
            f"k = tl.arange(0, {pi})",
            f"j = tl.arange(0, {po})",
            f"w = tl.load(p32 + {ofs} + k[:, None] * {po} + j[None, :])",
            f"b = tl.load(p32 + {ofs + pi * po} + j)",
            'h = tl.dot(h, w, input_precision="ieee") + b[None, :]',
            *([f"h = tl.where(j[None, :] < {shape.widths[i + 1]}, h, 0.0)"] if shape.widths[i + 1] < po else []),
        ]
        ofs += (pi + 1) * po
    # Output activation to [0, 1] (signed ones as (v + 1) / 2), clamped, as CPPN._finish.
    if shape.output_activation == "sin":
        e = "(tl.sin(h) + 1.0) * 0.5"
    else:  # sigmoid, and tanh as sigmoid(2v), are folded into sigmoid2
        e = activation(shape.output_activation, scales[-1])
    # Colours that are not finite (float32 overflowed), counted before the clamp, which would turn a NaN
    # into 0 or 1 (min/max return the other operand): the torch path's check (finite_quantise_).
    L += [f"e = {e}",
          "nbad += tl.sum(tl.sum(tl.where(tl.abs(e) <= 3.4028234663852886e38, 0, tl.where(mask[:, None], 1, 0)), "
          "axis=1), axis=0)",
          "o = tl.minimum(tl.maximum(e, 0.0), 1.0)"]
    if shape.color == "hsv":  # model.hsv_to_rgb, on columns 0, 1, 2
        L += [
            "hue = tl.sum(tl.where(c == 0, o, 0.0), axis=1)[:, None]",
            "sat = tl.sum(tl.where(c == 1, o, 0.0), axis=1)[:, None]",
            "val = tl.sum(tl.where(c == 2, o, 0.0), axis=1)[:, None]",
            "kk = (hue - tl.floor(hue)) * 6.0 + tl.where(c == 0, 5.0, tl.where(c == 1, 3.0, 1.0))",
            "kk = kk - tl.floor(kk / 6.0) * 6.0",
            "o = val - val * sat * tl.minimum(tl.maximum(tl.minimum(kk, 4.0 - kk), 0.0), 1.0)",
        ]
    return [indent + line for line in L]


def _canvas_samples(shape: Shape, cuda: bool) -> list[str]:
    """The canvas kernel's body: the network at each pixel's centre, into ``o``."""
    return [
        # Sampling.axis: (index + (0.5 - size / 2)) * pitch + center, in float64.
        "    x = ((col + x0).to(tl.float64) + tl.load(p64 + 0)) * tl.load(p64 + 1) + tl.load(p64 + 2)",
        "    y = ((row + y0).to(tl.float64) + tl.load(p64 + 3)) * tl.load(p64 + 1) + tl.load(p64 + 4)",
        *_network(shape, cuda, "    "),
    ]


def _level_samples(shape: Shape, cuda: bool) -> list[str]:
    """The level kernel's body: the mean of the network at ``K``×``K`` samples in each pixel, into ``o``."""
    return [
        # geometry.axis_coords: a = i * step, the pixel's span cut at the canvas edge, K samples in it.
        "    ax = (col + x0).to(tl.float64) * tl.load(lv + 0)",
        "    ay = (row + y0).to(tl.float64) * tl.load(lv + 0)",
        "    wx = tl.minimum(ax + tl.load(lv + 0), tl.load(lv + 1)) - ax",
        "    wy = tl.minimum(ay + tl.load(lv + 0), tl.load(lv + 2)) - ay",
        f"    acc = tl.zeros([BLOCK, {shape.padded[-1]}], tl.float32)",
        "    for sy in range(K):",
        "        y = (ay + tl.load(lv + 5 + sy) * wy - tl.load(lv + 4)) * tl.load(p64 + 1) + tl.load(p64 + 4)",
        "        for sx in range(K):",
        "            x = (ax + tl.load(lv + 5 + sx) * wx - tl.load(lv + 3)) * tl.load(p64 + 1) + tl.load(p64 + 2)",
        *_network(shape, cuda, "            "),
        "            acc += o",
        "    o = acc / (K * K)",
    ]


def generate(shape: Shape, cuda: bool = True, level: bool = False) -> str:
    """Python source of the Triton kernel for one network shape.

    Each program evaluates ``BLOCK`` consecutive pixels of a window (row-major)
    and stores them quantised; ``bad_ptr`` (one int32) is set to 1 by any program that met a colour that
    is not finite. The canvas kernel (``cppn_kernel``) samples pixel
    centres as :meth:`bigcppn.network.backend.Sampling.axis` does; the level kernel
    (``level=True``, ``cppn_level``) samples a pyramid level: ``K``×``K``
    samples per pixel at the positions of :func:`bigcppn.core.geometry.axis_coords`
    (its float64 ``lv`` buffer: the step 2**shift, the canvas edges, the half
    sizes, the sub-pixel fractions), averaged in float32, 8-bit.
    ``cuda=False`` leaves out the PTX (inline assembly) the interpreter cannot run.
    """
    P = shape.padded
    name, extra = ("cppn_level", "lv, ") if level else ("cppn_kernel", "")
    K = ", K: tl.constexpr" if level else ""
    L = [
        "import triton",
        "import triton.language as tl",
        "",
        "",
        f"def {name}(out_ptr, bad_ptr, p64, p32, {extra}x0, y0, width, n, row_stride, BLOCK: tl.constexpr, "
        f"I64: tl.constexpr{K}):",
        "    pid = tl.program_id(0)",
        "    if I64:",
        "        pid = pid.to(tl.int64)",
        "    p = pid * BLOCK + tl.arange(0, BLOCK)",
        "    mask = p < n",
        "    row = p // width",
        "    col = p - row * width",
        f"    c = tl.arange(0, {P[-1]})[None, :]",
        "    nbad = tl.sum(tl.zeros([BLOCK], tl.int32), axis=0)",
    ]
    L += _canvas_samples(shape, cuda) if not level else _level_samples(shape, cuda)
    scale, qtype = ("255.0", "tl.uint8") if shape.depth == 8 else ("65535.0", "tl.uint16")
    L += [
        f"    q = tl.floor(o * {scale} + 0.5).to({qtype})",
        f"    ptrs = out_ptr + (row * row_stride + col * {shape.bands})[:, None] + c",
        f"    tl.store(ptrs, q, mask=mask[:, None] & (c < {shape.bands}))",
        "    tl.atomic_max(bad_ptr, tl.minimum(nbad, 1))",  # bad_ptr: one int32, 1 once any colour was not finite
    ]
    return "\n".join(L) + "\n"
