"""The compute backend: one network, one canvas, one device; windows of pixels out.

:class:`Backend` is the only place that knows how the network is evaluated:
eager PyTorch, in chunks of its device's size, or the fused Triton kernel
(:mod:`bigcppn.network.triton.kernel`). What differs between devices (chunk
sizes, threads, CUDA's streams and pinned memory, out-of-memory, whether the
kernel is used) it asks its :class:`~bigcppn.network.devices.DevicePolicy`. It
fills a window of the canvas (:meth:`Backend.render_window`, :meth:`Backend.fill`),
rows of it (:meth:`Backend.render_rows`) or rectangles of any pyramid level with
``k``×``k`` supersampling (:meth:`Backend.render_many`). Coordinates come from
:func:`bigcppn.core.geometry.axis_coords` and quantisation from :func:`quantise_`,
so every path (strips, pyramid levels, the live server) samples the same points
and rounds the same way. The functions below ask a device's policy for callers
that hold a ``torch.device``.
"""

from __future__ import annotations

import threading
from typing import Callable, Sequence

import numpy as np
import torch

from ..errors import UserError
from ..core.geometry import Canvas, View, Window, axis_coords
from .devices import policy_for
from .model import CPPN, not_finite, pixels_text as _pixels

__all__ = ["Backend", "Cancelled", "Sampling", "check_network_fits", "sheet_chunk", "threads_for_one_pass",
           "quantise_", "strip_workers", "default_batch"]


def strip_workers(device: torch.device, requested: int = 0) -> int:
    """How many strip workers to run on ``device`` (:meth:`~bigcppn.network.devices.DevicePolicy.strip_workers`)."""
    return policy_for(device).strip_workers(requested)


def default_batch(device: torch.device, max_width: int) -> int:
    """Pixels per device batch: cache-sized on a CPU, a share of free memory on a GPU."""
    return policy_for(device).default_batch(device, max_width)


def check_network_fits(net, device: torch.device, pixels: int, workers: int = 0, copies: int = 1) -> None:
    """Refuse (UserError, with the estimate) a network this machine cannot hold, before a byte of it exists.

    ``pixels`` are evaluated at once by each of ``workers`` (0: one per core on a CPU);
    ``copies`` networks are held (a contact sheet holds one per seed).
    """
    from ..core.limits import check_network_memory

    policy = policy_for(device)
    check_network_memory(net, policy.host_pixels(pixels, workers), copies=copies,
                         device_memory=policy.device_memory(device))


