"""Rendering: evaluate the planned batches on the device and yield full-width strips.

The renderer turns a :class:`~bigcppn.plan.Window` into pixels: float64
coordinates from global pixel indices, the network in chunks sized for the
device under ``torch.no_grad()``, and quantisation to 8 or 16 bits. Strips come
out top to bottom as numpy arrays; :class:`StripStream` renders them on a
background thread into a short queue, so the next strip is rendered while the
last one is being encoded.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from .config import Config
from .errors import RenderError, UserError
from .limits import check_network_memory
from .model import CPPN
from .plan import Canvas, Plan, View, Window, make_plan
from .system import available_cores

__all__ = ["Renderer", "StripStream", "pick_device", "default_batch", "renderer_for"]

# On a CPU the network is bound by its activations; chunks that keep a layer's
# activations in L2 cache run fastest (measured: 8192 rows of 16 floats).
CPU_CHUNK = 8192
CPU_BATCH = 65536


def pick_device(name: str) -> torch.device:
    """``auto`` is CUDA when present, else the CPU; asking for CUDA without it is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA device is available; use --device cpu or auto")
    return torch.device(name)


def strip_workers(device: torch.device, requested: int = 0) -> int:
    """How many strip workers to run: on a CPU one per core, each with one torch thread; on CUDA two.

    Measured on a 2-core machine: one torch thread per worker, a worker per
    core, beats torch's own intra-op threads, which spin against the encoder.
    """
    if device.type == "cuda":
        # Double buffering: each worker has its own stream and device buffer, so
        # one strip is computed while the previous one is copied to the host.
        return max(1, requested or 2)
    if device.type != "cpu":
        return 1
    cores = available_cores()
    torch.set_num_threads(1)
    return max(1, requested or cores)


