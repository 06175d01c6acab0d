"""The CPPN: a small random MLP from plane coordinates to a colour.

Weights are drawn on the CPU in float64 from a ``torch.Generator`` seeded by the
config, then moved to the device, so a seed gives the same picture on any
device. The first layer (coordinates in, the precision-critical part) runs in
float64; every later layer in float32, which is safe because everything after
the first activation is bounded.

Two forward passes compute the same function:

* :meth:`CPPN.forward` is the plain reference, layer by layer as configured;
* :meth:`CPPN.evaluate` is what the backend evaluates. It rewrites every tanh layer
  as a sigmoid one, ``tanh(p) = 2·sigmoid(2p) − 1``, folding the 2s into this
  layer's weights and the ``2s − 1`` into the next layer's. On a CPU sigmoid is
  several times faster than tanh and the network is bound by its activations;
  the results agree with the reference to float32 rounding.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..config import NetworkConfig
from ..errors import RenderError

__all__ = ["CPPN", "hsv_to_rgb", "not_finite", "pixels_text"]


def _gauss_(h: Tensor) -> Tensor:
    return h.square_().neg_().exp_()


def _softplus_(h: Tensor) -> Tensor:
    return h.copy_(torch.nn.functional.softplus(h))


# In-place activations (the backend owns its intermediate tensors).
_ACTIVATIONS_ = {
    "tanh": torch.tanh_,
    "sigmoid": torch.sigmoid_,
    "sin": torch.sin_,
    "gauss": _gauss_,
    "relu": torch.relu_,
    "softplus": _softplus_,
    "abs": torch.abs_,
    "identity": lambda h: h,
}

# Activations whose outputs span [-1, 1]; they are mapped to [0, 1] as (v + 1) / 2
# when used on the output layer. All others are clamped to [0, 1].
_SIGNED = ("tanh", "sin")


def _normal(shape: tuple[int, ...], scale: float, fan_in: int, gen: torch.Generator) -> Tensor:
    return torch.randn(shape, generator=gen, dtype=torch.float64) * scale


def _uniform(shape: tuple[int, ...], scale: float, fan_in: int, gen: torch.Generator) -> Tensor:
    return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * scale


def _default(shape: tuple[int, ...], scale: float, fan_in: int, gen: torch.Generator) -> Tensor:
    """Uniform in ±1/sqrt(fan_in), whatever the scale (PyTorch's default for a linear layer)."""
    return _uniform(shape, 1.0 / math.sqrt(fan_in), fan_in, gen)


# network.weight_init / bias_init: (shape, scale, fan_in, generator) -> float64 values.
_INITS = {"normal": _normal, "uniform": _uniform, "default": _default}

# The spatial inputs: (x, y) -> one feature column, float64.
_FEATURES = {
    "x": lambda x, y: x,
    "y": lambda x, y: y,
    "r": lambda x, y: torch.sqrt(x * x + y * y),
}


def hsv_to_rgb(hsv: Tensor) -> Tensor:
    """HSV in [0, 1] (hue wraps) to RGB in [0, 1], for an (N, 3) tensor."""
    h, s, v = hsv.unbind(1)
    h6 = torch.remainder(h, 1.0) * 6
    out = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(h6 + n, 6.0)
        out.append(v - v * s * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0))
    return torch.stack(out, 1)


def _layers(net: NetworkConfig, gen: torch.Generator) -> tuple[list[Tensor], list[Tensor]]:
    """Every layer's float64 weights (outputs, inputs) and biases, drawn in order from ``gen``."""
    fan_ins = [net.input_count, *net.hidden]
    fan_outs = [*net.hidden, net.bands]
    weights, biases = [], []
    for i, (fan_in, fan_out) in enumerate(zip(fan_ins, fan_outs)):
        weights.append(_INITS[net.weight_init]((fan_out, fan_in), net.weight_scale, fan_in, gen))
        # Biases are always drawn, so switching them off keeps the same weights.
        b = _INITS[net.bias_init]((fan_out,), net.bias_scale, fan_in, gen)
        on = net.bias is True or (net.bias == "first" and i == 0)
        biases.append(b if on else torch.zeros_like(b))
    return weights, biases


