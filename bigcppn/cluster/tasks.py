"""What runs inside a Ray actor: the network built once, the folder check, pyramid jobs, blocks of a file.

Nothing here imports Ray: these are plain picklable callables that
:class:`~bigcppn.cluster.executor.RayExecutor` runs on its actors, so they are
tested as they are. Each actor process keeps one network
(:func:`backend`), rebuilt from the config, weights drawn from the seed, so
every worker evaluates the very function the local renderer does.
"""

from __future__ import annotations

import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..errors import RenderError
from ..core.geometry import Window
from ..formats.tiles import TileCodec
from ..pyramid.levels import LevelTile
from ..pyramid.worklist import LevelJob
from ..formats.deepzoom.blocks import DzBlockGrid, EncodedDzBlock, encode_dz_block
from ..formats.tiff.blocks import TiffBlockGrid, EncodedBlock, encode_block

__all__ = ["configure", "cores", "backend", "FolderCheck", "ActorJob", "PyramidTask", "TiffBlockTask", "DzBlockTask", "render_rect",
           "WorkerSetup", "FullImagesTask", "host", "block_task"]

_state: dict = {"cores": 1, "config": None, "backend": None}
_lock = threading.Lock()


def configure(n: int) -> None:
    """This process is an actor holding ``n`` cores: ``n`` threads of one torch thread each."""
    import torch

    _state["cores"] = max(1, int(n))
    torch.set_num_threads(1)


def cores() -> int:
    return _state["cores"]


def host() -> str:
    return f"{socket.gethostname()} (pid {os.getpid()})"


def backend(cfg: Config):
    """This process' renderer for ``cfg``, built on first use; RenderError naming the host when it cannot be."""
    with _lock:
        if _state["backend"] is None or _state["config"] != cfg:
            from ..network.strips import renderer_for

            try:
                _state["backend"] = renderer_for(cfg)[0]
            except Exception as exc:
                raise RenderError(f"a worker on {host()} could not build the network: "
                                  f"{type(exc).__name__}: {exc}") from None
            _state["config"] = cfg
        return _state["backend"]


@dataclass(frozen=True)
class WorkerSetup:
    """Run on every actor at the start: build the network (RenderError if it cannot be), return bigcppn's version.

    Done before the driver writes anything, so a worker that cannot render leaves no trace.
    """

    config: Config

    def __call__(self, _item=None) -> str:
        from .._version import __version__

        backend(self.config)
        return __version__


@dataclass(frozen=True)
class FolderCheck:
    """Run on every actor at the start: the output folder is the driver's, readable and writable here.

    The driver writes ``token`` into ``root / name`` (the pyramid's lock file);
    a worker that does not find it there is on a machine that does not share
    the folder; the write probe is a partial file a resume sweeps. Returns the
    problem as a line (None when there is none) and this worker's bigcppn version.
    """

    root: str
    name: str
    token: str

    def __call__(self, _item=None) -> tuple[str | None, str]:
        from .._version import __version__

        root = Path(self.root)
        shared = "the output folder must be on a filesystem every Ray node shares (NFS, Lustre, CephFS ...)"
        if not root.is_dir():
            return f"the output folder '{root}' does not exist on the worker {host()}; {shared}", __version__
        try:
            seen = (root / self.name).read_text(encoding="utf-8")
        except OSError:
            seen = None
        if seen != self.token:
            return (f"the worker {host()} sees a different '{root}' than the driver; {shared}"), __version__
        probe = root / f".bigcppn-probe.partial-{os.getpid()}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            return f"the worker {host()} cannot write in '{root}' ({exc.strerror}); {shared}", __version__
        return None, __version__