def default_batch(device: torch.device, max_width: int) -> int:
    """Pixels per device batch: cache-sized on a CPU, a share of free memory on a GPU."""
    if device.type != "cuda":
        return CPU_BATCH
    free, _total = torch.cuda.mem_get_info(device)
    # float64 x, y, features; two float32 activations of the widest layer; output.
    per_pixel = 8 * 5 + 4 * (2 * max(max_width, 3) + 4)
    return int(max(2**20, min(2**26, free // 4 // per_pixel)))


@dataclass(frozen=True)
class Sampling:
    """The coordinate transform of one canvas: plane = center + (index + offset) * pitch."""

    canvas: Canvas
    view: View

    def axis(self, start: int, count: int, horizontal: bool, device: torch.device) -> torch.Tensor:
        size = self.canvas.width if horizontal else self.canvas.height
        center = self.view.center_x if horizontal else self.view.center_y
        idx = torch.arange(start, start + count, dtype=torch.float64, device=device)
        # The same operations, in the same order, as plan.pixel_coord.
        return (idx + (0.5 - size / 2)) * self.view.pitch(self.canvas) + center


class Renderer:
    """Evaluates windows of one canvas with one network on one device."""

    def __init__(
        self,
        model: CPPN,
        canvas: Canvas,
        view: View,
        device: torch.device,
        depth: int = 8,
        chunk: int | None = None,
        kernel: str = "auto",
    ) -> None:
        self.device = device
        self.model = model.to(device).eval()
        self.sampling = Sampling(canvas, view)
        self.depth = depth
        self.chunk = chunk or (CPU_CHUNK if device.type == "cpu" else 2**62)
        self.bands = model.bands
        self.dtype = np.uint8 if depth == 8 else np.uint16
        self._scale = 255.0 if depth == 8 else 65535.0
        # The fused Triton kernel (bigcppn.kernel), when used: on CUDA by default,
        # on a CPU only when asked for (Triton's interpreter, for tests).
        self._kernel = None
        if kernel == "triton" or (kernel == "auto" and device.type == "cuda"):
            from .kernel import select_kernel

            self._kernel = select_kernel(self.model, self.sampling, device, depth, kernel)
        self._cuda = threading.local()  # per worker thread: CUDA stream and device buffer

    @property
    def backend(self) -> str:
        """What evaluates the network: "triton" (the fused kernel) or "eager" (PyTorch)."""
        return "eager" if self._kernel is None else "triton"

    @property
    def canvas(self) -> Canvas:
        return self.sampling.canvas

    @torch.no_grad()
    def render_window(self, win: Window) -> np.ndarray:
        """Pixels of ``win`` as an (height, width, bands) uint8/uint16 array."""
        if self._kernel is not None:
            out = torch.empty((win.height, win.width, self.bands), dtype=self._kernel.dtype, device=self.device)
            return self._kernel(out, win).cpu().numpy()
        xs = self.sampling.axis(win.x, win.width, True, self.device)
        ys = self.sampling.axis(win.y, win.height, False, self.device)
        x = xs.repeat(win.height)
        y = ys.repeat_interleave(win.width)
        n = win.pixels
        qdtype = torch.uint8 if self.depth == 8 else torch.int32
        out = torch.empty((n, self.bands), dtype=qdtype, device=self.device)
        for s in range(0, n, self.chunk):
            e = min(n, s + self.chunk)
            v = self.model.evaluate(x[s:e], y[s:e])
            out[s:e] = v.mul_(self._scale).add_(0.5).floor_().to(qdtype)
        arr = out.cpu().numpy()
        if self.depth == 16:
            arr = arr.astype(np.uint16)
        return arr.reshape(win.height, win.width, self.bands)

    def render_strip(self, strip, stop: threading.Event | None = None) -> np.ndarray:
        """One full-width strip, its batches evaluated left to right.

        If ``stop`` is set meanwhile, gives up between batches with :class:`Cancelled`
        (a strip of a very wide canvas takes seconds on a CPU; Ctrl-C should not).
        """
        if self.device.type == "cuda":
            return self._render_strip_cuda(strip)
        arr = np.empty((strip.height, self.canvas.width, self.bands), dtype=self.dtype)
        for b in strip.batches:
            if stop is not None and stop.is_set():
                raise Cancelled()
            arr[:, b.x : b.x + b.width] = self.render_window(b)
        return arr

    # ------------------------------------------------------------------ CUDA

    @property
    def device_dtype(self) -> torch.dtype:
        """The dtype :meth:`fill` writes: uint8/uint16 from the kernel, uint8/int32 from PyTorch."""
        if self._kernel is not None:
            return self._kernel.dtype
        return torch.uint8 if self.depth == 8 else torch.int32

    @torch.no_grad()
    def fill(self, dst: torch.Tensor, win: Window) -> None:
        """Pixels of ``win`` into the device tensor ``dst`` ((height, width, bands), :attr:`device_dtype`)."""
        if self._kernel is not None:
            self._kernel(dst, win)
            return
        xs = self.sampling.axis(win.x, win.width, True, self.device)
        ys = self.sampling.axis(win.y, win.height, False, self.device)
        r = c = 0
        while r < win.height:
            # A piece of at most self.chunk pixels: whole rows, or a run of one row.
            rows = min(win.height - r, max(1, self.chunk // win.width)) if c == 0 else 1
            cols = min(win.width - c, self.chunk) if rows == 1 else win.width
            try:
                self._fill_piece(dst, xs, ys, r, rows, c, cols)
                failed = False
            except torch.cuda.OutOfMemoryError:
                # Halve the batch (for the rest of the render too) and retry.
                if rows * cols <= 1024:
                    raise
                self.chunk = rows * cols // 2
                failed = True
            if failed:  # out of the except block, the failed piece's tensors are freed
                torch.cuda.empty_cache()
                continue
            c += cols
            if c >= win.width:
                r, c = r + rows, 0

    def _fill_piece(self, dst, xs, ys, r: int, rows: int, c: int, cols: int) -> None:
        x = xs[c : c + cols].repeat(rows)
        y = ys[r : r + rows].repeat_interleave(cols)
        v = self.model.evaluate(x, y)
        q = v.mul_(self._scale).add_(0.5).floor_().to(dst.dtype)
        dst[r : r + rows, c : c + cols] = q.view(rows, cols, self.bands)

    def _render_strip_cuda(self, strip) -> np.ndarray:
        """One strip on CUDA: into a device buffer on this thread's stream, then into pinned host memory.

        Each worker thread has its own stream and buffer (see :func:`strip_workers`),
        so one strip is computed while another is copied; the host arrays come
        from torch's caching pinned allocator and return to it when the encoder
        drops them.
        """
        local = self._cuda
        dtype = self.device_dtype
        if not hasattr(local, "stream"):
            local.stream = torch.cuda.Stream(self.device)
            local.buffer = torch.empty(0, dtype=dtype, device=self.device)
        win = strip.window
        shape = (win.height, win.width, self.bands)
        n = win.pixels * self.bands
        with torch.cuda.stream(local.stream):
            if local.buffer.numel() < n:
                local.buffer = None
                local.buffer = torch.empty(n, dtype=dtype, device=self.device)
            dev = local.buffer[:n].view(shape)
            if self._kernel is not None:
                self.fill(dev, win)  # the whole strip in one launch
            else:
                for b in strip.batches:
                    self.fill(dev[:, b.x : b.x + b.width], b)
            host = torch.empty(shape, dtype=dtype, pin_memory=True)
            host.copy_(dev, non_blocking=True)
            local.stream.synchronize()
        arr = host.numpy()
        return arr if arr.dtype == self.dtype else arr.astype(self.dtype)

    def strips(self, plan: Plan) -> Iterator[np.ndarray]:
        for strip in plan.strips():
            yield self.render_strip(strip)

    def render(self, plan: Plan) -> np.ndarray:
        """The whole canvas in memory: for tests and small pictures only."""
        return np.concatenate(list(self.strips(plan)), axis=0)


_DONE = object()


class Cancelled(Exception):
    """A strip given up because its stream was cancelled."""


class StripStream:
    """Renders strips on a background thread into a bounded queue.

    Iterate it to get the strips in order. ``cancel()`` stops the producer; an
    exception in the producer is re-raised in the consumer as a RenderError.
    """

    def __init__(self, renderer: Renderer, plan: Plan, depth: int = 2, workers: int = 1) -> None:
        self.renderer = renderer
        self.plan = plan
        self.workers = max(1, workers)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._cancel = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._produce, name="bigcppn-render", daemon=True)
        self._started = False

    def start(self) -> "StripStream":
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def _put(self, item) -> bool:
        while not self._cancel.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        # Several workers render neighbouring strips at once (each torch call
        # releases the GIL); strips are handed on strictly in order.
        pending: deque = deque()
        try:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="bigcppn-strip") as pool:
                try:
                    for strip in self.plan.strips():
                        if self._cancel.is_set():
                            return
                        pending.append(pool.submit(self.renderer.render_strip, strip, stop=self._cancel))
                        if len(pending) >= self.workers and not self._put(pending.popleft().result()):
                            return
                    while pending:
                        if not self._put(pending.popleft().result()):
                            return
                finally:
                    for f in pending:
                        f.cancel()
        except Cancelled:
            pass  # the consumer asked for it and is not waiting for more
        except BaseException as exc:  # handed to the consumer
            self.error = exc
        self._put(_DONE)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def __iter__(self) -> Iterator[np.ndarray]:
        self.start()
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._cancel.is_set():
                    return
                continue
            if item is _DONE:
                if self.error is not None:
                    raise RenderError(f"rendering failed: {self.error}") from self.error
                return
            yield item

    def join(self, timeout: float | None = None) -> None:
        if self._started:
            self._thread.join(timeout)


def renderer_for(cfg: Config, device: torch.device | None = None) -> tuple[Renderer, Plan]:
    """Build the network, the plan and the renderer a config describes."""
    device = device or pick_device(cfg.render.device)
    canvas = Canvas(cfg.canvas.width, cfg.canvas.height, cfg.canvas.bleed)
    # Refuse a network this machine cannot hold before a byte of it is allocated.
    workers = (cfg.render.workers or available_cores()) if device.type == "cpu" else 1
    device_memory = torch.cuda.get_device_properties(device).total_memory if device.type == "cuda" else None
    check_network_memory(cfg.network, min(CPU_CHUNK, canvas.pixels), workers, device=device.type,
                         device_memory=device_memory)
    view = View(cfg.view.center[0], cfg.view.center[1], cfg.view.zoom)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    model = CPPN(cfg.network, cfg.seed)
    batch = cfg.render.batch or default_batch(device, max(cfg.network.hidden, default=3))
    plan = make_plan(canvas, cfg.render.tile, batch)
    return Renderer(model, canvas, view, device, depth=cfg.output.depth, kernel=cfg.render.kernel), plan
