"""Frames of a timeline as uint8 arrays: small frames many to a device batch, large ones in strips.

Frame ``i`` is the still of :meth:`Timeline.config_at(i) <bigcppn.animate.timeline.Timeline.config_at>`,
rendered by the same coordinates and quantisation as ``render_array``:

* a **large** frame (4K, 8K) is a poster: the strips of :func:`~bigcppn.network.strips.renderer_for`'s tiling,
  rendered by the strip workers (one a core on a CPU) into one frame buffer, one run of strips across frames;
* **small** frames (a 320x180 preview) waste a device alone, so up to :data:`BATCH_PIXELS` pixels of frames
  go through the network together: their weights (which a tween or the latent z change) stacked into
  ``(frames, in, out)`` tensors and every layer one batched product (``torch.baddbmm``), as the contact sheet
  does for seeds, each frame on its own coordinates (a zoom or pan moves them).

:class:`Prefetch` runs any frame iterator on a thread a few frames ahead, so the encoder works meanwhile.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterator

import numpy as np

from ..core.execute import put_until
from ..errors import BigCPPNError, RenderError
from .timeline import Timeline

__all__ = ["frame_arrays", "encoder_threads", "sample_frames", "Prefetch", "BATCH_PIXELS", "SMALL_FRAME",
           "SAMPLE_FRAMES"]

# Frames up to this many pixels are batched; larger ones are rendered in strips.
SMALL_FRAME = 640 * 480
# Pixels of frames in one batched pass at most (and frames at most).
BATCH_PIXELS = 1 << 20
MAX_BATCH_FRAMES = 64


def frame_arrays(timeline: Timeline, start: int = 0, stop: int | None = None, device=None,
                 cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
    """Frames ``start .. stop`` of ``timeline`` as (height, width, bands) uint8 arrays, in order."""
    from ..network.devices import pick_device

    stop = timeline.frames if stop is None else stop
    cfg = timeline.base
    device = device or pick_device(cfg.render.device)
    pixels = cfg.canvas.width * cfg.canvas.height
    if pixels <= SMALL_FRAME:
        yield from _batches(timeline, start, stop, device, cancel)
    else:
        yield from _large_frames(timeline, start, stop, device, cancel)


def encoder_threads(timeline: Timeline, device=None) -> int:
    """The encoder's threads beside this renderer: 1 where rendering takes every core (a CPU: more threads only
    cost CPU the renderer needs, measured), else 0 (the encoder's own choice, all cores for it)."""
    from ..network.devices import pick_device, policy_for

    return 1 if policy_for(device or pick_device(timeline.base.render.device)).shares_cores_with_writer else 0


# Frames a sample spread over a clip holds at most (a GIF's palette of the clip is made from them), and pixels.
SAMPLE_FRAMES = 16
SAMPLE_PIXELS = 1 << 23


def sample_frames(timeline: Timeline, device=None) -> list[np.ndarray]:
    """Frames spread evenly over the clip, first and last included: up to :data:`SAMPLE_FRAMES`, at least 4
    (or all), about :data:`SAMPLE_PIXELS` together."""
    c = timeline.base.canvas
    k = min(timeline.frames, SAMPLE_FRAMES, max(4, SAMPLE_PIXELS // (c.width * c.height)))
    picks = sorted({round(j * (timeline.frames - 1) / max(1, k - 1)) for j in range(k)})
    return [f for i in picks for f in frame_arrays(timeline, i, i + 1, device)]


def _batches(timeline: Timeline, start: int, stop: int, device, cancel: threading.Event | None) -> Iterator[np.ndarray]:
    """Small frames, batches of them rendered side by side by the device's workers (a CPU: one a core, one
    torch thread each, as strips are), handed on in order."""
    from ..core.execute import ThreadExecutor
    from ..network.backend import strip_workers

    workers = strip_workers(device, timeline.base.render.workers)
    c = timeline.base.canvas
    per = _batch_size(stop - start, c.width * c.height, workers)
    ranges = (range(s, min(stop, s + per)) for s in range(start, stop, per)
              if cancel is None or not cancel.is_set())
    models = _Models(device)
    with ThreadExecutor(workers, "bigcppn-frames") as ex:
        for _r, batch in ex.map_ordered(lambda r: _batch(timeline, r, device, models), ranges, workers - 1):
            yield from batch


def _batch_size(frames: int, pixels: int, workers: int) -> int:
    """Frames a batch: at most :data:`BATCH_PIXELS` of them, in a number of batches that the workers share
    evenly (60 frames of 18 at most on 2 workers: 4 batches of 15, not 18, 18, 18 and 6 with a worker idle)."""
    most = max(1, min(MAX_BATCH_FRAMES, BATCH_PIXELS // pixels))
    count = -(-frames // most)
    count = min(frames, -(-count // workers) * workers)
    return max(1, -(-frames // max(1, count)))


def _large_frames(timeline: Timeline, start: int, stop: int, device,
                  cancel: threading.Event | None) -> Iterator[np.ndarray]:
    """Large frames in strips, as posters are: one run of strips through the strip workers across all the
    frames, so the workers go on with the next frame's first strips while this frame's last one finishes."""
    from ..core.execute import ThreadExecutor
    from ..network.strips import renderer_for
    from ..network.backend import strip_workers

    workers = strip_workers(device, timeline.base.render.workers)

    def strips():
        for i in range(start, stop):
            if cancel is not None and cancel.is_set():
                return
            renderer, tiling = renderer_for(timeline.config_at(i), device)
            for strip in tiling.strips():
                yield renderer, tiling, strip

    frame = None
    with ThreadExecutor(workers, "bigcppn-strip") as ex:
        for (renderer, tiling, strip), rows in ex.map_ordered(lambda job: job[0].render_strip(job[2]), strips(),
                                                            2 * workers - 1):
            c = tiling.canvas
            if frame is None:
                frame = np.empty((c.height, c.width, renderer.bands), dtype=np.uint8)
            frame[strip.y : strip.y + strip.height] = rows
            if strip.index == tiling.strip_count - 1:
                yield frame
                frame = None


class _Models:
    """The networks of a run of frames, built once for each (network, seed): a zoom or a pan moves only the
    coordinates, so its frames share one (building one draws every weight: 1.6 ms a frame at 320x180, where
    the frame's arithmetic is about 10 ms). Only the last few are kept; threads may share it."""

    KEEP = 2 * MAX_BATCH_FRAMES

    def __init__(self, device=None) -> None:
        self.device = device  # where the models are put once built (never moved later: another batch holds them)
        self._built: dict = {}
        self._lock = threading.Lock()

    def get(self, cfg):
        from ..network.model import CPPN

        key = (cfg.network, cfg.seed)
        with self._lock:  # (two workers starting together build it once)
            model = self._built.get(key)
            if model is None:
                model = CPPN(cfg.network, cfg.seed)
                if self.device is not None:
                    model = model.to(self.device)
                if len(self._built) >= self.KEEP:
                    self._built.pop(next(iter(self._built)))
                self._built[key] = model
        return model


def _batch(timeline: Timeline, frames: range, device, built: _Models | None = None) -> np.ndarray:
    """Frames ``frames`` as one (frames, height, width, bands) array, in batched passes of the stacked networks."""
    import torch

    from ..network.backend import Sampling, quantise_, sheet_chunk
    from ..core.geometry import Canvas, View
    from ..network.model import _ACTIVATIONS_

    cfgs = [timeline.config_at(i) for i in frames]
    c = cfgs[0].canvas
    w, h = c.width, c.height
    canvas = Canvas(w, h, c.bleed)
    built = built or _Models(device)
    models = [built.get(cf) for cf in cfgs]
    head = models[0]
    layers = len(head.fast_core) + 1
    wt = [torch.stack([m.fast_wt[k] for m in models]).to(device) for k in range(layers)]
    bs = [torch.stack([m.fast_b[k] for m in models])[:, None, :].to(device) for k in range(layers)]
    # A zoom, a pan or the latent z leave the layers after the first alone: then those are one product over
    # all the frames' pixels (bigger and faster than a product a frame), with the head's own parameters.
    shared = all(m is head or (torch.equal(m.fast_wt[k], head.fast_wt[k]) and torch.equal(m.fast_b[k], head.fast_b[k]))
                 for m in models[1:] for k in range(1, layers))
    head = head.to(device)
    hw, hb = list(head.fast_wt), list(head.fast_b)  # (a ParameterList's indexing costs more than the product)
    samplings = [Sampling(canvas, View(cf.view.center[0], cf.view.center[1], cf.view.zoom)) for cf in cfgs]
    xs = torch.stack([s.axis(0, w, True, device) for s in samplings])
    ys = torch.stack([s.axis(0, h, False, device) for s in samplings])
    n, f = w * h, len(cfgs)
    chunk = sheet_chunk(device, f)
    out = torch.empty((f, n, head.bands), dtype=torch.uint8)
    with torch.no_grad():
        for s in range(0, n, chunk):
            idx = torch.arange(s, min(n, s + chunk), device=device)
            x, y = xs[:, idx % w].reshape(-1), ys[:, idx // w].reshape(-1)
            feats = head.features(x, y).reshape(f, idx.shape[0], -1)
            v = torch.baddbmm(bs[0], feats, wt[0]).float()
            if shared:
                v = v.reshape(f * idx.shape[0], -1)
                for k, act in enumerate(head.fast_core):
                    v = torch.addmm(hb[k + 1], _ACTIVATIONS_[act](v), hw[k + 1])
            else:
                for k, act in enumerate(head.fast_core):
                    v = torch.baddbmm(bs[k + 1], _ACTIVATIONS_[act](v), wt[k + 1])
            v = head._finish(v.reshape(f * idx.shape[0], -1)).reshape(f, idx.shape[0], -1)
            out[:, s : s + idx.shape[0]] = quantise_(v, 8, torch.uint8).cpu()
    return out.reshape(f, h, w, -1).numpy()


_DONE = object()


class Prefetch:
    """Runs a frame iterator on a thread into a short queue; iterate it to get the frames in order.

    ``cancel()`` stops the producer between frames; its failure is raised in the consumer as a RenderError.
    """

    def __init__(self, make: "callable", depth: int = 2) -> None:
        self.cancel_event = threading.Event()
        self._make = make
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bigcppn-frames", daemon=True)

    def _put(self, item) -> bool:
        return put_until(self._queue, item, self.cancel_event)

    def _run(self) -> None:
        try:
            for frame in self._make(self.cancel_event):
                if not self._put(frame):
                    return
        except BaseException as exc:  # handed to the consumer
            self.error = exc
        self._put(_DONE)

    def cancel(self) -> None:
        self.cancel_event.set()

    def __iter__(self) -> Iterator[np.ndarray]:
        self._thread.start()
        try:
            while True:
                try:
                    item = self._queue.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is _DONE:
                    if self.error is not None:
                        if isinstance(self.error, BigCPPNError):
                            raise self.error
                        raise RenderError(f"rendering a frame failed: {self.error}") from self.error
                    return
                yield item
        finally:
            self.cancel()
            self._thread.join(10)