@dataclass(frozen=True)
class ActorJob:
    """Work for one actor: base tiles (each rendered as its own window) and level jobs (as the local run groups them)."""

    base: tuple[LevelTile, ...] = ()
    levels: tuple[LevelJob, ...] = ()

    def samples(self, k: int) -> int:
        return sum(t.pixels for t in self.base) + k * k * sum(t.pixels for j in self.levels for t in j.tiles)

    def wanted(self) -> list[LevelTile]:
        """The tiles this job writes, in order."""
        return list(self.base) + [t for j in self.levels for t in j.missing]


@dataclass(frozen=True)
class PyramidTask:
    """Render, encode and write an :class:`ActorJob`'s tiles into the shared folder; returns their paths.

    A base tile is :meth:`~bigcppn.network.backend.Backend.render_window` of its
    rectangle: every pixel is evaluated on its own, so it is the pixel the
    strips of a local run hold (``tests/cluster/test_cluster.py`` checks it to the bit).
    A level job is :meth:`~bigcppn.network.backend.Backend.render_many` of the same
    tiles as the local run's job. Tiles go through the same encoder and atomic
    write, so the files are the local run's, byte for byte.
    """

    config: Config
    root: str  # a shared folder, or a bucket's URL (then ``storage`` says how to reach it)
    codec: TileCodec
    quality: int
    supersample: int
    storage: object = None  # a bigcppn.storage.base.StorageOptions for a bucket

    def __call__(self, job: ActorJob) -> list[str]:
        from ..pyramid.images import write_tile

        r = backend(self.config)
        store = _tile_store(self.root, self.storage)
        k = self.supersample

        def base(t: LevelTile) -> list[str]:
            write_tile(store, t, r.render_window(Window(t.x, t.y, t.width, t.height)), self.codec, self.quality)
            return [t.path]

        def level(j: LevelJob) -> list[str]:
            arrays = r.render_many([(t.shift, t.x, t.y, t.width, t.height) for t in j.tiles], k)
            wanted = set(j.missing)
            for t, arr in zip(j.tiles, arrays):
                if t in wanted:
                    write_tile(store, t, arr, self.codec, self.quality)
            return [t.path for t in j.missing]

        units = [(base, t) for t in job.base] + [(level, j) for j in job.levels]
        written: list[str] = []
        try:
            if cores() == 1 or len(units) == 1:
                for f, u in units:
                    written += f(u)
            else:
                with ThreadPoolExecutor(min(cores(), len(units)), thread_name_prefix="bigcppn-actor") as pool:
                    for paths in pool.map(lambda fu: fu[0](fu[1]), units):
                        written += paths
            store.flush()  # a bucket's uploads: every tile of the job is up before the job counts as done
        except OSError as exc:
            raise RenderError(f"a worker on {host()} could not write a tile in '{self.root}': "
                              f"{exc.strerror or exc}") from None
        return written


@dataclass(frozen=True)
class FullImagesTask:
    """The whole picture at the sizes the layout names besides its tiles (IIIF), as the local run makes them."""

    config: Config
    pyramid: object  # a bigcppn.pyramid.grid.Pyramid
    root: str
    supersample: int
    quality: int
    storage: object = None  # as PyramidTask's

    def __call__(self, _item=None) -> None:
        from ..pyramid.images import write_full_images

        store = _tile_store(self.root, self.storage)
        write_full_images(self.pyramid, backend(self.config), store, supersample=self.supersample,
                          quality=self.quality)
        store.flush()


def _tile_store(root: str, storage):
    """The tile store of an actor: the shared folder, or the bucket (opened here, with this node's credentials)."""
    from ..pyramid.tilestore import TileStore
    from ..storage.base import open_storage

    return TileStore(open_storage(root, storage) if storage is not None else Path(root))


