"""`bigcppn explore`: the HTTP side of the explore page, on :mod:`bigcppn.server.httpd`'s event loop.

Safe by default, since a local page that writes files is a target for any web site the user visits:

- it listens on 127.0.0.1 unless told otherwise;
- a request whose ``Host`` is a name other than ``localhost`` or the one it was started with, or another
  port, is refused (403): a DNS-rebinding page reaches the server under its own name;
- ``/api/`` and ``/live/`` need the token the page gets at load, in the ``X-Bigcppn-Token`` header (no
  form, image or script of another site can send it: a custom header needs a CORS preflight, which is
  never granted); a POST whose ``Origin`` is not this server is refused too;
- configs are checked as the CLI checks them before anything is rendered; a bad one is answered 400
  with the CLI's one line, as JSON;
- files are read only from the output folder, by names of plain characters, never ``..``;
- jobs wait in a bounded queue; the event loop's connection cap and idle timeout hold as for ``serve``.

Paths: ``/`` (the page), ``/static/NAME`` (its script and style), ``/openseadragon/...``,
``/out/PATH`` (results), ``/api/...`` (JSON, previews and seed pages), ``/live/TAG/image_files/L/C_R.jpeg``.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from .._version import __version__
from ..config import config_to_dict, dump_toml, load_config
from ..errors import UserError
from ..server.httpbase import Limits, Pending, Request, Response
from ..server.httpd import EventServer
from .jobs import JobQueue, QueueFull
from .page import page_html, static_files
from . import products, views

__all__ = ["TOKEN_HEADER", "ExploreServer"]

TOKEN_HEADER = "X-Bigcppn-Token"
_TILE = re.compile(r"^/live/([0-9a-f]{16})/image_files/(0|[1-9][0-9]{0,5})/(0|[1-9][0-9]{0,17})_(0|[1-9][0-9]{0,17})"
                   r"\.jpeg$")
_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css",
          ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
          ".tif": "image/tiff", ".pdf": "application/pdf", ".dzi": "application/xml", ".xml": "application/xml",
          ".json": "application/json"}
MAX_DOWNLOAD = 256 << 20  # the event loop sends a file from memory


def _json(status: int, data) -> Response:
    return Response(status, json.dumps(data).encode(), [("Content-Type", "application/json"),
                                                        ("Cache-Control", "no-store")])


def _refusal(status: int, why: str) -> Response:
    return _json(status, {"error": why})


class ExploreServer(EventServer):
    """The explore page's server; ``device`` renders the previews, thumbnails and live tiles."""

    def __init__(self, address, cfg, out: Path, device, verbose: bool = False, limits: Limits | None = None,
                 osd_assets: dict[str, bytes] | None = None) -> None:
        limits = replace(limits or Limits(), methods=("GET", "HEAD", "OPTIONS", "POST"))
        super().__init__(address, self.handle, limits, verbose, name=f"bigcppn/{__version__}")
        self.token = secrets.token_urlsafe(24)
        self.out = out
        self.device = device
        self.cfg = cfg
        self.hosts = _allowed_hosts(address[0], self.server_address[1])
        self.views = views.LiveViews(device)
        self.jobs = JobQueue(out)
        self.work = ThreadPoolExecutor(2, thread_name_prefix="bigcppn-explore")
        # previews and seed pages: one thread each, and the newest request wins (what an older one still
        # waits for is dropped: the page has moved on)
        self.latest = {name: ThreadPoolExecutor(1, thread_name_prefix=f"bigcppn-{name}") for name in ("preview", "sheet")}
        self._waiting: dict[str, Future | None] = {name: None for name in self.latest}
        self.osd = osd_assets or {}
        self.static = static_files()
        self.page = page_html(self.token, config_to_dict(cfg), bool(self.osd)).encode()

    def close(self) -> None:
        """Stop the jobs (a running one cleans up), the renders and the live views."""
        self.jobs.stop()
        self.work.shutdown(wait=True, cancel_futures=True)
        for pool in self.latest.values():
            pool.shutdown(wait=True, cancel_futures=True)
        self.views.close()

    # ------------------------------------------------------------------ routing

    def handle(self, req: Request) -> Response | Pending:
        if not self._host_ok(req.headers.get("host")):
            return _refusal(403, "this server answers only to the address it was opened at (Host refused)")
        if req.method == "OPTIONS":  # no CORS: a preflight from another site gets nothing it can use
            return Response(HTTPStatus.NO_CONTENT, b"", [("Allow", "GET, HEAD, POST")])
        u = urlsplit(req.target)
        path, query = u.path, dict(parse_qsl(u.query, keep_blank_values=True))
        if ".." in path or "\\" in path or "//" in path or "%" in path:
            return _refusal(404, "no such path")
        if path.startswith(("/api/", "/live/")):
            why = self._refuse_unauthorised(req)
            if why:
                return _refusal(403, why)
            if path.startswith("/live/"):
                return self._tile(path)
            return self._api(req.method, path, query)
        if req.method == "POST":
            return _refusal(405, "only /api/ takes POST")
        if path in ("/", "/index.html"):
            return Response(200, self.page, [("Content-Type", "text/html; charset=utf-8"),
                                             ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"),
                                             ("Referrer-Policy", "no-referrer")])
        if path.startswith("/static/") and path[8:] in self.static:
            return self._file(path[8:], self.static[path[8:]])
        if path.startswith("/openseadragon/") and path[15:] in self.osd:
            return self._file(path[15:], self.osd[path[15:]])
        if path.startswith("/out/"):
            return self._download(path[5:])
        return _refusal(404, "no such path")

    def _host_ok(self, host: str | None) -> bool:
        return host is not None and host.lower() in self.hosts

    def _refuse_unauthorised(self, req: Request) -> str | None:
        token = req.headers.get(TOKEN_HEADER.lower(), "")
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return f"this request needs the page's token in {TOKEN_HEADER}; reload the page"
        origin = req.headers.get("origin")
        if req.method == "POST" and origin is not None and origin.lower().removeprefix("http://") not in self.hosts:
            return "a request from another site is refused"
        return None

    def _file(self, name: str, body: bytes) -> Response:
        ctype = _TYPES.get(name[name.rfind("."):].lower(), "application/octet-stream")
        return Response(200, body, [("Content-Type", ctype), ("Cache-Control", "no-cache"),
                                    ("X-Content-Type-Options", "nosniff")])

    def _download(self, rel: str) -> Response:
        parts = rel.split("/")
        if not rel or len(parts) > 8 or not all(_PART.match(p) for p in parts):
            return _refusal(404, "no such file in the output folder")
        root = self.out.resolve()
        f = (root / Path(*parts)).resolve()
        if not f.is_relative_to(root) or not f.is_file():
            return _refusal(404, "no such file in the output folder")
        size = f.stat().st_size
        if size > MAX_DOWNLOAD:
            return _refusal(413, f"{f.name} is {size >> 20} MB, too large to send from here; open it in {self.out}")
        resp = self._file(f.name, f.read_bytes())
        if f.suffix.lower() not in (".html", ".dzi", ".xml", ".js", ".jpeg", ".jpg", ".png", ".webp", ".json"):
            resp.headers.append(("Content-Disposition", f'attachment; filename="{f.name}"'))
        return resp

    # ------------------------------------------------------------------ the API

    def _api(self, method: str, path: str, q: dict) -> Response | Pending:
        if method == "POST":
            return self._api_post(path, q)
        if path == "/api/jobs":
            return _json(200, {"jobs": self.jobs.list()})
        if path == "/api/preview":
            return self._newest("preview", self._preview, q)
        if path == "/api/sheet":
            return self._newest("sheet", self._sheet, q)
        routes = {"/api/view": self._view, "/api/plan": self._plan, "/api/parse": self._parse}
        fn = routes.get(path)
        if fn is None:
            return _refusal(404, "no such API")
        return self._later(self.work.submit(_user_errors, fn, q))

    def _api_post(self, path: str, q: dict) -> Response | Pending:
        m = re.fullmatch(r"/api/jobs/([0-9]{1,9})/cancel", path)
        if m:
            try:
                return _json(200, self.jobs.cancel(int(m.group(1))).as_dict())
            except KeyError:
                return _refusal(404, "no such job")
        makers = {"/api/jobs/print": products.print_job, "/api/jobs/pyramid": products.pyramid_job,
                  "/api/jobs/video": products.video_job}
        if path not in makers:
            return _refusal(404, "no such API")

        def submit(q: dict) -> dict:
            self.out.mkdir(parents=True, exist_ok=True)
            job = makers[path](self._config(q), q, self.out, self.jobs.next_id())
            return self.jobs.submit(job).as_dict()

        return self._later(self.work.submit(_user_errors, submit, q))

    def _later(self, f: Future) -> Pending:
        def then(f: Future) -> Response:
            if f.cancelled():
                return _refusal(409, "superseded by a newer request")
            out = f.result()
            if isinstance(out, Response):
                return out
            return _json(200, out)

        return Pending(f, then)

    def _config(self, q: dict):
        return views.decode_config(q.get("c"), self.cfg.render.device)

    def _view(self, q: dict) -> dict:
        cfg = self._config(q)
        tag, service = self.views.open(cfg)
        p = service.pyramid
        z: list = []
        if "z" in cfg.network.inputs:  # the values the sliders start from: given, or drawn from the seed
            from ..network.model import CPPN

            z = list(cfg.network.z) or CPPN(cfg.network, cfg.seed).z.tolist()
        return {"tag": tag, "z": z, "width": p.virtual_width, "height": p.virtual_height, "tile": p.tile,
                "overlap": p.overlap, "base": [p.width, p.height], "extra": p.extra,
                "config": config_to_dict(cfg), "toml": dump_toml(cfg), "encoded": views.encode_config(cfg)}

    def _sheet(self, q: dict) -> Response:
        cfg = self._config(q)
        body = views.sheet_page(cfg, _int(q, "page", 0), _int(q, "cell", 160), self.device)
        return Response(200, body, [("Content-Type", "image/jpeg"), ("Cache-Control", "no-store")])

    def _newest(self, name: str, fn, q: dict) -> Pending:
        """``fn(q)`` on ``name``'s thread; the request of that kind still waiting there (not running) is dropped."""
        old = self._waiting[name]
        if old is not None:
            old.cancel()  # answered 409 (superseded); False and harmless once it runs
        f = self.latest[name].submit(_user_errors, fn, q)
        self._waiting[name] = f
        return self._later(f)

    def _preview(self, q: dict) -> Response:
        body = views.preview(self._config(q), _int(q, "size", 128))
        return Response(200, body, [("Content-Type", "image/jpeg"), ("Cache-Control", "no-store")])

    def _plan(self, q: dict) -> dict:
        return products.print_plan(self._config(q), q, self.out)

    def _parse(self, q: dict) -> dict:
        from ..core import limits

        text = q.get("toml", "")
        if len(text) > 6000:
            raise UserError("the pasted TOML is over 6000 characters; paste a config, not a file of another kind")
        data = limits.parse_toml(text, "the pasted TOML")
        cfg = views.decode_config(views.encode_config(load_config(None, base=data) if data else load_config(None)),
                                  self.cfg.render.device)
        return {"config": config_to_dict(cfg)}

    def _tile(self, path: str) -> Response | Pending:
        m = _TILE.match(path)
        if not m:
            return _refusal(400, "tiles are /live/TAG/image_files/LEVEL/COL_ROW.jpeg")
        service = self.views.get(m.group(1))
        if service is None:
            return _refusal(404, "this picture is no longer live; reload the view")
        level, col, row = (int(g) for g in m.groups()[1:])
        try:
            f = service.request(level, col, row)
        except IndexError as exc:
            return _refusal(404, str(exc))

        def then(f: Future) -> Response:
            try:
                data = f.result()
            except Exception as exc:  # superseded, or the render failed
                return _refusal(409 if "moved on" in str(exc) else 500, str(exc))
            return Response(200, data, [("Content-Type", "image/jpeg"), ("Cache-Control", "private, max-age=3600")])

        return Pending(f, then)


