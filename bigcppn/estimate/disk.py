"""The free-space check before a render, and a full disk told in one line when it is hit anyway.

The check refuses only what clearly will not fit. When even the raw samples
of every level (an upper bound of any of bigcppn's outputs, with a margin)
fit in the free space, nothing is measured. Otherwise the size is estimated
from the picture (:mod:`bigcppn.estimate.sizes`, a second or two) and the
render is refused only when the low end of the estimate's range does not
fit; the message says the range and how it was found.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from ..errors import RenderError, UserError

__all__ = ["free_bytes", "raw_upper_bound", "check_job_disk", "check_pyramid_disk", "NO_SPACE",
           "no_space_error"]

NO_SPACE = "no space left on device"
MARGIN = 1.1  # raw bytes times this, plus a MB: no output of bigcppn's is larger


def free_bytes(path: str | Path) -> int:
    """Free bytes on the filesystem that will hold ``path`` (its folder, or the nearest one that exists)."""
    p = Path(path).absolute().parent
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def raw_upper_bound(levels: list[tuple[int, int]], samples: int, bytes_per_sample: int) -> int:
    """Bytes no encoding of these levels exceeds: their raw samples, with :data:`MARGIN`, plus a MB."""
    return int(sum(w * h for w, h in levels) * samples * bytes_per_sample * MARGIN) + (1 << 20)


def _refuse(what: str, est, need: int, free: int) -> None:
    from .plan import human_size

    raise UserError(f"not enough free disk for {what}: about {human_size(need)} needed ({est.describe()}), "
                    f"{human_size(free)} free; free some space or write elsewhere")


def check_job_disk(job, free: int | None = None, renderer=None) -> int:
    """UserError when ``job``'s output clearly will not fit where it goes; returns the bytes counted on."""
    from .sizes import estimate_output

    fmt, cfg = job.fmt, job.config
    c, out = cfg.canvas, cfg.output
    free = free_bytes(job.output) if free is None else free
    samples = 4 if out.cmyk else cfg.network.bands
    upper = fmt.disk_for(raw_upper_bound(fmt.level_sizes(c.width, c.height, out), samples, out.depth // 8), out)
    if upper <= free:
        return upper
    if renderer is None:
        from ..network.strips import renderer_for

        renderer, _plan = renderer_for(cfg)
    est = estimate_output(job, renderer)
    if fmt.disk_for(est.low, out) > free:
        _refuse(str(job.output), est, fmt.disk_for(est.bytes, out), free)
    return fmt.disk_for(est.bytes, out)


def check_pyramid_disk(request, renderer=None) -> None:
    """UserError when a pyramid's tiles clearly will not fit in the free space of its folder."""
    from .sizes import estimate_pyramid

    p = request.pyramid
    free = free_bytes(request.out.root / "_")  # (the pyramid's folder, or the nearest one that exists)
    upper = raw_upper_bound([(lv.width, lv.height) for lv in p.levels], request.config.network.bands, 1)
    if upper <= free:
        return
    if renderer is None:
        from ..network.strips import renderer_for

        renderer, _plan = renderer_for(request.config)
    est = estimate_pyramid(request, renderer)
    if est.low > free:
        _refuse("the pyramid", est, est.bytes, free)


def no_space_error(exc: BaseException, path: str | Path) -> RenderError | None:
    """A one-line RenderError when ``exc`` (or what caused it) is a full disk, else None.

    libvips' savers say only that they could not write ("vips2png: unable to
    write to target"); such a failure counts as a full disk when the folder has
    (almost) no space left.
    """
    seen, e = set(), exc
    vips = False
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return RenderError(f"{NO_SPACE} writing {path}; free some space or write elsewhere")
        text = str(e).lower()
        if "no space left" in text or "disk full" in text:
            return RenderError(f"{NO_SPACE} writing {path}; free some space or write elsewhere")
        vips = vips or "unable to write" in text or "write failed" in text or "vips" in text
        e = e.__cause__ or e.__context__
    if vips and free_bytes(path) < (4 << 20):
        return RenderError(f"{NO_SPACE} writing {path}; free some space or write elsewhere")
    return None
