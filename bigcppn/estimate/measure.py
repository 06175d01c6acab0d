"""Timing a render on this machine before it runs, the way the render runs: for ``plan``'s estimates.

A render's time is the network's (strip workers in parallel) plus the
writer's (on every core for bigcppn's own writers; libvips' one-threaded PNG
stream and savers otherwise). Both are measured here through the very code a
render uses, on this machine as it is loaded now:

* the network: batch-sized windows of the canvas streamed through ``workers``
  threads as a render streams its strips, after a warm-up window a worker,
  timed until at least :data:`MIN_SECONDS` have passed (and at least
  :data:`MIN_ROUNDS` segments of one window a worker); on a CPU, its CPU time per
  pixel times the cores the render will get (:func:`loaded_rate`: robust to a
  moment's load; the cores it got meanwhile give the range), on a GPU the
  median segment's wall-clock rate;
* the writer: the windows just rendered, put side by side (and flipped, so no
  row repeats) into a sample of about :data:`WRITER_SAMPLE` pixels, saved with
  the output's own format, options and writer into a temporary folder
  (:func:`bigcppn.formats.target.save_strips`, as a render does); the faster of two saves,
  with the cores it kept busy (its share of the machine while the network runs);
* a pyramid's tiles: one sample tile encoded and written as the pyramid writes
  them, repeated.

About a second in all on a CPU. The figures feed :mod:`bigcppn.estimate.plan`.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.execute import ThreadExecutor
from ..core.system import available_cores
from ..core.geometry import Window
from ..core.tiling import Tiling

__all__ = ["Rates", "PyramidRates", "measure_render", "measure_pyramid", "measure_network", "measure_writer",
           "MIN_SECONDS"]

MIN_SECONDS = 0.4  # network rounds timed at least this long in all
MIN_ROUNDS = 4
MAX_SECONDS = 3.0  # and no longer than this, however slow the network
WRITER_SAMPLE = 1 << 20  # pixels saved to time the writer


@dataclass(frozen=True)
class Rates:
    """What a render's time is made of, measured here: wall-clock MPix/s of the network and the writer."""

    network_mpix_s: float
    writer_mpix_s: float
    writer_cores: float = 1.0  # cores the writer kept busy (CPU time / wall time): what it takes from the network
    workers: int = 1  # strip workers: the first strip arrives when each has rendered one
    network_cores: float = 1.0  # cores the network got meanwhile (fewer than the workers on a busy machine)
    seconds: float = 0.0  # what the measurement took
    network_span: tuple[float, float] | None = None  # the slowest and fastest network MPix/s the load allows


@dataclass(frozen=True)
class PyramidRates:
    """A pyramid's parts: the base level's network, the levels below (M samples/s, K² a pixel), and one
    tile encoded and written (seconds on one core)."""

    network_mpix_s: float
    level_msamples_s: float
    tile_seconds: float
    tile_pixels: int
    seconds: float = 0.0


