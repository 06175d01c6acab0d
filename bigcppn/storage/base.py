"""The storage seam: where a render's files go, a local folder or a bucket, behind one small interface.

A :class:`Storage` is rooted at a folder or at ``scheme://bucket/prefix``; keys are ``/``-separated paths
below that root. Every ``put`` is whole or nothing (a local file is written under a hidden name and renamed;
an object PUT is atomic), ``put_new`` is the conditional put an owner lock is made of, ``listing`` is one
scan (a folder walk, or a paginated LIST), and :meth:`Storage.upload` is a large file sent in parts that is
visible only once :meth:`Upload.complete` and leaves nothing after :meth:`Upload.abort`.

The implementation comes from the location's URL scheme (:data:`SCHEMES`, filled by
:func:`register_scheme`): a plain path is a :class:`~bigcppn.storage.local.LocalStorage`, ``s3://``
(``gs://``, ``az://``, untested) a :class:`~bigcppn.storage.bucket.BucketStorage`. No heavy import here.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import UserError

__all__ = ["Storage", "Upload", "StorageOptions", "StorageStats", "SCHEMES", "register_scheme", "open_storage",
           "is_url", "split_url"]

URL = re.compile(r"^([a-z][a-z0-9+.-]*)://(.*)$")


@dataclass(frozen=True)
class StorageOptions:
    """How to reach a bucket: ``endpoint_url`` (an S3-compatible service; default ``AWS_ENDPOINT_URL``),
    ``cache_control`` (the ``Cache-Control`` of every object written); ``break_lock``: take over an owner
    lock that a run on another machine left (``pyramid --break-lock``)."""

    endpoint_url: str = ""
    cache_control: str = ""
    break_lock: bool = False


@dataclass
class StorageStats:
    """Requests a storage made (what a bucket bills) and bytes it sent; ``retries``: transient errors retried."""

    puts: int = 0
    gets: int = 0
    lists: int = 0
    deletes: int = 0
    bytes_up: int = 0
    retries: int = 0


class Upload(ABC):
    """A file sent in parts: ``write`` the bytes in order, then ``complete`` (it appears whole) or ``abort``."""

    @abstractmethod
    def write(self, data: bytes) -> None: ...

    @abstractmethod
    def complete(self) -> None: ...

    @abstractmethod
    def abort(self) -> None: ...

    def __enter__(self) -> "Upload":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.complete()
        else:
            self.abort()


class Storage(ABC):
    """Files under one root; ``location`` names it in messages (a folder, or ``s3://bucket/prefix``)."""

    location: str
    remote: bool = False  # objects in a bucket, not files on this machine

    def __init__(self) -> None:
        self.stats = StorageStats()

    def url(self, key: str) -> str:
        """Where ``key`` is, for messages and results."""
        return f"{self.location.rstrip('/')}/{key}" if key else self.location

    @abstractmethod
    def put(self, key: str, data: bytes | str, content_type: str | None = None) -> None:
        """``data`` at ``key``, whole or not at all."""

    @abstractmethod
    def put_new(self, key: str, data: bytes | str) -> bool:
        """``data`` at ``key`` only if nothing is there (a conditional put); False when something is."""

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """The bytes at ``key``, or None when there is nothing."""

    @abstractmethod
    def listing(self, prefix: str = "") -> set[str]:
        """Every key below ``prefix`` (a folder: ``"a/b"`` lists ``a/b/...``), in one scan."""

    @abstractmethod
    def delete(self, keys: list[str]) -> None:
        """Remove ``keys`` (missing ones are not an error)."""

    @abstractmethod
    def upload(self, key: str, content_type: str | None = None) -> Upload:
        """A file at ``key`` sent in parts, visible only when complete (see :class:`Upload`)."""

    def check(self) -> None:
        """UserError when the root cannot be written (no credentials, no bucket, access denied, no answer)."""

    @abstractmethod
    def child(self, prefix: str) -> "Storage":
        """The storage rooted at ``prefix`` below this one."""


# Where each scheme's storage is made, as "module:callable(url, options)": imported only when used.
SCHEMES: dict[str, str] = {scheme: "bigcppn.storage.bucket:open_bucket"
                           for scheme in ("s3", "s3a", "gs", "az", "abfs", "abfss")}
LOCAL = "bigcppn.storage.local:LocalStorage"


def register_scheme(scheme: str, opener: str) -> None:
    """``opener`` (``"module:callable"``, called with ``(url, options)``) makes the storage of ``scheme://...``."""
    SCHEMES[scheme] = opener


def _load(spec: str) -> Callable:
    import importlib

    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def is_url(location: str | Path) -> bool:
    """Whether ``location`` is a URL (``s3://...``) rather than a local path."""
    return isinstance(location, str) and URL.match(location) is not None


def split_url(url: str) -> tuple[str, str, str]:
    """``scheme://bucket/key`` as (scheme, bucket, key)."""
    m = URL.match(url)
    if not m:
        raise UserError(f"'{url}' is not a URL like s3://bucket/prefix")
    bucket, _, key = m.group(2).partition("/")
    return m.group(1), bucket, key


def open_storage(location: str | Path, options: StorageOptions = StorageOptions()) -> Storage:
    """The storage rooted at ``location``: a folder, or a bucket URL whose scheme is registered."""
    if not is_url(location):
        return _load(LOCAL)(Path(location))
    scheme = split_url(str(location))[0]
    try:
        opener = SCHEMES[scheme]
    except KeyError:
        raise UserError(f"cannot write to {scheme}:// URLs; use a local path, or one of "
                        f"{', '.join(s + '://' for s in sorted(SCHEMES))}") from None
    return _load(opener)(str(location), options)
