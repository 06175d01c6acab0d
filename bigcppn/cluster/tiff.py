"""The driver's side of a single-file TIFF on Ray: bands out, encoded tiles in, placed in order.

The image is cut into bands of ``tile * 2**k`` rows (:mod:`bigcppn.tiffbands`,
``k`` chosen for about four bands per actor within a memory budget). Each
actor renders a band and encodes every tile of the levels ``0 .. k`` inside
it; the driver receives the bytes in band order, places them into the file
through :meth:`~bigcppn.tiffwriter.TiledTiffWriter.write_encoded` (no second
encode), and builds only the small levels above ``k`` from the reduced rows
the actors send along. The file is written under a hidden temporary name and
renamed when complete, as a local render does: a killed driver leaves nothing
under the output's name.
"""

from __future__ import annotations

from typing import Callable

import pyvips

from ..errors import RenderError, UserError
from ..job import Job
from ..sink import OutputTarget
from ..tiffbands import BandPlan, choose_band_shift
from ..writers import finish_metadata, open_writer
from .engine import RayExecutor, RaySession, place_actors
from .pyramid import RayOptions, check_workers
from .tasks import TiffBandTask

__all__ = ["check_format", "render_tiff"]


def check_format(job: Job) -> None:
    """UserError unless bigcppn's own TIFF writer writes this output (deflate, LZW or JPEG tiles; RGB or grey)."""
    out = job.config.output
    if job.fmt.name != "tiff" or job.fmt.writer(out) != "tiff" or out.cmyk:
        what = (f"'{job.fmt.name}'" if job.fmt.name != "tiff" else "a CMYK TIFF" if out.cmyk
                else f".tif with {out.compression} tiles")
        raise UserError(f"--executor ray writes tiled RGB or grey TIFF with deflate, lzw or jpeg tiles, not {what}; "
                        "render it with --executor local (the default), or pyramids with bigcppn pyramid")


def render_tiff(job: Job, target: OutputTarget, options: RayOptions, batch: int,
                progress: Callable[[int, int], None] | None = None,
                on_workers: Callable[[RayExecutor], None] | None = None) -> dict:
    """Render ``job`` (a TIFF) on Ray into ``target``; the workers' CPU seconds and bytes moved, as a dict.

    ``on_workers(executor)`` is called once the actors are started (tests: their pids).
    """
    cfg, out = job.config, job.config.output
    w, h, bands = cfg.canvas.width, cfg.canvas.height, cfg.network.bands
    with RaySession(options.address, **dict(options.init_options)) as session, \
            RayExecutor(place_actors(session.nodes(), options.workers)) as ex:
        plan = BandPlan(w, h, out.tiff_tile, choose_band_shift(w, h, out.tiff_tile, ex.workers),
                        job.fmt.is_pyramid(out))
        task = TiffBandTask(cfg, plan, out.compression, out.quality, batch)
        check_workers(ex, cfg)
        if on_workers is not None:
            on_workers(ex)
        writer = None
        try:
            target.prepare()
            writer = open_writer(target.temp, job.fmt, w, h, bands, out, config=cfg, encoded_levels=plan.inside)
            for j, band in ex.map_ordered(task, range(plan.count), 2 * ex.workers):
                _writing(target, lambda: writer.write_encoded(band.tiles, band.reduced))
                if progress is not None:
                    y, n = plan.band(j)
                    progress((y + n) * w, w * h)
            _writing(target, writer.close)
            writer = None
            _writing(target, lambda: finish_metadata(target.temp, job.fmt, out, cfg))
            target.commit()
        except BaseException:
            if writer is not None:
                writer.abort()
            target.cleanup()
            raise
        return {"worker_cpu": ex.worker_cpu, "transfer_bytes": ex.sent + ex.received, "bands": plan.count,
                "band_rows": plan.rows, "encoded_levels": plan.inside, "workers": ex.workers}


def _writing(target: OutputTarget, step: Callable):
    """A step of the writer; its failures (not Ctrl-C) become one RenderError line."""
    try:
        return step()
    except (Exception, pyvips.Error) as exc:
        if isinstance(exc, (RenderError, UserError)):
            raise
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise RenderError(f"writing {target.path} failed: {lines[-1] if lines else repr(exc)}") from exc