def _fold_latent(net: NetworkConfig, w0: Tensor, b0: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
    """The first layer without the latent z's columns: z is constant over the picture, so W_z·z joins the bias.

    Each spatial input is one column of ``w0``, z ``net.z_size`` columns where it stands in ``net.inputs``.
    """
    zcols = []
    if "z" in net.inputs:
        at = net.inputs.index("z")
        zcols = list(range(at, at + net.z_size))
    cols = [j for j in range(w0.shape[1]) if j not in zcols]
    return w0[:, cols], b0 + (w0[:, zcols] @ z if zcols else 0.0)


def _fold_tanh(weights: list[Tensor], biases: list[Tensor],
               acts: tuple[str, ...]) -> tuple[list[Tensor], list[Tensor], tuple[str, ...]]:
    """Fast parameters: each tanh folded into a sigmoid (in float64), and the hidden activations that leaves."""
    fw = [w.clone() for w in weights]
    fb = [b.clone() for b in biases]
    core = []
    for i, act in enumerate(acts):
        if act == "tanh":
            fw[i] *= 2.0
            fb[i] *= 2.0
            fb[i + 1] = fb[i + 1] - fw[i + 1].sum(1)
            fw[i + 1] = fw[i + 1] * 2.0
            core.append("sigmoid")
        else:
            core.append(act)
    return fw, fb, tuple(core)


class CPPN(nn.Module):
    """A CPPN built from a :class:`NetworkConfig` and a seed."""

    def __init__(self, net: NetworkConfig, seed: int) -> None:
        super().__init__()
        self.net = net
        self.spatial = tuple(n for n in net.inputs if n != "z")
        gen = torch.Generator().manual_seed(seed)
        weights, biases = _layers(net, gen)
        if "z" in net.inputs:
            if net.z:
                z = torch.tensor(net.z, dtype=torch.float64)
            else:
                z = (torch.rand(net.z_size, generator=gen, dtype=torch.float64) * 2 - 1) * net.z_scale
        else:
            z = torch.zeros(0, dtype=torch.float64)
        self.register_buffer("z", z)
        weights[0], biases[0] = _fold_latent(net, weights[0], biases[0], z)

        # Reference parameters: float64 first layer, float32 after.
        self.acts = net.activations
        self.ref_w = nn.ParameterList([nn.Parameter(w, requires_grad=False) for w in weights[:1]])
        self.ref_w.extend(nn.Parameter(w.float(), requires_grad=False) for w in weights[1:])
        self.ref_b = nn.ParameterList([nn.Parameter(b, requires_grad=False) for b in biases[:1]])
        self.ref_b.extend(nn.Parameter(b.float(), requires_grad=False) for b in biases[1:])

        fw, fb, self.fast_core = _fold_tanh(weights, biases, self.acts)
        # Stored transposed, ready for addmm.
        self.fast_wt = nn.ParameterList([nn.Parameter(fw[0].t().contiguous(), requires_grad=False)])
        self.fast_wt.extend(nn.Parameter(w.t().contiguous().float(), requires_grad=False) for w in fw[1:])
        self.fast_b = nn.ParameterList([nn.Parameter(fb[0], requires_grad=False)])
        self.fast_b.extend(nn.Parameter(b.float(), requires_grad=False) for b in fb[1:])

    @property
    def bands(self) -> int:
        return self.net.bands

    def features(self, x: Tensor, y: Tensor) -> Tensor:
        """The spatial inputs (x, y, r in config order) as an (N, k) float64 tensor."""
        cols = [_FEATURES[name](x, y) for name in self.spatial]
        if not cols:  # only z: the picture is one colour
            return x.new_zeros((x.shape[0], 0))
        return torch.stack(cols, 1)

    def _finish(self, out: Tensor) -> Tensor:
        """Output activation → [0, 1] → colour mode."""
        out = _ACTIVATIONS_[self.net.output_activation](out)
        if self.net.output_activation in _SIGNED:
            out = out.add_(1.0).mul_(0.5)
        out = out.clamp_(0.0, 1.0)
        if self.net.color == "hsv":
            out = hsv_to_rgb(out)
        return out

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Reference forward pass: float64 coordinates (N,) → colours (N, bands) in [0, 1], float32."""
        f = self.features(x, y)
        h = torch.addmm(self.ref_b[0], f, self.ref_w[0].t()).float()
        for i, act in enumerate(self.acts):
            h = _ACTIVATIONS_[act](h)
            h = torch.addmm(self.ref_b[i + 1], h, self.ref_w[i + 1].t())
        return self._finish(h)

    def evaluate(self, x: Tensor, y: Tensor) -> Tensor:
        """The backend's forward pass: the same function with tanh folded into sigmoid."""
        f = self.features(x, y)
        h = torch.addmm(self.fast_b[0], f, self.fast_wt[0]).float()
        for i, act in enumerate(self.fast_core):
            h = _ACTIVATIONS_[act](h)
            h = torch.addmm(self.fast_b[i + 1], h, self.fast_wt[i + 1])
        return self._finish(h)


def not_finite(region: str) -> RenderError:
    """The error of colours that are not finite in ``region`` (NaN or infinite: float32 overflowed)."""
    return RenderError(f"the network's colour is not finite (NaN or infinite: float32 overflowed) in {region}; "
                       "lower network.weight_scale or network.bias_scale, use fewer layers, or bounded "
                       "activations (tanh, sin, gauss)")


def pixels_text(x: int, y: int, width: int, height: int, shift: int = 0) -> str:
    """A window of pixels (of a pyramid level ``shift`` halvings down) in words, for :func:`not_finite`."""
    level = f" of the level {shift} halvings down" if shift else ""
    return f"the pixels x {x}..{x + width - 1}, y {y}..{y + height - 1}{level}"