def render_rect(r, x: int, y: int, w: int, h: int, batch: int, workers: int = 1):
    """The canvas' pixels in ``(x, y, w, h)``, rendered in windows of about ``batch`` pixels on threads."""
    import numpy as np

    out = np.empty((h, w, r.bands), dtype=r.dtype)
    step = max(1, batch // w)

    def piece(y0: int) -> None:
        n = min(step, y + h - y0)
        out[y0 - y : y0 - y + n] = r.render_window(Window(x, y0, w, n))

    starts = range(y, y + h, step)
    if workers == 1 or len(starts) == 1:
        for y0 in starts:
            piece(y0)
    else:
        with ThreadPoolExecutor(min(workers, len(starts)), thread_name_prefix="bigcppn-rows") as pool:
            list(pool.map(piece, starts))
    return out


@dataclass(frozen=True)
class TiffBlockTask:
    """Render block ``b`` of a TIFF and encode every tile of the levels inside it (:func:`encode_block`).

    The block's pixels are :meth:`~bigcppn.network.backend.Backend.render_window` of
    windows, pixel for pixel the local strips; the tiles are the
    TIFF writer's own encoding, so the driver only places them. With a CMYK
    ``profile`` (libvips' built-in ``"cmyk"``, or an ICC profile's bytes, so
    the file need not be on the worker) the rows are converted first, as the
    local :class:`~bigcppn.formats.cmyk.CmykWriter` converts its strips.
    """

    config: Config
    plan: TiffBlockGrid
    compression: str
    quality: int
    batch: int
    profile: str | bytes | None = None

    def __call__(self, b: int) -> EncodedBlock:
        r = backend(self.config)
        pixels = render_rect(r, *self.plan.block(b), self.batch, cores())
        if self.profile is not None:
            from ..formats.cmyk import to_cmyk

            out = self.config.output
            pixels = to_cmyk(pixels, profile_file(self.profile), out.intent, out.depth)
        return encode_block(pixels, self.plan, b, self.compression, self.quality, cores())


def profile_file(profile: str | bytes) -> str:
    """A CMYK profile as libvips names it: the built-in one's name, or a file of these bytes in this worker's temp."""
    if isinstance(profile, str):
        return profile
    import hashlib
    import tempfile

    path = Path(tempfile.gettempdir()) / f"bigcppn-{hashlib.sha256(profile).hexdigest()[:16]}.icc"
    if not path.exists() or path.read_bytes() != profile:
        from ..core.atomic import write_atomic

        write_atomic(path, profile)
    return str(path)


@dataclass(frozen=True)
class DzBlockTask:
    """Render block ``b`` of a DeepZoom pyramid with its margins and encode its tiles (:func:`encode_dz_block`).

    Pixels as :class:`TiffBlockTask` renders them; tiles as the DeepZoom writer encodes them.
    """

    config: Config
    plan: DzBlockGrid
    quality: int
    batch: int

    def __call__(self, b: int) -> EncodedDzBlock:
        r = backend(self.config)
        pixels = render_rect(r, *self.plan.region(b), self.batch, cores())
        return encode_dz_block(pixels, self.plan, b, self.quality, cores())


def _tiff_task(cfg: Config, plan: TiffBlockGrid, batch: int) -> TiffBlockTask:
    out = cfg.output
    profile = None
    if out.cmyk:  # the profile's bytes travel with the task: the file need not be on the workers
        from ..formats.icc import BUILTIN_CMYK, cmyk_profile

        profile = out.cmyk if out.cmyk == BUILTIN_CMYK else cmyk_profile(out.cmyk)
    return TiffBlockTask(cfg, plan, out.compression, out.quality, batch, profile)


def _dz_task(cfg: Config, plan: DzBlockGrid, batch: int) -> DzBlockTask:
    return DzBlockTask(cfg, plan, cfg.output.quality, batch)


# The task that renders and encodes a block, by the kind of block plan the format made.
BLOCK_TASKS = {TiffBlockGrid: _tiff_task, DzBlockGrid: _dz_task}


def block_task(cfg: Config, plan, batch: int):
    """The task an actor runs on block number ``b`` of ``plan``: a TIFF's or a DeepZoom file's."""
    return BLOCK_TASKS[type(plan)](cfg, plan, batch)
