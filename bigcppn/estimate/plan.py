"""What a render will take, before it runs: tiles, batches, memory, bytes on disk and time.

:func:`describe` turns a job and its plan into a :class:`PlanInfo` (what
``bigcppn plan`` prints), :func:`describe_pyramid` a pyramid's into a
:class:`PyramidPlanInfo` (``bigcppn pyramid --dry-run``); the time comes from
rates measured on this machine (:mod:`bigcppn.estimate.measure`) through
:func:`estimate_seconds`, the bytes from sample tiles rendered and encoded as the output encodes them
(:mod:`bigcppn.estimate.sizes`); :mod:`bigcppn.estimate.disk` refuses a render the disk cannot hold.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass

from ..formats.registry import estimate_output_bytes
from ..job import Job
from ..core.tiling import Tiling, estimate_peak_bytes
from ..core.system import available_cores
from ..core.units import PrintSize
from ..network.devices import policy_for

__all__ = ["PlanInfo", "PyramidPlanInfo", "describe", "describe_pyramid", "estimate_seconds",
           "human_size", "human_duration"]


@dataclass(frozen=True)
class PlanInfo:
    """What a render will do: the canvas, its tiles and batches, the output and the estimates."""

    width: int
    height: int
    bands: int
    depth: int
    tile: int
    tiles: int
    strips: int
    strip_height: int
    batches: int
    batch_pixels: int
    device: str
    path: str
    format: str
    estimated_bytes: int
    writer: str
    estimated_peak_bytes: int
    dpi: float
    bleed_px: int
    mm: tuple[float, float]
    trimmed_mm: tuple[float, float]
    network_mpix_per_s: float | None = None
    writer_mpix_per_s: float | None = None
    estimated_seconds: float | None = None
    bytes_range: tuple[int, int] | None = None  # what the size estimate is sure of (from sample tiles)
    seconds_range: tuple[float, float] | None = None  # on a loaded machine, what the load's predictions span
    ray: dict | None = None  # the band plan on Ray (``--executor ray``), from cluster.single.describe_blocks
    requests: dict | None = None  # to a bucket (-o s3://...): PUTs of the multipart upload, objects, bytes

    @property
    def megapixels(self) -> float:
        return round(self.width * self.height / 1e6, 3)

    def as_dict(self) -> dict:
        """The plan as ``bigcppn plan --json`` prints it."""
        d = {
            "canvas": {"width": self.width, "height": self.height, "megapixels": self.megapixels,
                       "bands": self.bands, "depth": self.depth},
            "tile": self.tile, "tiles": self.tiles, "strips": self.strips, "strip_height": self.strip_height,
            "batches": self.batches, "batch_pixels": self.batch_pixels, "device": self.device,
            "output": {"path": self.path, "format": self.format, "estimated_bytes": self.estimated_bytes,
                       "writer": self.writer},
            "estimated_peak_bytes": self.estimated_peak_bytes,
            "print": {"dpi": self.dpi, "bleed_px": self.bleed_px, "mm": list(self.mm),
                      "trimmed_mm": list(self.trimmed_mm)},
        }
        if self.bytes_range is not None:
            d["output"]["estimated_bytes_range"] = list(self.bytes_range)
        if self.estimated_seconds is not None:
            d["network_mpix_per_s"] = self.network_mpix_per_s
            d["writer_mpix_per_s"] = self.writer_mpix_per_s
            d["estimated_seconds"] = self.estimated_seconds
            if self.seconds_range is not None:
                d["estimated_seconds_range"] = list(self.seconds_range)
        if self.ray is not None:
            d["ray"] = self.ray
        if self.requests is not None:
            d["requests"] = self.requests
        return d

    def summary(self) -> str:
        """The plan in one line: pixels, time and bytes (printed before a long render)."""
        when = f", about {human_duration(self.estimated_seconds)}" if self.estimated_seconds is not None else ""
        return (f"{self.width} x {self.height} px ({self.megapixels:,.1f} MPix){when}, "
                f"about {human_size(self.estimated_bytes)} to {self.path}")

    def __str__(self) -> str:
        mode = {1: "grey", 3: "RGB"}[self.bands]
        lines = [
            f"canvas    {self.width} x {self.height} px ({self.megapixels:.1f} MPix), {mode} {self.depth}-bit",
            f"tiles     {self.tile} px: {self.strips} strips x {self.tiles // self.strips} columns = {self.tiles} tiles",
            f"batches   {self.batches} of up to {self.batch_pixels} px on {self.device}",
            f"output    {self.path} ({self.format}), about {human_size(self.estimated_bytes)}, "
            f"written by {self.writer}",
            f"memory    about {human_size(self.estimated_peak_bytes)} peak",
        ]
        (w, h), (tw, th) = self.mm, self.trimmed_mm
        if self.bleed_px:
            lines.append(f"print     {w:.0f} × {h:.0f} mm with bleed, {tw:.0f} × {th:.0f} mm trimmed, "
                         f"at {self.dpi:g} dpi (bleed {self.bleed_px} px a side)")
        else:
            lines.append(f"print     {w:.0f} × {h:.0f} mm at {self.dpi:g} dpi")
        if self.estimated_seconds is not None:
            fast, slow = map(human_duration, self.seconds_range or (0, 0))
            span = f"; {fast} to {slow} as the load goes" if fast != slow else ""
            lines.append(f"time      about {human_duration(self.estimated_seconds)} (measured here just now: "
                         f"network {self.network_mpix_per_s} MPix/s, writer {self.writer_mpix_per_s} MPix/s{span})")
        if self.ray is not None:
            r = self.ray
            one = r['blocks'] == 1
            shape = (f"{r['block_width']} x {r['block_rows']} block{'' if one else 's'}"
                     if r['block_width'] < self.width else f"band{'' if one else 's'} of {r['block_rows']} rows")
            lines.append(f"ray       {r['workers']} actor{'s' if r['workers'] > 1 else ''}: {r['blocks']} {shape}; "
                         f"levels 0-{r['levels_on_actors'] - 1} of {r['levels']} encoded on "
                         f"the actors; this machine places the tiles and builds the rest "
                         f"({r['driver_pixel_share']:.1%} of the pixels) from {human_size(r['rows_back_bytes'])} "
                         f"of rows (the time above is this machine's alone)")
        if self.requests is not None:
            r = self.requests
            what = (f"{r['parts']} part{'s' if r['parts'] > 1 else ''} of a multipart upload, completed only when "
                    "the file is" if r["objects"] == 1 else f"one an object: {r['objects'] - 2} tiles, the "
                    "config, the descriptor last")
            lines.append(f"requests  {r['puts']} PUTs ({what}), {r['lists']} LIST{'s' * (r['lists'] > 1)}, "
                         f"{r['gets']} GET{'s' * (r['gets'] > 1)} (what a bucket bills); uploads about "
                         f"{human_size(r['bytes_up'])}, staged under TMPDIR")
        return "\n".join(lines)


def estimate_seconds(mpix: float, rates, device: str, strip_mpix: float = 0.0) -> float:
    """Seconds to render and write ``mpix`` megapixels at the measured :class:`~bigcppn.estimate.measure.Rates`.

    On a GPU the network and the writer overlap: the slower one sets the pace.
    On a CPU they share the cores: the writer takes the cores it kept busy
    from those the network got (all of them, for bigcppn's own writers or on a
    machine busy with other work; one of two for a one-threaded libvips saver
    on an idle 2-core machine). Either way the writer cannot start
    before the first strip (each worker renders one at once) and the last
    strip still has to be written when the network is done.
    """
    net = mpix / rates.network_mpix_s
    enc = mpix / rates.writer_mpix_s
    first = strip_mpix * rates.workers / rates.network_mpix_s
    last = strip_mpix / rates.writer_mpix_s
    if policy_for(device).shares_cores_with_writer:
        net += enc * min(1.0, rates.writer_cores / max(rates.network_cores, 1e-9))
    return max(net + last, first + enc)


def describe(job: Job, plan: Tiling, device: str, rates=None, size=None) -> PlanInfo:
    """The plan of ``job``; with the :class:`~bigcppn.estimate.measure.Rates` measured here, its time too,
    and with a :class:`~bigcppn.estimate.sizes.SizeEstimate`, the bytes it found (else a rough ratio)."""
    cfg, out = job.config, job.config.output
    c = plan.canvas
    bands = cfg.network.bands
    cores = available_cores()
    strip = min(plan.strip_height, c.height) * c.width / 1e6
    seconds = round(estimate_seconds(c.pixels / 1e6, rates, device, strip), 1) if rates is not None else None
    span = None
    if rates is not None and rates.network_span is not None:  # a loaded CPU: the two predictions' seconds
        fast, slow = (estimate_seconds(c.pixels / 1e6, dataclasses.replace(rates, network_mpix_s=r), device, strip)
                      for r in rates.network_span[::-1])
        span = (round(fast, 1), round(slow, 1)) if slow > 1.1 * fast else None
    ps = PrintSize(c.width, c.height, c.bleed, cfg.canvas.dpi)
    return PlanInfo(
        width=c.width, height=c.height, bands=bands, depth=out.depth, tile=plan.tile, tiles=plan.tile_count,
        strips=plan.strip_count, strip_height=plan.strip_height, batches=plan.batch_count,
        batch_pixels=plan.batch_pixels, device=device, path=str(job.output), format=job.fmt.name,
        estimated_bytes=size.bytes if size else estimate_output_bytes(job.fmt, c.width, c.height, bands, out),
        bytes_range=(size.low, size.high) if size else None,
        writer=job.fmt.writer_text(out, cores),
        estimated_peak_bytes=estimate_peak_bytes(plan, bands, out.depth, cfg.render.queue,
                                                 max(cfg.network.hidden, default=3), cmyk=bool(out.cmyk)),
        dpi=ps.dpi, bleed_px=ps.bleed,
        mm=tuple(round(v, 1) for v in ps.mm()), trimmed_mm=tuple(round(v, 1) for v in ps.mm(trimmed=True)),
        network_mpix_per_s=round(rates.network_mpix_s, 2) if rates else None,
        writer_mpix_per_s=round(rates.writer_mpix_s, 1) if rates else None, estimated_seconds=seconds,
        seconds_range=span,
    )


@dataclass(frozen=True)
class PyramidPlanInfo:
    """What ``bigcppn pyramid`` would do: levels, tiles (all, and still to write), files, bytes and time."""

    path: str
    layout: str
    width: int
    height: int
    levels: int
    tile: int
    overlap: int
    format: str
    supersample: int
    tiles: int
    pending: int
    files: int
    estimated_bytes: int
    state: str  # "new", "resume" (the same render: finished tiles are skipped) or "replace" (--overwrite)
    samples: int  # network samples of the pending tiles
    device: str
    network_mpix_per_s: float | None = None
    level_msamples_per_s: float | None = None
    tile_ms: float | None = None
    estimated_seconds: float | None = None
    requests: dict | None = None  # in a bucket: the PUTs, LISTs, GETs and DELETEs it makes, and bytes uploaded

    def __str__(self) -> str:
        what = {"new": "a new pyramid", "resume": "resumes the pyramid there",
                "replace": "replaces another render's pyramid there (--overwrite)"}[self.state]
        lines = [
            f"pyramid   {self.path} ({self.layout}, {what})",
            f"canvas    {self.width} x {self.height} px, {self.levels} levels, {self.format} tiles of "
            f"{self.tile} px" + (f" + {self.overlap} overlap" if self.overlap else ""),
            f"tiles     {self.tiles} in all, {self.pending} to write; {self.files} files, "
            f"about {human_size(self.estimated_bytes)}",
            f"samples   {self.samples / 1e6:.1f} M network samples ({self.supersample}×{self.supersample} "
            f"per pixel below the base) on {self.device}",
        ]
        if self.estimated_seconds is not None:
            lines.append(f"time      about {human_duration(self.estimated_seconds)} (measured here just now: "
                         f"network {self.network_mpix_per_s} MPix/s at the base, "
                         f"{self.level_msamples_per_s} M samples/s below it, {self.tile_ms} ms a tile to encode "
                         "and write)")
        if self.requests is not None:
            r = self.requests
            lines.append(f"requests  {r['puts']} PUTs, {r['lists']} LISTs, {r['gets']} GETs, {r['deletes']} DELETEs "
                         f"(what a bucket bills); uploads about {human_size(r['bytes_up'])} in "
                         f"{r['objects']} objects")
        return "\n".join(lines)


def file_requests(estimated_bytes: int, part_bytes: int, objects: int = 1) -> dict:
    """The requests ``render -o s3://...`` makes: the bucket check (1 LIST) and whether the output is there
    (1 GET; a DeepZoom .dzi: a LIST of its tile folder and a GET of its sidecar and of its descriptor), then
    the upload. One file: one PUT when it fits one part, else CreateMultipartUpload, a PUT a part and
    CompleteMultipartUpload (billed as PUTs). Several (a .dzi): a PUT each, the descriptor last."""
    if objects > 1:
        return {"puts": objects, "parts": 0, "objects": objects, "lists": 2, "gets": 2, "deletes": 0,
                "bytes_up": estimated_bytes}
    parts = max(1, -(-estimated_bytes // part_bytes))
    return {"puts": 1 if parts == 1 else parts + 2, "parts": parts, "objects": 1, "lists": 1, "gets": 1,
            "deletes": 0, "bytes_up": estimated_bytes}


def bucket_requests(job, work, state: str, meta: int) -> dict:
    """The requests a pyramid render makes to a bucket, from its work list (``meta``: files besides tiles).

    PUTs: each missing tile, full image (IIIF) and other file, and the lock; LISTs: the bucket check, the tiles of a
    resumed, replaced or new pyramid (1000 keys a page); GETs: manifest, page and descriptor checks; DELETEs: the
    lock, and a replaced pyramid's objects (1000 a request)."""
    p = job.pyramid
    pages = max(1, -(-p.tile_count // 1000))
    names = {q for q, _w, _h in p.layout.full_images(p)}
    if names:  # a full image named as a one-tile level's tile is that tile (IIIF)
        names -= {t.path for lv in p.levels if lv.tile_count == 1 for t in p.tiles(lv.index)}
    full = len(names)
    puts = work.pending + full + meta + 1 - (1 if state == "resume" else 0)  # the manifest stays on a resume
    lists = 1 + (pages if state != "new" else 1)
    deletes = 1 + (pages + 2 if state == "replace" else 0)
    share = work.pending / p.tile_count if p.tile_count else 0
    # manifest, page (twice), a new one's descriptor, and whether each full image is there
    gets = 3 + (1 if state == "new" else 0) + len(p.layout.full_images(p))
    return {"objects": p.tile_count + full + meta, "puts": puts, "lists": lists, "gets": gets, "deletes": deletes,
            "bytes_up": int(job.estimated_bytes * share)}


def describe_pyramid(job, work, state: str, device: str, rates=None, size=None) -> PyramidPlanInfo:
    """The plan of a :class:`~bigcppn.pyramid.request.PyramidRequest` with ``work`` left; with rates, its time."""
    p = job.pyramid
    samples = work.samples(job.supersample)
    seconds = None
    if rates is not None:
        base = sum(t.pixels for t in work.base)
        pixels = base + sum(t.pixels for j in work.jobs for t in j.missing)
        net = base / 1e6 / rates.network_mpix_s + (samples - base) / 1e6 / rates.level_msamples_s
        tiles = pixels / rates.tile_pixels * rates.tile_seconds / available_cores()  # encoders on every core
        seconds = round(net + tiles if policy_for(device).shares_cores_with_writer else max(net, tiles), 1)
    meta = 2 + (1 if p.descriptor_path else 0) + (1 if p.layout.blank_tile else 0)  # manifest, page, ...
    requests = bucket_requests(job, work, state, meta) if job.out.storage.remote else None
    return PyramidPlanInfo(
        path=str(job.out.at(p.descriptor_path)) if p.descriptor_path else str(job.out.root),
        layout=p.layout.name, width=p.width, height=p.height, levels=len(p.levels), tile=p.tile, overlap=p.overlap,
        format=p.codec.name, supersample=job.supersample, tiles=p.tile_count, pending=work.pending,
        files=p.tile_count + meta, estimated_bytes=size.bytes if size else job.estimated_bytes, state=state, samples=samples,
        device=device, network_mpix_per_s=round(rates.network_mpix_s, 2) if rates else None,
        level_msamples_per_s=round(rates.level_msamples_s, 2) if rates else None,
        tile_ms=round(rates.tile_seconds * 1000, 2) if rates else None, estimated_seconds=seconds,
        requests=requests)


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def human_duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
