"""A pyramid's tiles and files in a :class:`~bigcppn.storage.base.Storage`: a local folder or a bucket.

Every tile is written whole or not at all (a renamed hidden file, an object PUT) with its codec's
``Content-Type``; a resumed pyramid is listed once instead of asked tile by tile.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ..core.atomic import remove_partials
from ..storage.base import Storage
from ..storage.local import LocalStorage

__all__ = ["TileStore", "content_type"]

# The Content-Type of a pyramid's other files, by extension (tiles take theirs from the TileCodec).
CONTENT_TYPES = {".dzi": "application/xml", ".xml": "application/xml", ".json": "application/json",
                 ".html": "text/html; charset=utf-8", ".png": "image/png", ".js": "text/javascript",
                 ".css": "text/css", ".svg": "image/svg+xml"}


def content_type(key: str) -> str | None:
    """The Content-Type of a pyramid's descriptor, page, sidecar or blank tile, by extension."""
    return CONTENT_TYPES.get(Path(key).suffix.lower())


class TileStore:
    """Tiles under a storage's root (a folder's path is a :class:`~bigcppn.storage.local.LocalStorage`).

    In a bucket, :meth:`write` hands the tile to a pool of upload threads and returns (at most ``in_flight``
    tiles wait, so memory stays bounded), so uploads overlap rendering and encoding; :meth:`flush` waits for
    them and raises the first failure, which also stops later writes.
    """

    def __init__(self, root: Path | Storage, in_flight: int = 64) -> None:
        self.storage = root if isinstance(root, Storage) else LocalStorage(Path(root))
        self._pool = None  # the upload threads, started by the first tile sent to a bucket
        self._slots = threading.BoundedSemaphore(in_flight)
        self._threads = min(32, in_flight)
        self._error: BaseException | None = None

    @property
    def root(self) -> Path | None:
        """The local folder (None for a bucket)."""
        return getattr(self.storage, "root", None)

    def path(self, rel: str) -> Path:
        return self.storage.path(rel)

    def exists(self, rel: str) -> bool:
        if isinstance(self.storage, LocalStorage):
            return self.storage.path(rel).is_file()
        return self.storage.get(rel) is not None

    def read(self, rel: str) -> bytes | None:
        return self.storage.get(rel)

    def write(self, rel: str, data: bytes, content_type: str | None = None) -> None:
        if not self.storage.remote:
            self.storage.put(rel, data, content_type)
            return
        if self._error is not None:
            raise self._error
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self._threads, "bigcppn-upload")
        self._slots.acquire()
        try:
            self._pool.submit(self.storage.put, rel, data, content_type).add_done_callback(self._done)
        except BaseException:
            self._slots.release()
            raise

    def _done(self, future) -> None:
        self._slots.release()
        exc = None if future.cancelled() else future.exception()
        if exc is not None and self._error is None:
            self._error = exc

    def flush(self) -> None:
        """Wait for the tiles still uploading; raise the first upload that failed."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Stop the upload threads, dropping tiles not yet sent (a failed or interrupted run)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def listing(self, top: Path | str | None = None) -> set[str]:
        """The files under ``top`` (a key prefix, or a folder below a local root; default all), as keys
        relative to the root: one directory scan, or one paginated LIST.

        A resumed pyramid asks this once instead of one ``stat`` per tile (20 of the 30 µs a tile of the
        work list cost here, and far more on a network filesystem, where a listing returns many names a call).
        """
        if isinstance(top, Path):
            top = top.relative_to(self.root).as_posix() if top != self.root else ""
        return self.storage.listing(top or "")

    def remove_partials(self, top: Path | None = None) -> int:
        """Delete temporary files an interrupted run left behind; returns how many (none in a bucket)."""
        if self.root is None:
            return 0
        return remove_partials(top or self.root)
