"""Starting and stopping ``bigcppn explore`` (:func:`bigcppn.explore`)."""

from __future__ import annotations

import webbrowser
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..config import Config
from ..errors import UserError

__all__ = ["ExploreResult", "make_explore_server", "explore"]


@dataclass(frozen=True)
class ExploreResult:
    """How an explore session ended: the exit status (143 after SIGTERM, else 0), where it listened."""

    status: int
    url: str
    requests: int
    out: Path


def make_explore_server(cfg: Config, host: str = "127.0.0.1", port: int = 0, out: str | Path = "explore-out",
                        verbose: bool = False, device=None):
    """The server, bound but not yet serving (call ``serve_forever``; ``close()`` after it)."""
    from ..network.devices import pick_device
    from ..pyramid.viewer import find_openseadragon, openseadragon_files
    from .app import ExploreServer

    if not 0 <= port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, got {port}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder for the jobs' outputs")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot make the output folder {out}: {exc.strerror or exc}; give another --out") from None
    device = device or pick_device(cfg.render.device)
    build = find_openseadragon()
    assets = {rel: f.read_bytes() for rel, f in openseadragon_files(build).items()} if build else {}
    try:
        return ExploreServer((host, port), cfg, out, device, verbose=verbose, osd_assets=assets)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                        "choose another --port (0 picks a free one) or --host") from None


def explore(config: Config | str | Path | None = None, *, host: str = "127.0.0.1", port: int = 8000,
            out: str | Path = "explore-out", open_browser: bool = False, verbose: bool = False,
            on_ready: Callable[[object], None] | None = None) -> ExploreResult:
    """Serve the explore page (``bigcppn explore``): a seed grid, live controls and zoom, print and pyramid jobs.

    The page at ``http://HOST:PORT/`` starts from ``config`` (a Config, a TOML path or None); jobs write
    only under ``out`` (made if missing). A ``host`` other than loopback lets other machines in (the Host
    header is still checked); ``port`` 0 picks a free one; ``open_browser`` opens the page.
    ``on_ready(server)`` is called once it listens (``server.url``); then it serves until SIGTERM, Ctrl-C
    or ``server.drain()`` from another thread. Bad settings raise UserError.
    """
    from ..api import as_config
    from ..server.app import serve_until_stopped

    server = make_explore_server(as_config(config), host, port, out, verbose)
    try:
        if on_ready is not None:
            on_ready(server)
        if open_browser:
            webbrowser.open(server.url)
    except BaseException:
        server.server_close()
        server.close()
        raise
    status = serve_until_stopped(server, on_stop=server.close)
    return ExploreResult(status, server.url, server.counters.answered, server.out)
