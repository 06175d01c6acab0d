"""`bigcppn serve`: a live DeepZoom image, tiles rendered on demand, zooming on past the base size.

The server advertises a DeepZoom image ``2**extra`` times larger than the base
canvas, so a viewer can keep zooming until float64 runs out (by default as
far as :func:`~bigcppn.pyramid.grid.max_extra_levels` allows). Every tile is
sampled from the network at its level's resolution: supersampled below the
base, one sample per pixel at and past it, coordinates and the first layer
in float64.

Threads: one event loop (:mod:`bigcppn.server.httpd`) holds every connection and puts
tile requests in a queue; one device thread takes whatever has arrived together
(waiting a few milliseconds for more) and evaluates it as one batch; a small
pool encodes the tiles, which go into an LRU cache of encoded bytes, and wakes
the loop to send them. A tile asked for while it is being rendered is rendered
once.

Paths: ``/`` (the viewer), ``/image.dzi``, ``/image_files/LEVEL/COL_ROW.jpeg``,
the same two under ``/v/TAG/`` (TAG: the config's hash; cached as immutable),
``/openseadragon/...`` (the viewer's script and images, held in memory). Nothing
else is read from disk, whatever the path: malformed tile paths get 400, tiles
that do not exist and every other path 404.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import threading
from dataclasses import dataclass
from http import HTTPStatus
from typing import Callable
from urllib.parse import urlsplit

import torch

from .._version import __version__
from ..config import Config, config_to_dict
from ..errors import UserError
from .httpbase import Limits, Pending, Request, Response, is_loopback
from .httpd import EventServer
from ..pyramid.grid import Pyramid, max_extra_levels
from .tiles import ServeStats, Stopping, TileCache, TileService

__all__ = ["TileCache", "TileService", "TileServer", "ServeStats", "ServeResult", "serve", "make_server",
           "serve_until_stopped", "exposure_note", "config_tag", "tile_service"]

# LEVEL/COL_ROW.EXT in canonical decimal (no sign, no leading zeros, no absurd lengths).
_TILE = r"^/image_files/(0|[1-9][0-9]{0,5})/(0|[1-9][0-9]{0,17})_(0|[1-9][0-9]{0,17})\.%s$"


_IMMUTABLE = "public, max-age=31536000, immutable"
_TYPES = {".js": "text/javascript; charset=utf-8", ".png": "image/png"}
_TEXT = "text/plain; charset=utf-8"


def _etag_matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    return header.strip() == "*" or etag in (t.strip().removeprefix("W/") for t in header.split(","))


class TileServer(EventServer):
    """The HTTP server: a :class:`TileService`, the viewer page and OpenSeadragon's files, in memory.

    The image has two addresses. ``/v/TAG/image.dzi`` (tiles under ``/v/TAG/image_files/``), TAG the
    hash of everything that decides the pixels, never changes meaning, so its tiles are sent as
    immutable and a browser keeps them for a year; the page uses it. ``/image.dzi`` and
    ``/image_files/`` stay for other clients, revalidated by ETag: the same port may serve another
    config tomorrow. ``cors`` adds ``Access-Control-Allow-Origin: *``.
    """

    def __init__(self, address, service: TileService, page: str, assets: dict[str, bytes], etag: str,
                 verbose: bool = False, cors: bool = False, limits: Limits | None = None) -> None:
        self.service = service
        self.page = page.encode("utf-8")
        self.dzi = service.pyramid.descriptor().encode("utf-8")
        self.tile_path = re.compile(_TILE % re.escape(service.pyramid.ext))
        self.assets = assets
        self.etag = etag
        self.prefix = f"/v/{etag}"
        self.cors = cors
        super().__init__(address, self.handle, limits, verbose, name=f"bigcppn/{__version__}")

    def _begin_drain(self) -> None:
        """Stopping (on the loop's thread, not in a signal handler): tiles not begun are dropped, their
        requests answered with an error; the batch being rendered is finished."""
        self.service.drop_queued()
        super()._begin_drain()

    def _headers(self, ctype: str | None, cache: str = "no-cache", etag: str | None = None) -> list:
        h = [("Content-Type", ctype)] if ctype else []
        h += [("Cache-Control", cache), ("X-Content-Type-Options", "nosniff")]
        if etag:
            h.append(("ETag", etag))
        if self.cors:
            h.append(("Access-Control-Allow-Origin", "*"))
        return h

    def _error(self, status: HTTPStatus, why: str) -> Response:
        return Response(status, f"{status.value} {status.phrase}: {why}\n".encode(), self._headers(_TEXT))

    def _cached(self, req: Request, body: bytes, ctype: str, cache: str, etag: str) -> Response:
        if _etag_matches(req.headers.get("if-none-match"), etag):
            return Response(HTTPStatus.NOT_MODIFIED, b"", self._headers(None, cache, etag))
        return Response(HTTPStatus.OK, body, self._headers(ctype, cache, etag))

    def handle(self, req: Request) -> Response | Pending:
        self.service.stats.requests += 1
        if req.method == "OPTIONS":
            h = [("Allow", "GET, HEAD, OPTIONS")]
            if self.cors:
                h += [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS"),
                      ("Access-Control-Max-Age", "86400")]
            return Response(HTTPStatus.NO_CONTENT, b"", h)
        path = urlsplit(req.target).path
        # Paths are matched as they arrive, never decoded nor joined to a folder: nothing
        # outside what the server generates can be reached. Anything that looks like a way
        # out is simply not found.
        if ".." in path or "%" in path or "\\" in path or "//" in path or not path.startswith("/"):
            return self._error(HTTPStatus.NOT_FOUND, "no such path")
        cache = "no-cache"
        if path.startswith("/v/"):
            if not path.startswith(self.prefix + "/"):
                return self._error(HTTPStatus.NOT_FOUND, "not this server's image (reload the page)")
            path, cache = path[len(self.prefix):], _IMMUTABLE
            if path != "/image.dzi" and not path.startswith("/image_files/"):
                return self._error(HTTPStatus.NOT_FOUND, "no such path")
        if path in ("/", "/index.html"):
            return Response(HTTPStatus.OK, self.page, self._headers("text/html; charset=utf-8"))
        if path == "/image.dzi":
            return self._cached(req, self.dzi, "application/xml; charset=utf-8", cache, f'"{self.etag}"')
        if path.startswith("/openseadragon/") and path[len("/openseadragon/"):] in self.assets:
            rel = path[len("/openseadragon/"):]
            return Response(HTTPStatus.OK, self.assets[rel],
                            self._headers(_TYPES.get(rel[rel.rfind("."):], "application/octet-stream")))
        if path.startswith("/image_files/"):
            return self._tile(req, path, cache)
        return self._error(HTTPStatus.NOT_FOUND, "no such path")

    def _tile(self, req: Request, path: str, cache: str) -> Response | Pending:
        m = self.tile_path.match(path)
        if not m:
            return self._error(HTTPStatus.BAD_REQUEST,
                               f"tiles are /image_files/LEVEL/COL_ROW.{self.service.pyramid.ext}")
        level, col, row = int(m.group(1)), int(m.group(2)), int(m.group(3))
        try:
            self.service.tile_key(level, col, row)
        except IndexError as exc:
            return self._error(HTTPStatus.NOT_FOUND, str(exc))
        etag = f'"{self.etag}-{level}-{col}-{row}"'
        if _etag_matches(req.headers.get("if-none-match"), etag):
            return Response(HTTPStatus.NOT_MODIFIED, b"", self._headers(None, cache, etag))
        return Pending(self.service.request(level, col, row), lambda f: self._tile_done(f, cache, etag),
                       lambda: self.service.release(level, col, row))

    def _tile_done(self, f, cache: str, etag: str) -> Response:
        try:
            data = f.result()
        except Stopping as exc:
            return self._error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
        except Exception as exc:  # the render failed; say so and keep serving
            self.service.stats.errors += 1
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"rendering failed: {exc}")
        return Response(HTTPStatus.OK, data, self._headers(self.service.pyramid.codec.mime, cache, etag))


def config_tag(cfg: Config, extra: dict) -> str:
    """The hash of everything that decides the pixels served: the config and the server's ``extra`` settings."""
    text = json.dumps({"config": config_to_dict(cfg), **extra}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tile_service(renderer, width: int, height: int, tile: int, overlap: int, extra_levels: int,
                 supersample: int, quality: int, cache_bytes: int) -> TileService:
    """The live DeepZoom image of ``renderer`` (a canvas of width x height, ``extra_levels`` past it), not started."""
    p = Pyramid(width, height, "dz", tile, overlap, "jpeg", name="image", extra=extra_levels)
    # the compute backend: pyramid levels through Backend.render_many
    return TileService(renderer, p, supersample=supersample, quality=quality, cache_bytes=cache_bytes)


def make_server(cfg: Config, host: str = "127.0.0.1", port: int = 0, tile: int = 254, overlap: int = 1,
                extra_levels: int | None = None, supersample: int = 2, quality: int = 90,
                cache_bytes: int = 256 << 20, device: torch.device | None = None, verbose: bool = False,
                start: bool = True, cors: bool = False, limits: Limits | None = None) -> TileServer:
    """Build the service and bind the server (not yet serving: call ``serve_forever``)."""
    from ..network.strips import renderer_for
    from ..network.devices import pick_device
    from ..pyramid.viewer import find_openseadragon, live_page, openseadragon_files

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
    service = tile_service(renderer, c.width, c.height, tile, overlap, extra_levels, supersample, quality,
                           cache_bytes)
    build = find_openseadragon()
    assets = {rel: f.read_bytes() for rel, f in openseadragon_files(build).items()} if build else {}
    info = (f"bigcppn {__version__} · seed {cfg.seed} · {c.width}×{c.height} px base, zooms ×2^{extra_levels} "
            f"past it · rendered live")
    etag = config_tag(cfg, {"tile": tile, "overlap": overlap, "extra": extra_levels, "k": supersample,
                             "q": quality, "v": __version__})
    page = live_page(f"bigcppn · seed {cfg.seed} (live)", info, local_osd=bool(assets), dzi=f"/v/{etag}/image.dzi")
    server = TileServer((host, port), service, page, assets, etag, verbose=verbose, cors=cors, limits=limits)
    if start:
        service.start()
    return server


def serve_until_stopped(server: EventServer, grace: float = 5.0, on_stop: Callable[[], None] | None = None) -> int:
    """Serve until SIGTERM or SIGINT, then stop: the exit status (143 for SIGTERM, 130 for Ctrl-C).

    On the first signal the server stops accepting, closes idle connections and finishes the answers
    in progress (the batch of tiles being rendered; tiles not begun are dropped), for at most ``grace``
    seconds; a second signal stops it at once. Signals are caught only when called from the main thread.
    ``on_stop`` (default: stop the tile service) runs once the server has stopped serving."""
    got: list[int] = []

    def on_signal(signum, _frame) -> None:
        if got:
            server.stop_now()
        else:
            server.drain(grace)
        got.append(signum)

    old = {}
    if threading.current_thread() is threading.main_thread():
        old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # a Ctrl-C that came before the handler
        got.append(signal.SIGINT)
    finally:
        server.server_close()
        (on_stop or server.service.stop)()
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return 128 + got[0] if got else 0  # 143 for SIGTERM, 130 for Ctrl-C, like every other subcommand


def exposure_note(server: TileServer) -> str | None:
    """A warning when the server is reachable from other machines (bound to anything but loopback)."""
    host = server.server_address[0]
    if is_loopback(host):
        return None
    return f"bigcppn: note: listening on {host}, so other machines that reach it can use this server"


@dataclass(frozen=True)
class ServeResult:
    """How a :func:`serve` ended: the exit status (143 after SIGTERM, else 0), where it listened, what it did."""

    status: int
    url: str
    requests: int
    tiles_rendered: int
    batches: int


def serve(cfg: Config, *, host: str = "127.0.0.1", port: int = 8000, tile: int | None = None,
          extra_levels: int | None = None, supersample: int = 2, quality: int | None = None,
          cache_mb: int = 256, cors: bool = False, verbose: bool = False,
          on_ready: Callable[[TileServer], None] | None = None) -> ServeResult:
    """Check the settings (UserError), bind, call ``on_ready(server)``, serve until stopped (:func:`bigcppn.serve`)."""
    if cfg.output.depth != 8:
        raise UserError("pyramid tiles are 8-bit; leave out --depth 16 (or output.depth)")
    if cfg.output.cmyk:
        raise UserError("served tiles are RGB for screens; leave out output.cmyk (CMYK is for print files)")
    if not host.strip():
        raise UserError("--host '' would listen on every interface; give an address (127.0.0.1 for this "
                        "machine only, 0.0.0.0 for every interface)")
    quality = quality if quality is not None else cfg.output.quality
    if not 1 <= quality <= 100:
        raise UserError(f"--quality must be between 1 and 100, got {quality}")
    if not 0 <= port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, got {port}")
    if supersample > 16:
        raise UserError(f"--supersample {supersample} is more than needed; use at most 16")
    if supersample < 1:
        raise UserError(f"--supersample must be at least 1, got {supersample}")
    tile = 254 if tile is None else tile
    if tile < 1:
        raise UserError(f"--tile must be at least 1, got {tile}")
    if tile > 4096:
        raise UserError(f"--tile {tile} is too large for a live server; use at most 4096")
    try:
        server = make_server(cfg, host, port, tile, 1 if tile > 1 else 0, extra_levels, supersample, quality,
                             cache_mb << 20, verbose=verbose, cors=cors)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                        "choose another --port (0 picks a free one) or --host") from None
    if on_ready is not None:
        try:
            on_ready(server)
        except BaseException:
            server.server_close()
            server.service.stop()
            raise
    status = serve_until_stopped(server)
    s = server.service.stats
    return ServeResult(status, server.url, s.requests, s.tiles_rendered, s.batches)