def sheet_chunk(device: torch.device, networks: int) -> int:
    """Pixels per batched pass of ``networks`` networks at once (the contact sheet)."""
    return max(256, policy_for(device).sheet_pixels // networks)


def threads_for_one_pass(device: torch.device, workers: int = 0) -> None:
    """Let torch thread one big batched pass itself (on a CPU: one thread per core)."""
    policy_for(device).threads_for_one_pass(workers)


def quantise_(v: torch.Tensor, depth: int, dtype: torch.dtype) -> torch.Tensor:
    """[0, 1] floats to ``depth``-bit integers, in place: ``floor(v * (2**depth - 1) + 0.5)``."""
    return v.mul_(255.0 if depth == 8 else 65535.0).add_(0.5).floor_().to(dtype)


def finite_quantise_(v: torch.Tensor, depth: int, dtype: torch.dtype, region: Callable[[], str]) -> torch.Tensor:
    """:func:`quantise_`, after one reduction over the batch checks that every colour is finite.

    The 64x64 preview (:meth:`Backend.check_finite`) can miss an overflow
    that only some pixels reach (toward the corners, say); a NaN would be
    written as 0 and the render exit 0. RenderError naming ``region()`` instead.
    """
    if not bool(torch.isfinite(v.sum())):
        raise not_finite(region())
    return quantise_(v, depth, dtype)


class Sampling:
    """The coordinate transform of one canvas (see :func:`bigcppn.core.geometry.axis_coords`)."""

    def __init__(self, canvas: Canvas, view: View) -> None:
        self.canvas = canvas
        self.view = view
        self.pitch = view.pitch(canvas)

    def axis(self, start: int, count: int, horizontal: bool, device: torch.device, shift: int = 0,
             k: int = 1, level_size: int | None = None) -> torch.Tensor:
        """Plane coordinates (float64) of the samples of level pixels ``start .. start + count`` on one axis.

        ``level_size`` instead of ``shift``: the level is the whole axis shrunk to that many pixels.
        """
        size = self.canvas.width if horizontal else self.canvas.height
        center = self.view.center_x if horizontal else self.view.center_y
        idx = torch.arange(start, start + count, dtype=torch.float64, device=device)
        step = size / level_size if level_size is not None else None
        sub = None
        if k > 1 or shift > 0 or step is not None:
            sub = (torch.arange(k, dtype=torch.float64, device=device) + 0.5) / k
        return axis_coords(idx, size, center, self.pitch, shift, k, sub, step)


class Cancelled(Exception):
    """Rows given up because their render was cancelled."""


class Backend:
    """Evaluates windows of one canvas with one network on one device, as the device's policy says."""

    def __init__(self, model: CPPN, canvas: Canvas, view: View, device: torch.device, depth: int = 8,
                 chunk: int | None = None, kernel: str = "auto") -> None:
        self.device = device
        self.policy = policy_for(device)
        self.policy.configure()
        self.model = model.to(device).eval()
        self.sampling = Sampling(canvas, view)
        self.depth = depth
        self.chunk = chunk or self.policy.chunk
        self.level_chunk = chunk or self.policy.level_chunk
        self.bands = model.bands
        self.dtype = np.uint8 if depth == 8 else np.uint16
        # The fused Triton kernel (bigcppn.network.triton.kernel), or None: used by default where Triton
        # compiles it (CUDA), elsewhere only when asked for (Triton's interpreter, for tests).
        self.fused = None
        if kernel == "triton" or (kernel == "auto" and self.policy.compiles_kernel):
            from .triton.kernel import select_kernel

            self.fused = select_kernel(self.model, self.sampling, device, depth, kernel)
        self.per_thread = threading.local()  # the device policy's state of each worker thread (CUDA: stream, buffer)

    @property
    def kernel(self) -> str:
        """The render.kernel in use: "triton" (the fused kernel) or "eager" (PyTorch)."""
        return "eager" if self.fused is None else "triton"

    @property
    def canvas(self) -> Canvas:
        return self.sampling.canvas

    @property
    def view(self) -> View:
        return self.sampling.view

    @property
    def device_dtype(self) -> torch.dtype:
        """The dtype :meth:`fill` writes: uint8/uint16 from the kernel, uint8/int32 from PyTorch."""
        if self.fused is not None:
            return self.fused.dtype
        return torch.uint8 if self.depth == 8 else torch.int32

    # ------------------------------------------------------------------ how much to give it at once

    def job_samples(self, batch_pixels: int) -> int:
        """Network samples per pyramid job: cache-sized on a CPU, the device batch on a GPU."""
        return self.policy.job_samples(batch_pixels)

    @property
    def gather_samples(self) -> int:
        """Samples the live server gathers into one batch."""
        return self.policy.gather_samples

    @property
    def tile_workers(self) -> int:
        """Tiles rendered side by side (a CPU: one per core, one torch thread each), or 0: batch them (a GPU)."""
        return self.policy.tile_workers()

    # ------------------------------------------------------------------ canvas pixels

    def render_rows(self, win: Window, batches: Sequence[Window], stop: threading.Event | None = None) -> np.ndarray:
        """Full-width rows ``win`` (a strip) as a host array, the way the device's policy brings them there
        (:meth:`~bigcppn.network.devices.DevicePolicy.render_rows`)."""
        return self.policy.render_rows(self, win, batches, stop)

    def render_batches(self, win: Window, batches: Sequence[Window], stop: threading.Event | None = None) -> np.ndarray:
        """Rows ``win`` evaluated batch by batch, left to right, each :meth:`render_window`.

        If ``stop`` is set meanwhile, gives up between batches with :class:`Cancelled`
        (a strip of a very wide canvas takes seconds on a CPU; Ctrl-C should not).
        """
        arr = np.empty((win.height, win.width, self.bands), dtype=self.dtype)
        for b in batches:
            if stop is not None and stop.is_set():
                raise Cancelled()
            arr[:, b.x - win.x : b.x - win.x + b.width] = self.render_window(b)
        return arr

    @torch.no_grad()
    def render_window(self, win: Window) -> np.ndarray:
        """Pixels of ``win`` as an (height, width, bands) uint8/uint16 array."""
        if self.fused is not None:
            out = torch.empty((win.height, win.width, self.bands), dtype=self.fused.dtype, device=self.device)
            return self.fused(out, win).cpu().numpy()
        xs = self.sampling.axis(win.x, win.width, True, self.device)
        ys = self.sampling.axis(win.y, win.height, False, self.device)
        x = xs.repeat(win.height)
        y = ys.repeat_interleave(win.width)
        n = win.pixels
        qdtype = self.device_dtype
        out = torch.empty((n, self.bands), dtype=qdtype, device=self.device)
        for s in range(0, n, self.chunk):
            e = min(n, s + self.chunk)
            out[s:e] = finite_quantise_(self.model.evaluate(x[s:e], y[s:e]), self.depth, qdtype,
                                        lambda: _pixels(win.x, win.y, win.width, win.height))
        arr = out.cpu().numpy()
        if self.depth == 16:
            arr = arr.astype(np.uint16)
        return arr.reshape(win.height, win.width, self.bands)

    @torch.no_grad()
    def fill(self, dst: torch.Tensor, win: Window) -> None:
        """Pixels of ``win`` into the device tensor ``dst`` ((height, width, bands), :attr:`device_dtype`)."""
        if self.fused is not None:
            self.fused(dst, win)
            return
        xs = self.sampling.axis(win.x, win.width, True, self.device)
        ys = self.sampling.axis(win.y, win.height, False, self.device)
        out_of_memory = self.policy.out_of_memory()
        r = c = 0
        while r < win.height:
            # A piece of at most self.chunk pixels: whole rows, or a run of one row.
            rows = min(win.height - r, max(1, self.chunk // win.width)) if c == 0 else 1
            cols = min(win.width - c, self.chunk) if rows == 1 else win.width
            try:
                self._fill_piece(dst, xs, ys, r, rows, c, cols, win)
                failed = False
            except out_of_memory:
                # Halve the batch (for the rest of the render too) and retry.
                if rows * cols <= 1024:
                    raise
                self.chunk = rows * cols // 2
                failed = True
            if failed:  # out of the except block, the failed piece's tensors are freed
                self.policy.free_memory()
                continue
            c += cols
            if c >= win.width:
                r, c = r + rows, 0

    def _fill_piece(self, dst, xs, ys, r: int, rows: int, c: int, cols: int, win: Window) -> None:
        x = xs[c : c + cols].repeat(rows)
        y = ys[r : r + rows].repeat_interleave(cols)
        q = finite_quantise_(self.model.evaluate(x, y), self.depth, dst.dtype,
                             lambda: _pixels(win.x + c, win.y + r, cols, rows))
        dst[r : r + rows, c : c + cols] = q.view(rows, cols, self.bands)

    # ------------------------------------------------------------------ the whole picture's check

    @torch.no_grad()
    def overflow_share(self, size: int = 64) -> float:
        """The share of a ``size``×``size`` preview of the whole picture where the network's colour is not finite.

        Wide weights through unbounded activations (identity, relu, softplus)
        can overflow float32: those pixels come out NaN, written as black.
        """
        c = self.canvas
        w, h = min(size, c.width), min(size, c.height)
        xs = self.sampling.axis(0, w, True, self.device, level_size=None if w == c.width else w)
        ys = self.sampling.axis(0, h, False, self.device, level_size=None if h == c.height else h)
        v = self._means([xs.repeat(h)], [ys.repeat_interleave(w)], [(w, h)], 1)[0]
        return float((~torch.isfinite(v)).any(dim=-1).float().mean())

    def check_finite(self) -> None:
        """UserError when the network overflows float32 anywhere in a 64×64 preview (those pixels would be black)."""
        share = self.overflow_share()
        if share > 0:
            raise UserError(f"the network overflows float32 on {share:.0%} of a 64x64 preview of the picture "
                            "(NaN or infinite colours, which would be black); lower network.weight_scale or "
                            "network.bias_scale, use fewer layers, or bounded activations (tanh, sin, gauss)")

    # ------------------------------------------------------------------ pyramid levels

    def sample_many(self, rects: Sequence[tuple[int, int, int, int, int]], k: int = 1) -> list[torch.Tensor]:
        """Mean colour of each level pixel of several rectangles (shift, x, y, width, height).

        (height, width, bands) float32 in [0, 1] each, ``k``×``k`` samples per
        pixel box-filtered, all rectangles evaluated in one run of device chunks.
        """
        xs, ys = [], []
        for shift, x, y, w, h in rects:
            xs.append(self.sampling.axis(x, w, True, self.device, shift, k).repeat(h * k))
            ys.append(self.sampling.axis(y, h, False, self.device, shift, k).repeat_interleave(w * k))
        return self._means(xs, ys, [(w, h) for _s, _x, _y, w, h in rects], k)

    def _means(self, xs: list[torch.Tensor], ys: list[torch.Tensor], sizes: list[tuple[int, int]],
               k: int) -> list[torch.Tensor]:
        """The network at the sample coordinates ``xs``/``ys`` of rectangles of ``sizes``, k×k box-filtered."""
        px = torch.cat(xs) if len(xs) > 1 else xs[0]
        py = torch.cat(ys) if len(ys) > 1 else ys[0]
        n = px.shape[0]
        out = torch.empty((n, self.bands), dtype=torch.float32, device=self.device)
        for s in range(0, n, self.level_chunk):
            e = min(n, s + self.level_chunk)
            out[s:e] = self.model.evaluate(px[s:e], py[s:e])
        result, off = [], 0
        for w, h in sizes:
            m = w * h * k * k
            v = out[off : off + m]
            off += m
            if k == 1:
                result.append(v.view(h, w, self.bands))
            else:
                result.append(v.view(h, k, w, k, self.bands).mean(dim=(1, 3)))
        return result

    def sample(self, shift: int, x: int, y: int, width: int, height: int, k: int = 1) -> torch.Tensor:
        """One rectangle of :meth:`sample_many`."""
        return self.sample_many([(shift, x, y, width, height)], k)[0]

    def render_many(self, rects: Sequence[tuple[int, int, int, int, int]], k: int = 1) -> list[np.ndarray]:
        """:meth:`sample_many`, quantised to 8 bits (pyramid tiles are 8-bit); through the fused kernel when in use."""
        if self.fused is not None:
            return [self._render_level(shift, Window(x, y, w, h), k) for shift, x, y, w, h in rects]
        return [finite_quantise_(v, 8, torch.uint8, lambda rect=rect: _pixels(*rect[1:], shift=rect[0])).cpu().numpy()
                for v, rect in zip(self.sample_many(rects, k), rects)]

    @torch.no_grad()
    def _render_level(self, shift: int, win: Window, k: int) -> np.ndarray:
        out = torch.empty((win.height, win.width, self.bands), dtype=torch.uint8, device=self.device)
        return self.fused.level(out, win, shift, k).cpu().numpy()

    @torch.no_grad()
    def render_scaled(self, width: int, height: int, y: int, rows: int, k: int = 1) -> np.ndarray:
        """Rows ``y .. y + rows`` of the whole canvas shrunk to ``width`` x ``height``, 8-bit.

        Each pixel covers ``canvas / size`` base pixels on each axis (any ratio, not only
        powers of two) and is the mean of ``k``×``k`` samples spread over them, as pyramid
        levels are; at the canvas's own size with ``k`` = 1 it is the render's pixel.
        """
        c = self.canvas
        xs = self.sampling.axis(0, width, True, self.device, k=k,
                                level_size=None if (width, k) == (c.width, 1) else width)
        ys = self.sampling.axis(y, rows, False, self.device, k=k,
                                level_size=None if (height, k) == (c.height, 1) else height)
        v = self._means([xs.repeat(rows * k)], [ys.repeat_interleave(width * k)], [(width, rows)], k)[0]
        return finite_quantise_(v, 8, torch.uint8,
                                lambda: f"the rows {y}..{y + rows - 1} of the picture at {width}x{height}").cpu().numpy()
