"""`bigcppn serve`: a live DeepZoom image, tiles rendered on demand, zooming on past the base size.

The server advertises a DeepZoom image ``2**extra`` times larger than the base
canvas, so a viewer can keep zooming until float64 runs out (by default as
far as :func:`~bigcppn.pyramid_plan.max_extra_levels` allows). Every tile is
sampled from the network at its level's resolution: supersampled below the
base, one sample per pixel at and past it, coordinates and the first layer
in float64.

Threads: the HTTP handler threads (one per connection) put tile requests in a
queue; one device thread takes whatever has arrived together (waiting a few
milliseconds for more) and evaluates it as one batch; a small pool encodes the
tiles, which go into an LRU cache of encoded bytes. A tile asked for while it
is being rendered is rendered once.

Paths: ``/`` (the viewer), ``/image.dzi``, ``/image_files/LEVEL/COL_ROW.jpeg``,
``/openseadragon/...`` (the viewer's script and images, held in memory). Nothing
else is read from disk, whatever the path: malformed tile paths get 400, tiles
that do not exist and every other path 404.
"""

from __future__ import annotations

import hashlib
import json
import queue
import re
import socket
import sys
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import torch

from . import __version__
from .config import Config, config_to_dict
from .errors import UserError
from .pyramid import LevelSampler, encode_tile
from .pyramid_plan import Pyramid, max_extra_levels

__all__ = ["TileCache", "TileService", "TileServer", "ServeStats", "make_server", "command"]

# LEVEL/COL_ROW.jpeg in canonical decimal (no sign, no leading zeros, no absurd lengths).
_TILE = re.compile(r"^/image_files/(0|[1-9][0-9]{0,5})/(0|[1-9][0-9]{0,17})_(0|[1-9][0-9]{0,17})\.jpeg$")


class TileCache:
    """An LRU cache of encoded tiles, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._d: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key):
        with self._lock:
            v = self._d.get(key)
            if v is None:
                self.misses += 1
                return None
            self._d.move_to_end(key)
            self.hits += 1
            return v

    def put(self, key, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            old = self._d.pop(key, None)
            if old is not None:
                self.bytes -= len(old)
            self._d[key] = data
            self.bytes += len(data)
            while self.bytes > self.max_bytes:
                _k, v = self._d.popitem(last=False)
                self.bytes -= len(v)

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._d


@dataclass
class ServeStats:
    requests: int = 0
    tiles_rendered: int = 0
    batches: int = 0
    largest_batch: int = 0
    errors: int = 0
    render_seconds: float = 0.0
    batch_sizes: list = field(default_factory=list)


class TileService:
    """Renders tiles of a :class:`Pyramid` (with levels past the base) on request, in batches."""

    def __init__(self, sampler: LevelSampler, pyramid: Pyramid, supersample: int = 2, quality: int = 90,
                 cache_bytes: int = 256 << 20, gather_s: float = 0.005, batch_samples: int | None = None,
                 encoders: int = 2) -> None:
        self.sampler = sampler
        self.pyramid = pyramid
        self.supersample = supersample
        self.quality = quality
        self.cache = TileCache(cache_bytes)
        self.gather_s = gather_s
        self.batch_samples = batch_samples or (1 << 20 if sampler.device.type == "cpu" else 1 << 24)
        self.stats = ServeStats()
        self._queue: queue.Queue = queue.Queue()
        self._inflight: dict = {}
        self._lock = threading.Lock()
        self._encoders = ThreadPoolExecutor(max(1, encoders), thread_name_prefix="bigcppn-encode")
        self._cpu_pool = None
        if sampler.device.type == "cpu":
            from .render import strip_workers

            self._cpu_pool = ThreadPoolExecutor(strip_workers(sampler.device), thread_name_prefix="bigcppn-cpu")
        self._thread = threading.Thread(target=self._loop, name="bigcppn-device", daemon=True)
        self._started = False
        self._stopped = threading.Event()

    def start(self) -> "TileService":
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._queue.put(None)
        if self._started:
            self._thread.join(5)
        with self._lock:
            pending, self._inflight = list(self._inflight.values()), {}
        for f in pending:  # whoever still waits is told, not left hanging
            if not f.done():
                f.set_exception(RuntimeError("the server is stopping"))
        self._encoders.shutdown(wait=True, cancel_futures=True)
        if self._cpu_pool is not None:
            self._cpu_pool.shutdown(wait=True, cancel_futures=True)

    def tile_key(self, level: int, col: int, row: int) -> tuple[int, int, int]:
        """Checks that the tile exists (IndexError otherwise)."""
        self.pyramid.tile_at(level, col, row)
        return (level, col, row)

    def request(self, level: int, col: int, row: int) -> Future:
        """A future of the tile's encoded bytes; IndexError for a tile that does not exist."""
        key = self.tile_key(level, col, row)
        data = self.cache.get(key)
        if data is not None:
            f: Future = Future()
            f.set_result(data)
            return f
        with self._lock:
            f = self._inflight.get(key)
            if f is not None:
                return f
            f = Future()
            self._inflight[key] = f
        self._queue.put(key)
        return f

    def get(self, level: int, col: int, row: int, timeout: float | None = 120) -> bytes:
        return self.request(level, col, row).result(timeout)

    # ------------------------------------------------------------------ the device thread

    def _gather(self, first) -> list:
        keys, samples = [first], self._samples(first)
        deadline = time.monotonic() + self.gather_s
        while samples < self.batch_samples:
            try:
                key = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if key is None:
                self._queue.put(None)
                break
            keys.append(key)
            samples += self._samples(key)
        return keys

    def _k(self, t) -> int:
        return self.supersample if t.shift > 0 else 1

    def _samples(self, key) -> int:
        t = self.pyramid.tile_at(*key)
        return t.pixels * self._k(t) ** 2

    def _loop(self) -> None:
        while not self._stopped.is_set():
            first = self._queue.get()
            if first is None:
                return
            keys = self._gather(first)
            tiles = [self.pyramid.tile_at(*k) for k in keys]
            t0 = time.perf_counter()
            try:
                arrays: dict = {}
                if self._cpu_pool is not None:
                    # a CPU: the batch's tiles spread over the cores, one torch thread each (each tile
                    # on its own, so a tile is the same whatever arrived with it)
                    futs = {key: self._cpu_pool.submit(
                        self.sampler.render_many, [(t.shift, t.x, t.y, t.width, t.height)], self._k(t))
                        for key, t in zip(keys, tiles)}
                    arrays = {key: f.result()[0] for key, f in futs.items()}
                else:
                    # a GPU: one device call per sampling rate for the whole batch
                    for k in sorted({self._k(t) for t in tiles}):
                        group = [(key, t) for key, t in zip(keys, tiles) if self._k(t) == k]
                        rects = [(t.shift, t.x, t.y, t.width, t.height) for _key, t in group]
                        for (key, _t), arr in zip(group, self.sampler.render_many(rects, k)):
                            arrays[key] = arr
            except Exception as exc:  # the batch failed: every request in it gets the error
                self.stats.errors += 1
                for key in keys:
                    self._finish(key, exc=exc)
                continue
            self.stats.render_seconds += time.perf_counter() - t0
            self.stats.batches += 1
            self.stats.tiles_rendered += len(keys)
            self.stats.largest_batch = max(self.stats.largest_batch, len(keys))
            self.stats.batch_sizes.append(len(keys))
            for key in keys:
                self._encoders.submit(self._encode, key, arrays[key])

    def _encode(self, key, arr) -> None:
        try:
            data = encode_tile(arr, self.pyramid.suffix, self.quality)
        except Exception as exc:
            self._finish(key, exc=exc)
            return
        self.cache.put(key, data)
        self._finish(key, data=data)

    def _finish(self, key, data: bytes | None = None, exc: BaseException | None = None) -> None:
        with self._lock:
            f = self._inflight.pop(key, None)
        if f is None:
            return
        if exc is not None:
            f.set_exception(exc)
        else:
            f.set_result(data)


