"""The driver's side of a single file on Ray (a TIFF, or a DeepZoom ``.dzi``/``.szi``): bands out, encoded tiles in.

The image is cut into blocks of ``tile * 2**k`` rows, full-width bands or
squares (:func:`bigcppn.formats.tiff.blocks.choose_blocks`: about four blocks per actor
within a memory budget). Each actor renders a block (a DeepZoom block with the
few pixels of its neighbours its tiles overlap) and encodes every tile of the
levels ``0 .. k`` it owns; the driver receives the bytes in block order and
places them through the writer (:meth:`~bigcppn.formats.tiff.writer.TiledTiffWriter.write_encoded`
into the TIFF, :meth:`~bigcppn.formats.deepzoom.writer.DeepZoomWriter.write_encoded` as tile
files or zip entries; no second encode), and builds only the small levels
above ``k`` from the reduced pixels the actors send along (joined into rows
at each band's end). A CMYK TIFF's bands
are converted on the actors (the profile travels with the task). The output
is written under a hidden temporary name and renamed when complete, as a
local render does: a killed driver leaves nothing under the output's name.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from ..errors import UserError
from ..job import Job
from ..formats.target import OutputTarget
from ..formats.tiff.blocks import RowJoiner
from ..formats.target import write_output, writing
from ..formats.writers import open_writer
from .executor import RayExecutor, RaySession, place_actors
from .pyramid import RayOptions, check_workers
from .tasks import block_task

__all__ = ["check_format", "render_single", "actors", "block_grid", "describe_blocks"]

WHAT_RAY_WRITES = ("--executor ray writes tiled TIFF (deflate, lzw or jpeg tiles; RGB, grey or CMYK) and "
                   "DeepZoom .dzi/.szi with jpeg tiles")


def check_format(job: Job) -> None:
    """UserError unless the output is one bigcppn's own TIFF or DeepZoom writer writes, so bands can be encoded apart."""
    out = job.config.output
    if job.fmt.blocks(out) is not None:  # (a CMYK TIFF's JPEG tiles are refused before, for every executor)
        return
    raise UserError(f"{WHAT_RAY_WRITES}, not {job.fmt.described(out)}; render it with --executor local (the "
                    "default), or pyramids with bigcppn pyramid")


def block_grid(job: Job, workers: int):
    """How ``job``'s file is cut into bands for ``workers`` actors: a TiffBlockGrid (TIFF) or a DzBlockGrid (DeepZoom)."""
    cfg, out = job.config, job.config.output
    return job.fmt.blocks(out).grid(cfg.canvas.width, cfg.canvas.height, out, job.fmt.is_pyramid(out), workers)


def describe_blocks(job: Job, workers: int) -> dict:
    """What the actors and the driver would do with ``job`` (``bigcppn plan --executor ray``): no Ray started."""
    plan = block_grid(job, workers)
    fed = plan.fed  # the level whose pixels come back
    sizes = plan.levels
    total = sum(w * h for w, h in sizes)
    bands = 4 if job.config.output.cmyk else job.config.network.bands
    depth = job.config.output.depth // 8
    back = sizes[fed][0] * sizes[fed][1] * bands * depth if fed < len(sizes) else 0
    return {"workers": workers, "blocks": plan.count, "block_rows": min(plan.rows, plan.height),
            "block_width": min(plan.rows, plan.width) if plan.split else plan.width, "levels": len(sizes),
            "levels_on_actors": plan.inside, "rows_back_bytes": back,
            "driver_pixel_share": round(sum(w * h for w, h in sizes[plan.inside:]) / total, 4)}


def _block_task(job: Job, workers: int, batch: int):
    """(the block grid, the task an actor runs on a block number)."""
    plan = block_grid(job, workers)
    return plan, block_task(job.config, plan, batch)


def render_single(job: Job, target: OutputTarget, options: RayOptions, batch: int,
                  progress: Callable[[int, int], None] | None = None,
                  on_workers: Callable[[RayExecutor], None] | None = None,
                  executor: RayExecutor | None = None) -> dict:
    """Render ``job`` (a TIFF or DeepZoom file) on Ray into ``target``; the workers' CPU seconds and bytes moved.

    ``executor``: actors already started (a series of renders shares them);
    without it, Ray is joined or started and actors placed for this render.
    ``on_workers(executor)`` is called once the actors are ready (tests: their pids).
    """
    if executor is None:
        with actors(options) as ex:
            return render_single(job, target, options, batch, progress, on_workers, ex)
    ex = executor
    cfg = job.config
    w, h, bands = cfg.canvas.width, cfg.canvas.height, cfg.network.bands
    cpu0, moved0 = ex.worker_cpu, ex.sent + ex.received  # a shared executor counts every render
    plan, task = _block_task(job, ex.workers, batch)
    check_workers(ex, cfg)
    if on_workers is not None:
        on_workers(ex)

    def feed(writer) -> None:
        joiner, done = RowJoiner(plan), 0
        for b, block in ex.map_ordered(task, range(plan.count), 2 * ex.workers):
            writing(target, lambda: writer.write_encoded(block.tiles, joiner.add(b, block.rows), plan.where(b)))
            if progress is not None:
                _, _, bw, bh = plan.block(b)
                done += bw * bh
                progress(done, w * h)

    def opener():
        return open_writer(target.temp, job.fmt, w, h, bands, cfg.output, config=cfg, encoded_levels=plan.inside)

    write_output(target, opener, feed, cfg.output, cfg)
    return {"worker_cpu": ex.worker_cpu - cpu0, "transfer_bytes": ex.sent + ex.received - moved0,
            "blocks": plan.count, "block_rows": plan.rows, "split": plan.split, "encoded_levels": plan.inside,
            "workers": ex.workers}


@contextlib.contextmanager
def actors(options: RayOptions) -> Iterator[RayExecutor]:
    """Ray joined or started (and left after, if started here), and the actors ``options`` ask for."""
    with RaySession(options.address, **dict(options.init_options)) as session, \
            RayExecutor(place_actors(session.nodes(), options.workers)) as ex:
        yield ex
