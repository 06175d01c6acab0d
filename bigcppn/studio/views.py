"""What the explore page asks to see: configs sent by the page, checked as the CLI checks them; a page of
seed thumbnails in one batched pass; a coarse preview of the whole view; live DeepZoom images.

A config travels from the page as base64url JSON (the dict :func:`~bigcppn.config.config_to_dict` makes,
or any part of it), so a URL holds it whole. :func:`decode_config` reads it with the CLI's limits
(:func:`~bigcppn.config.load_config`, then the network built once on the CPU: it must fit in memory and
stay finite), so whatever the page shows was accepted by the same rules as ``bigcppn render``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from ..config import Config, config_to_dict, load_config
from ..errors import UserError

__all__ = ["MAX_CONFIG_CHARS", "encode_config", "decode_config", "PAGE_SEEDS", "sheet_page", "preview",
           "LiveViews"]

# An encoded config at most (the default one is about 900 characters).
MAX_CONFIG_CHARS = 6000
# Thumbnails on a page of the seed grid, and their columns in the sprite the page cuts up.
PAGE_SEEDS = 24
COLUMNS = 6


def encode_config(cfg: Config) -> str:
    """The base64url JSON the page and its permalinks carry."""
    text = json.dumps(config_to_dict(cfg), separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_config(text: str | None, device: str | None = None) -> Config:
    """The config the page sent, checked with the CLI's limits (UserError, one line, otherwise)."""
    from ..engines import check_network

    if not text:
        return _checked(load_config(None), device, check_network)
    if len(text) > MAX_CONFIG_CHARS:
        raise UserError(f"the config is {len(text)} characters encoded, over {MAX_CONFIG_CHARS}; shorten it")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise UserError("the config sent is not base64url JSON; reload the page") from None
    if not isinstance(data, dict):
        raise UserError("the config sent is not a table of settings; reload the page")
    return _checked(load_config(None, base=data) if data else load_config(None), device, check_network)


def _checked(cfg: Config, device: str | None, check_network) -> Config:
    if device is not None:
        cfg = replace(cfg, render=replace(cfg.render, device=device))
    check_network(cfg)
    return cfg


def _jpeg(arr: np.ndarray, quality: int = 85) -> bytes:
    import pyvips

    img = pyvips.Image.new_from_array(np.ascontiguousarray(arr))
    return img.jpegsave_buffer(Q=quality, strip=True)


def sheet_page(cfg: Config, page: int, cell: int, device) -> bytes:
    """Seeds ``page * 24`` to ``page * 24 + 23`` as one JPEG, 6 thumbnails a row, rendered in one batch.

    Each thumbnail frames what a render of ``cfg`` with that seed shows (the longer side ``cell``)."""
    from ..network.devices import policy_for
    from ..sheet import render_cells

    if not 0 <= page <= (2**63 - 1) // PAGE_SEEDS - 1:
        raise UserError(f"seed page {page} is out of range")
    if not 16 <= cell <= 512:
        raise UserError(f"thumbnails are 16 to 512 px, got {cell}")
    seeds = list(range(page * PAGE_SEEDS, (page + 1) * PAGE_SEEDS))
    # a CPU: the seeds in one group a core, each group one batched pass on one torch thread (as the live
    # tiles are rendered, so the two share the cores without torch's threads spinning against each other)
    workers = policy_for(device).tile_workers()
    if workers > 1:
        groups = [[int(s) for s in g] for g in np.array_split(seeds, workers) if len(g)]
        with ThreadPoolExecutor(len(groups), thread_name_prefix="bigcppn-sheet") as ex:
            cells = np.concatenate(list(ex.map(lambda g: render_cells(cfg, g, cell, device), groups)))
    else:
        cells = render_cells(cfg, seeds, cell, device)  # (seeds, h, w, bands)
    n, h, w, b = cells.shape
    rows = math.ceil(n / COLUMNS)
    grid = cells.reshape(rows, COLUMNS, h, w, b).transpose(0, 2, 1, 3, 4).reshape(rows * h, COLUMNS * w, b)
    return _jpeg(grid)


def preview_config(cfg: Config, size: int) -> Config:
    """``cfg`` on a canvas whose longer side is ``size``: the whole view, bleed scaled with it."""
    c = cfg.canvas
    s = size / max(c.width, c.height)
    w, h = max(1, round(c.width * s)), max(1, round(c.height * s))
    bleed = min(round(c.bleed * s), (min(w, h) - 1) // 2)
    return replace(cfg, canvas=replace(c, width=w, height=h, bleed=bleed))


def preview(cfg: Config, size: int) -> bytes:
    """A coarse JPEG of the whole view, the longer side ``size`` px: what the page shows at once."""
    from ..api import render_array

    if not 16 <= size <= 1024:
        raise UserError(f"previews are 16 to 1024 px, got {size}")
    small = preview_config(replace(cfg, output=replace(cfg.output, depth=8)), size)
    return _jpeg(render_array(small))


class LiveViews:
    """Live DeepZoom images by config tag, the newest few kept (each a started TileService).

    Making one the newest drops the tiles the others still had waiting: the page has moved on."""

    def __init__(self, device, keep: int = 3, cache_bytes: int = 48 << 20, tile: int = 254) -> None:
        self.device, self.keep, self.cache_bytes, self.tile = device, keep, cache_bytes, tile
        self._views: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def open(self, cfg: Config) -> tuple[str, object]:
        """(tag, service) of ``cfg``'s live image, made the newest."""
        from .._version import __version__
        from ..network.strips import renderer_for
        from ..pyramid.grid import max_extra_levels
        from ..server.app import config_tag, tile_service

        cfg = replace(cfg, output=replace(cfg.output, depth=8))
        tag = config_tag(cfg, {"tile": self.tile, "v": __version__, "explore": 1})
        with self._lock:
            service = self._views.get(tag)
            if service is not None:
                self._views.move_to_end(tag)
        if service is None:
            renderer, _plan = renderer_for(cfg, self.device)
            c, view = renderer.canvas, renderer.sampling.view
            extra = max_extra_levels(c.width, c.height, view.center_x, view.center_y, view.pitch(c))
            service = tile_service(renderer, c.width, c.height, self.tile, 1, extra, 2, 90, self.cache_bytes)
            with self._lock:
                existing = self._views.get(tag)  # another request made it meanwhile
                if existing is None:
                    self._views[tag] = service.start()
                else:
                    service = existing
        old = []
        with self._lock:
            for t, other in list(self._views.items()):
                if t != tag:
                    other.cancel_queued("the page moved on to another picture")
            while len(self._views) > self.keep:
                old.append(self._views.popitem(last=False)[1])
        for s in old:
            threading.Thread(target=s.stop, daemon=True).start()
        return tag, service

    def get(self, tag: str):
        with self._lock:
            return self._views.get(tag)

    def close(self) -> None:
        with self._lock:
            views, self._views = list(self._views.values()), OrderedDict()
        for s in views:
            s.stop()