class TileServer(ThreadingHTTPServer):
    """The HTTP server: a :class:`TileService`, the viewer page and OpenSeadragon's files, in memory."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, service: TileService, page: str, assets: dict[str, bytes], etag: str,
                 verbose: bool = False) -> None:
        self.service = service
        self.page = page.encode("utf-8")
        self.dzi = service.pyramid.descriptor().encode("utf-8")
        self.assets = assets
        self.etag = etag
        self.verbose = verbose
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


_TYPES = {".js": "text/javascript; charset=utf-8", ".png": "image/png"}


class _Handler(BaseHTTPRequestHandler):
    server: TileServer
    server_version = f"bigcppn/{__version__}"
    protocol_version = "HTTP/1.1"
    # Answer a request line that is not HTTP with a status line too, not HTTP/0.9's bare body.
    default_request_version = "HTTP/1.0"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class' name
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._route(send_body=True)

    def do_HEAD(self) -> None:
        self._route(send_body=False)

    def _send(self, status: int, body: bytes, ctype: str, send_body: bool, etag: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        if etag:
            self.send_header("ETag", etag)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _error(self, status: HTTPStatus, why: str, send_body: bool) -> None:
        self._send(status, f"{status.value} {status.phrase}: {why}\n".encode(), "text/plain; charset=utf-8",
                   send_body)

    def _route(self, send_body: bool) -> None:
        srv = self.server
        srv.service.stats.requests += 1
        path = urlsplit(self.path).path
        # Paths are matched as they arrive, never decoded nor joined to a folder: nothing
        # outside what the server generates can be reached. Anything that looks like a way
        # out is simply not found.
        if ".." in path or "%" in path or "\\" in path or "//" in path:
            self._error(HTTPStatus.NOT_FOUND, "no such path", send_body)
            return
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, srv.page, "text/html; charset=utf-8", send_body)
        elif path == "/image.dzi":
            self._send(HTTPStatus.OK, srv.dzi, "application/xml; charset=utf-8", send_body, f'"{srv.etag}"')
        elif path.startswith("/openseadragon/") and path[len("/openseadragon/"):] in srv.assets:
            rel = path[len("/openseadragon/"):]
            ctype = _TYPES.get(rel[rel.rfind("."):], "application/octet-stream")
            self._send(HTTPStatus.OK, srv.assets[rel], ctype, send_body)
        elif path.startswith("/image_files/"):
            self._tile(path, send_body)
        else:
            self._error(HTTPStatus.NOT_FOUND, "no such path", send_body)

    def _tile(self, path: str, send_body: bool) -> None:
        srv = self.server
        m = _TILE.match(path)
        if not m:
            self._error(HTTPStatus.BAD_REQUEST, "tiles are /image_files/LEVEL/COL_ROW.jpeg", send_body)
            return
        level, col, row = int(m.group(1)), int(m.group(2)), int(m.group(3))
        try:
            srv.service.tile_key(level, col, row)
        except IndexError as exc:
            self._error(HTTPStatus.NOT_FOUND, str(exc), send_body)
            return
        etag = f'"{srv.etag}-{level}-{col}-{row}"'
        if etag in (self.headers.get("If-None-Match") or ""):
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        try:
            data = srv.service.get(level, col, row)
        except Exception as exc:  # the render failed; say so and keep serving
            srv.service.stats.errors += 1
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"rendering failed: {exc}", send_body)
            return
        self._send(HTTPStatus.OK, data, "image/jpeg", send_body, etag)


def _config_tag(cfg: Config, extra: dict) -> str:
    text = json.dumps({"config": config_to_dict(cfg), **extra}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def make_server(cfg: Config, host: str = "127.0.0.1", port: int = 0, tile: int = 254, overlap: int = 1,
                extra_levels: int | None = None, supersample: int = 2, quality: int = 90,
                cache_bytes: int = 256 << 20, device: torch.device | None = None, verbose: bool = False,
                start: bool = True) -> TileServer:
    """Build the service and bind the server (not yet serving: call ``serve_forever``)."""
    from .render import pick_device, renderer_for
    from .viewer import find_openseadragon, live_page, openseadragon_files

    device = device or pick_device(cfg.render.device)
    renderer, _plan = renderer_for(cfg, device)
    c, view = renderer.canvas, renderer.sampling.view
    pitch = view.pitch(c)
    limit = max_extra_levels(c.width, c.height, view.center_x, view.center_y, pitch)
    if extra_levels is None:
        extra_levels = limit
    elif not 0 <= extra_levels <= limit:
        raise UserError(f"--extra-levels {extra_levels}: float64 resolves at most {limit} levels past this "
                        f"{c.width}x{c.height} canvas here; use 0 to {limit}")
    p = Pyramid(c.width, c.height, "dz", tile, overlap, "jpeg", name="image", extra=extra_levels)
    sampler = LevelSampler(renderer.model, c, view, device)
    service = TileService(sampler, p, supersample=supersample, quality=quality, cache_bytes=cache_bytes)
    build = find_openseadragon()
    assets = {rel: f.read_bytes() for rel, f in openseadragon_files(build).items()} if build else {}
    info = (f"bigcppn {__version__} · seed {cfg.seed} · {c.width}×{c.height} px base, zooms ×2^{extra_levels} "
            f"past it · rendered live")
    page = live_page(f"bigcppn · seed {cfg.seed} (live)", info, local_osd=bool(assets))
    etag = _config_tag(cfg, {"tile": tile, "overlap": overlap, "extra": extra_levels, "k": supersample,
                             "q": quality, "v": __version__})
    server = TileServer((host, port), service, page, assets, etag, verbose=verbose)
    if start:
        service.start()
    return server


def command(args, cfg: Config) -> int:
    """``bigcppn serve``: bind, print the address, serve until Ctrl-C."""
    quality = args.quality if args.quality is not None else cfg.output.quality
    if not 1 <= quality <= 100:
        raise UserError(f"--quality must be between 1 and 100, got {quality}")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, got {args.port}")
    if args.supersample > 16:
        raise UserError(f"--supersample {args.supersample} is more than needed; use at most 16")
    tile = args.tile or 254
    if tile > 4096:
        raise UserError(f"--tile {tile} is too large for a live server; use at most 4096")
    overlap = 1 if tile > 1 else 0
    try:
        server = make_server(cfg, args.host, args.port, tile, overlap, args.extra_levels, args.supersample,
                             quality, args.cache_mb << 20, verbose=getattr(args, "verbose", False))
    except OSError as exc:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}; "
                        "choose another --port (0 picks a free one) or --host") from None
    p = server.service.pyramid
    print(f"serving seed {cfg.seed} at {server.url} ({p.width}x{p.height} base, {p.extra} levels past it, "
          f"{p.virtual_width}x{p.virtual_height} in all); Ctrl-C stops", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"bigcppn: note: listening on {args.host}, so other machines that reach it can use this server",
              file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.service.stop()
    s = server.service.stats
    print(f"stopped after {s.requests} requests, {s.tiles_rendered} tiles rendered in {s.batches} batches",
          file=sys.stderr)
    return 0