def _windows(plan: Tiling, count: int) -> list[Window]:
    """``count`` batch-sized windows spread over the canvas, shaped as the plan's batches are."""
    c = plan.canvas
    bw = min(c.width, plan.tiles_per_batch * plan.tile)
    bh = min(c.height, plan.strip_height)
    cols = max(1, c.width // bw)
    rows = max(1, c.height // bh)
    wins = []
    for i in range(count):
        # a spread of columns and rows (a stride prime to the grid), whole windows inside the canvas
        k = (i * 7919) % (cols * rows)
        wins.append(Window((k % cols) * bw, (k // cols) * bh, bw, bh))
    return wins


def loaded_rate(units: float, cpu_seconds: float, workers: int, cores: int, other_load: float,
                got: float | None = None) -> tuple[float, float, float]:
    """Units per wall-clock second that ``workers`` threads will get, from the CPU time the units took: the
    estimate, and the slowest and fastest rates that the load average and ``got`` allow between them.

    Robust to a moment's load: a thread that waits for a core costs wall time
    but no CPU time, so the CPU time per unit stays what it is on an idle
    machine. The wall rate is that, times the cores the threads will get:
    ``min(workers, cores)``, shared with ``other_load`` other runnable threads
    (the one-minute load average, which a burst moves little) in proportion.

    On a heavily loaded machine that share promises too much (two busy loops and
    other work at a load of 7.65 on 2 cores: 0.41 cores, where the render got
    0.30: Python threads that hand strips on and share the GIL lose more than
    their turn), and the estimate ran at 0.6-0.7x of the real time. ``got``, the
    cores this process did get while it measured (CPU time over wall time),
    knows that, but moves with a moment's load: blended into the estimate, three
    plans in a row under two busy loops spread 1.47x (the load's share alone:
    1.18x). So the estimate stays the load's, and ``got`` widens the range.
    """
    busy = min(workers, cores)
    share = max(busy if other_load <= 0 else min(busy, cores * workers / (workers + other_load)), 1e-3)
    per_cpu = units / max(cpu_seconds, 1e-9)
    seen = share if got is None or got <= 0 else min(max(got, 1e-3), busy)
    return per_cpu * share, per_cpu * min(share, seen), per_cpu * max(share, seen)


def other_load(own_threads: float = 0.0) -> float:
    """Runnable threads of other processes now: the one-minute load average, less ``own_threads``."""
    try:
        return max(0.0, os.getloadavg()[0] - own_threads)
    except OSError:
        return 0.0


def _streamed_rate(fn, items: list[tuple[object, int]], workers: int, min_seconds: float,
                   keep: list | None = None, cpu: list | None = None) -> float:
    """Units per second of ``fn`` over ``items`` ((item, units), cycled), ``workers`` at a time.

    The items stream through the workers without a pause, as a render's
    strips do (rounds that wait for their slowest item would count a worker
    idling behind another process as the network's time). After a warm-up item
    per worker, the run is cut into segments of ``workers`` items and the
    median segment's rate is returned; it runs until ``min_seconds`` and
    :data:`MIN_ROUNDS` segments have passed, or :data:`MAX_SECONDS`. The
    results of the first pass over ``items`` go into ``keep``.
    """
    stop = threading.Event()

    def feed():
        i = 0
        while not stop.is_set():
            yield items[i % len(items)]
            i += 1

    marks: list[tuple[float, int]] = []  # (when done, units), in order
    with ThreadExecutor(workers, "bigcppn-measure") as ex:
        list(ex.map_ordered(fn, [item for item, _n in items[:workers]], workers))  # threads, allocator, caches
        start, cpu0 = time.perf_counter(), time.process_time()
        for (_item, n), result in ex.map_ordered(lambda it: fn(it[0]), feed(), workers):
            marks.append((time.perf_counter(), n))
            if keep is not None and len(marks) <= len(items):
                keep.append(result)
            spent = marks[-1][0] - start
            if (spent >= min_seconds and len(marks) >= workers * MIN_ROUNDS) or spent >= MAX_SECONDS:
                stop.set()
                break
    if cpu is not None:  # (units, CPU seconds) of the timed run
        cpu.append((sum(n for _t, n in marks), time.process_time() - cpu0))
    times = [start] + [t for t, _n in marks]
    rates = [sum(n for _t, n in marks[a : a + workers]) / max(times[a + workers] - times[a], 1e-9)
             for a in range(0, len(marks) - workers + 1, workers)]
    return statistics.median(rates) if rates else sum(n for _t, n in marks) / max(times[-1] - start, 1e-9)


def measure_network(renderer, plan: Tiling, workers: int) -> tuple[float, list[np.ndarray], float, tuple]:
    """Wall-clock MPix/s of ``renderer`` (a :class:`~bigcppn.network.strips.Renderer`) through ``workers``
    strip workers, windows it rendered, the cores it got (this process's CPU time over the wall time), and
    the slowest and fastest MPix/s the load's predictions allow (:func:`loaded_rate`).

    The windows are what the renderer renders in one piece on its device
    (:attr:`~bigcppn.network.devices.DevicePolicy.renders_whole_strips`): on a
    CPU its batches (a strip is a row of them), on CUDA whole strips.
    """
    workers = max(1, workers)
    if renderer.policy.renders_whole_strips:
        items = [(s, s.window.pixels) for s in (plan.strip(i % plan.strip_count) for i in range(2 * workers))]
        fn = renderer.render_strip
    else:
        items = [(w, w.pixels) for w in _windows(plan, 8 * workers)]
        fn = renderer.render_window
    arrays: list[np.ndarray] = []  # what the windows hold, for the writer's sample
    t, cpu = time.perf_counter(), time.process_time()
    spent: list[tuple[int, float]] = []
    rate = _streamed_rate(fn, items, workers, MIN_SECONDS, arrays, spent)
    got = (time.process_time() - cpu) / max(time.perf_counter() - t, 1e-9)
    span = (rate, rate)
    if renderer.policy.shares_cores_with_writer and spent:  # a CPU: its CPU time, robust to load
        rate, *span = loaded_rate(spent[0][0], spent[0][1], workers, available_cores(), other_load(), got)
    return rate / 1e6, arrays, got, (span[0] / 1e6, span[1] / 1e6)


def _sample(arrays: list[np.ndarray], width: int, height: int, pixels: int = WRITER_SAMPLE) -> np.ndarray:
    """The rendered windows side by side and stacked (flipped, so no row repeats): a sample to encode,
    of about ``pixels``, no wider or higher than ``width`` x ``height`` (the canvas: what its format holds)."""
    h = min(a.shape[0] for a in arrays)
    w = min(a.shape[1] for a in arrays)
    per_row = max(1, min(len(arrays), width // w))
    variants = [lambda a: a, lambda a: a[::-1], lambda a: a[:, ::-1], lambda a: a[::-1, ::-1]]
    rows, k = [], 0
    while not rows or (len(rows) * h * per_row * w < pixels and (len(rows) + 1) * h <= height):
        parts = [variants[(k + j) // len(arrays) % 4](arrays[(k + j) % len(arrays)][:h, :w])
                 for j in range(per_row)]
        k += per_row
        rows.append(np.concatenate(parts, axis=1))
    return np.ascontiguousarray(np.concatenate(rows, axis=0))


def measure_writer(job, sample: np.ndarray, strip_height: int) -> tuple[float, float]:
    """Wall-clock MPix/s of ``job``'s writer saving ``sample`` (its format, options, metadata), best of two,
    and the cores it kept busy meanwhile (this process's CPU time over the wall time)."""
    from ..formats.target import OutputTarget, save_strips

    h, w, bands = sample.shape
    best, cores = float("inf"), 0.0
    for _ in range(2):
        with tempfile.TemporaryDirectory(prefix="bigcppn-measure-") as d:
            target = OutputTarget(Path(d) / f"sample{job.output.suffix}", job.fmt)
            strips = (sample[y : y + strip_height] for y in range(0, h, strip_height))
            t, cpu = time.perf_counter(), time.process_time()
            save_strips(strips, target, w, h, bands, job.config.output, config=job.config)
            wall = max(time.perf_counter() - t, 1e-9)
            if wall < best:
                best, cores = wall, (time.process_time() - cpu) / wall
    return w * h / 1e6 / best, cores


def measure_render(job, renderer, plan: Tiling, workers: int) -> Rates:
    """``renderer``'s network and ``job``'s writer, timed as the render will run them."""
    t0 = time.perf_counter()
    network, arrays, network_cores, span = measure_network(renderer, plan, workers)
    c = plan.canvas
    writer, cores = measure_writer(job, _sample(arrays, c.width, c.height), plan.strip_height)
    return Rates(network, writer, cores, max(1, workers), network_cores, time.perf_counter() - t0, span)


def measure_pyramid(pjob, renderer, plan: Tiling, workers: int) -> PyramidRates:
    """``renderer``'s network (the base level and the levels below it), and one tile encoded and written as
    a pyramid writes its tiles (the median of several)."""
    from ..core.atomic import write_atomic
    from ..pyramid.images import encode_tile
    from ..pyramid.local import job_pixels
    from ..pyramid.worklist import level_jobs

    t0 = time.perf_counter()
    network, arrays, _cores, _span = measure_network(renderer, plan, workers)
    p = pjob.pyramid
    k = pjob.supersample
    levels = network * 1e6
    if p.base_level.index > 0:  # the levels below the base: their own jobs, K² samples a pixel
        jobs = level_jobs(p, p.base_level.index - 1, job_pixels(renderer, plan, k))[: 2 * workers]
        items = [(j, sum(t.pixels for t in j) * k * k) for j in jobs]
        def run(job):
            return renderer.render_many([(t.shift, t.x, t.y, t.width, t.height) for t in job], k)

        levels = _streamed_rate(run, items, workers, MIN_SECONDS / 2)
    tile = _sample(arrays, p.tile, p.tile, p.tile * p.tile)[: p.tile, : p.tile]
    times = []
    with tempfile.TemporaryDirectory(prefix="bigcppn-measure-") as d:
        for i in range(12):
            t = time.perf_counter()
            write_atomic(Path(d) / f"{i}.{p.ext}", encode_tile(tile, p.codec, pjob.quality))
            times.append(time.perf_counter() - t)
    return PyramidRates(network, levels / 1e6, statistics.median(times[2:]), tile.shape[0] * tile.shape[1],
                        time.perf_counter() - t0)