def _int(q: dict, key: str, default: int) -> int:
    v = q.get(key, "")
    if v == "":
        return default
    if not v.isdigit() or len(v) > 18:
        raise UserError(f"{key} must be a whole number, got '{v[:20]}'")
    return int(v)


def _user_errors(fn, *args):
    """``fn(*args)``, with a UserError turned into the 400 answer the page shows beside the control."""
    try:
        return fn(*args)
    except UserError as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else "bad input"
        m = re.search(r"\b((?:network|view|canvas|output|render)\.[a-z_]+)", msg)
        key = m.group(1) if m else ("seed" if msg.startswith("seed") else None)
        if key is None and "activation" in msg:
            key = "network.activation"
        return _json(429 if isinstance(exc, QueueFull) else 400, {"error": msg, "key": key})


def _allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The Host values this server answers: its address, ``localhost`` (on loopback), and those names, with the port."""
    names = {host.lower(), "localhost", "127.0.0.1", "[::1]"} if host in ("127.0.0.1", "::1", "localhost") \
        else {host.lower()}
    if ":" in host:
        names.add(f"[{host.lower()}]")
    if host in ("0.0.0.0", "::"):  # every address of this machine: IP literals only, never a name
        import socket

        try:
            names |= {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None)}
        except OSError:
            pass
        names |= {"127.0.0.1", "localhost"}
    return frozenset(f"{n}:{port}" for n in names)
