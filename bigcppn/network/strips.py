"""Rendering: evaluate the planned batches on the device and yield full-width strips.

A :class:`Renderer` is the compute backend (:class:`~bigcppn.network.backend.Backend`:
windows of pixels on the device) that also cuts a plan into full-width strips;
:func:`renderer_for` builds one, with its plan, from a config. Strips come out
top to bottom as numpy arrays; :class:`StripStream` renders them on a
background thread into a short queue, so the next strip is rendered while the
last one is being encoded.
"""

from __future__ import annotations

import functools
import queue
import threading
from typing import Iterator

import numpy as np
import torch

from .backend import Backend, Cancelled, check_network_fits, default_batch
from .devices import CPU_CHUNK, pick_device
from ..config import Config
from ..errors import RenderError
from ..core.execute import ThreadExecutor, put_until
from .model import CPPN
from ..core.geometry import Canvas, View
from ..core.tiling import Tiling, make_tiling

__all__ = ["Renderer", "StripStream", "renderer_for"]


class Renderer(Backend):
    """A :class:`~bigcppn.network.backend.Backend` that also renders full-width strips of a plan."""

    def render_strip(self, strip, stop: threading.Event | None = None) -> np.ndarray:
        """One full-width strip (:meth:`~bigcppn.network.backend.Backend.render_rows` of its window and batches).

        If ``stop`` is set meanwhile, gives up between batches with :class:`Cancelled`.
        """
        return self.render_rows(strip.window, strip.batches, stop)

    def strips(self, plan: Tiling) -> Iterator[np.ndarray]:
        """The plan's strips, top to bottom, one at a time on this thread."""
        for strip in plan.strips():
            yield self.render_strip(strip)

    def render(self, plan: Tiling) -> np.ndarray:
        """The whole canvas in memory: for tests and small pictures only."""
        return np.concatenate(list(self.strips(plan)), axis=0)


_DONE = object()


class StripStream:
    """Renders strips on a background thread into a bounded queue.

    Iterate it to get the strips in order. ``cancel()`` stops the producer; an
    exception in the producer is re-raised in the consumer as a RenderError.
    """

    def __init__(self, renderer: Renderer, plan: Tiling, queue_size: int = 2, workers: int = 1) -> None:
        self.renderer = renderer
        self.plan = plan
        self.workers = max(1, workers)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
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
        return put_until(self._queue, item, self._cancel)

    def _strips(self) -> Iterator:
        for strip in self.plan.strips():
            if self._cancel.is_set():
                return
            yield strip

    def _produce(self) -> None:
        # Several workers render neighbouring strips at once (each torch call
        # releases the GIL); strips are handed on strictly in order.
        render = functools.partial(self.renderer.render_strip, stop=self._cancel)
        try:
            with ThreadExecutor(self.workers, "bigcppn-strip") as ex:
                for _strip, arr in ex.map_ordered(render, self._strips(), self.workers - 1):
                    if not self._put(arr):
                        return
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


def renderer_for(cfg: Config, device: torch.device | None = None) -> tuple[Renderer, Tiling]:
    """Build the network, the plan and the renderer a config describes."""
    device = device or pick_device(cfg.render.device)
    canvas = Canvas(cfg.canvas.width, cfg.canvas.height, cfg.canvas.bleed)
    view = View(cfg.view.center[0], cfg.view.center[1], cfg.view.zoom)
    check_network_fits(cfg.network, device, min(CPU_CHUNK, canvas.pixels), cfg.render.workers)
    model = CPPN(cfg.network, cfg.seed)
    batch = cfg.render.batch or default_batch(device, max(cfg.network.hidden, default=3))
    plan = make_tiling(canvas, cfg.render.tile, batch)
    renderer = Renderer(model, canvas, view, device, depth=cfg.output.depth, kernel=cfg.render.kernel)
    renderer.check_finite()
    return renderer, plan
