"""A bucket as :class:`~bigcppn.storage.base.Storage`, through obstore (Rust's object_store).

``s3://bucket/prefix`` (tested against SeaweedFS); ``gs://`` and ``az://`` open the same way through
obstore's own stores and are untested. Credentials are the standard ones: ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN`` in the environment, or, when those are not set and boto3 is
installed, boto3's chain (``AWS_PROFILE``, ``~/.aws``, SSO, instance roles). The endpoint of an
S3-compatible service comes from ``--endpoint-url`` or ``AWS_ENDPOINT_URL``. Transient errors (5xx,
throttling, dropped connections) are retried with exponential backoff and jitter for up to
``BIGCPPN_STORAGE_RETRY_S`` seconds (default 60), and counted (``stats.retries``); what still fails is a :class:`RenderError` (exit 1) during a
render, and a :class:`UserError` (exit 2) in :meth:`BucketStorage.check` before it.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

from ..errors import RenderError, UserError, one_line
from .base import Storage, StorageOptions, Upload, split_url

__all__ = ["BucketStorage", "open_bucket"]

LIST_PAGE = 1000  # keys per LIST request (S3's page)
PART = 16 << 20  # bytes a part of a multipart upload (one PUT when the whole file fits)


class BucketStorage(Storage):
    """Objects under ``scheme://bucket/prefix``."""

    remote = True

    def __init__(self, url: str, options: StorageOptions = StorageOptions(), _store=None) -> None:
        super().__init__()
        self.scheme, self.bucket, prefix = split_url(url)
        self.prefix = prefix.strip("/")
        self.location = f"{self.scheme}://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self.options = options
        self.endpoint = options.endpoint_url or os.environ.get("AWS_ENDPOINT_URL", "")
        self._count = threading.Lock()
        self.retry_s = _retry_seconds()
        self.store = _store if _store is not None else self._open(retry_s=self.retry_s, retries=0)

    def __reduce__(self):  # to Ray actors: the URL and options, each reopens its own client
        return (BucketStorage, (self.location, self.options))

    def _open(self, retry_s: float, retries: int = 100):
        from obstore.store import from_url

        if not self.bucket:
            raise UserError(f"'{self.location}' names no bucket; give -o {self.scheme}://BUCKET/PREFIX/NAME")
        retry = {"max_retries": retries, "retry_timeout": timedelta(seconds=retry_s),
                 "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=5),
                             "base": 2}}
        kwargs: dict = {"retry_config": retry, "client_options": {"connect_timeout": "5s", "timeout": "120s"}}
        if self.scheme in ("s3", "s3a"):
            kwargs.update(_s3_config(self.endpoint, self.location))
            if self.endpoint.startswith("http://"):
                kwargs["client_options"]["allow_http"] = True
        url = f"{self.scheme}://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        try:
            return from_url(url, **kwargs)
        except Exception as exc:
            raise UserError(f"cannot open {self.location}: {_reason(exc)}") from None

    def _retrying(self, call):
        """``call()``, again after each transient failure (5xx, throttling, a dropped or refused connection,
        a timeout) with exponential backoff and jitter, for up to ``retry_s`` seconds; each retry is counted
        in ``stats.retries``. Answers that say no (not found, exists, denied) are not retried."""
        import random

        from obstore.exceptions import GenericError

        deadline = time.monotonic() + self.retry_s
        wait = 0.1
        while True:
            try:
                return call()
            except GenericError:
                if time.monotonic() + wait > deadline:
                    raise
            time.sleep(wait * (0.5 + random.random() / 2))
            wait = min(wait * 2, 5.0)
            self._tally(retries=1)

    def _tally(self, **counts: int) -> None:
        with self._count:
            for k, v in counts.items():
                setattr(self.stats, k, getattr(self.stats, k) + v)

    def _attributes(self, content_type: str | None) -> dict:
        attrs = {"Content-Type": content_type} if content_type else {}
        if self.options.cache_control:
            attrs["Cache-Control"] = self.options.cache_control
        return attrs

    def put(self, key: str, data: bytes | str, content_type: str | None = None) -> None:
        import obstore

        data = data.encode("utf-8") if isinstance(data, str) else data
        try:
            self._retrying(lambda: obstore.put(self.store, key, data,
                                               attributes=self._attributes(content_type) or None))
        except Exception as exc:
            raise _failed(exc, self.url(key)) from None
        self._tally(puts=1, bytes_up=len(data))

    def put_new(self, key: str, data: bytes | str) -> bool:
        import obstore
        from obstore.exceptions import (AlreadyExistsError, PermissionDeniedError, PreconditionError,
                                        UnauthenticatedError)

        data = data.encode("utf-8") if isinstance(data, str) else data
        try:
            self._retrying(lambda: obstore.put(self.store, key, data, mode="create"))
        except (AlreadyExistsError, PreconditionError, FileExistsError):
            self._tally(puts=1)
            return False
        except (PermissionDeniedError, UnauthenticatedError) as exc:  # the lock, before rendering: bad input
            raise UserError(f"cannot write {self.url(key)}: {_reason(exc, self.bucket, self.endpoint)}") from None
        except Exception as exc:
            raise _failed(exc, self.url(key)) from None
        self._tally(puts=1, bytes_up=len(data))
        return True

    def get(self, key: str) -> bytes | None:
        import obstore
        from obstore.exceptions import NotFoundError

        try:
            data = self._retrying(lambda: bytes(obstore.get(self.store, key).bytes()))
        except (NotFoundError, FileNotFoundError):
            data = None
        except Exception as exc:
            raise _failed(exc, self.url(key)) from None
        self._tally(gets=1)
        return data

    def listing(self, prefix: str = "") -> set[str]:
        import obstore

        def scan() -> tuple[set[str], int]:
            out: set[str] = set()
            pages = 0
            for batch in obstore.list(self.store, prefix=prefix.strip("/") or None, chunk_size=LIST_PAGE):
                pages += 1
                out.update(m["path"] for m in batch)
            return out, pages

        try:
            out, pages = self._retrying(scan)
        except Exception as exc:
            raise _failed(exc, self.url(prefix)) from None
        self._tally(lists=max(pages, 1))
        return out

    def delete(self, keys: list[str]) -> None:
        import obstore

        keys = list(keys)
        for i in range(0, len(keys), LIST_PAGE):
            try:
                self._retrying(lambda: obstore.delete(self.store, keys[i:i + LIST_PAGE]))
            except Exception as exc:
                raise _failed(exc, self.location) from None
            self._tally(deletes=1)

    def upload(self, key: str, content_type: str | None = None) -> Upload:
        import obstore

        w = obstore.open_writer(self.store, key, attributes=self._attributes(content_type) or None,
                                buffer_size=PART, max_concurrency=4)
        return _ObjectUpload(w, self, key)

    def check(self) -> None:
        """One LIST of the prefix with a short retry budget: UserError naming what is wrong."""
        import obstore

        probe = self._open(retry_s=5)
        try:
            obstore.list(probe, chunk_size=1).__next__()
        except StopIteration:
            pass
        except Exception as exc:
            raise UserError(f"cannot use {self.location}: {_reason(exc, self.bucket, self.endpoint)}") from None
        self._tally(lists=1)

    def child(self, prefix: str) -> "BucketStorage":
        sub = f"{self.prefix}/{prefix}".strip("/") if prefix else self.prefix
        return BucketStorage(f"{self.scheme}://{self.bucket}/{sub}", self.options)


class _ObjectUpload(Upload):
    """obstore's multipart writer: parts go up as the buffer fills; ``close`` completes, an exit with an
    exception aborts the upload (no parts are left)."""

    def __init__(self, writer, storage: BucketStorage, key: str) -> None:
        self.w, self.storage, self.key, self.n = writer, storage, key, 0

    def write(self, data: bytes) -> None:
        try:
            self.w.write(data)
        except Exception as exc:
            raise _failed(exc, self.storage.url(self.key)) from None
        self.n += len(data)

    def complete(self) -> None:
        try:
            self.w.close()
        except Exception as exc:
            raise _failed(exc, self.storage.url(self.key)) from None
        parts = max(1, -(-self.n // PART))
        self.storage._tally(puts=parts + (2 if parts > 1 else 0), bytes_up=self.n)  # create, parts, complete

    def abort(self) -> None:
        try:
            self.w.__exit__(RuntimeError, RuntimeError("aborted"), None)
        except Exception:
            pass  # the parts of an upload that could not be aborted: a lifecycle rule removes them


def _retry_seconds() -> float:
    try:
        return float(os.environ.get("BIGCPPN_STORAGE_RETRY_S", "60"))
    except ValueError:
        return 60.0


def _s3_config(endpoint: str, location: str) -> dict:
    """obstore's S3 settings: the endpoint, and credentials from boto3's chain when the environment has none."""
    config: dict = {}
    if endpoint:
        config["endpoint"] = endpoint
    if not os.environ.get("AWS_REGION") and not os.environ.get("AWS_DEFAULT_REGION"):
        config["region"] = "us-east-1"
    kwargs: dict = {"config": config}
    if not os.environ.get("AWS_ACCESS_KEY_ID"):
        try:
            import boto3
            from obstore.auth.boto3 import Boto3CredentialProvider
        except ImportError:
            raise UserError(f"no credentials for {location}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                            "(or install boto3 to use AWS_PROFILE, ~/.aws or an instance role)") from None
        session = boto3.Session()
        if session.get_credentials() is None:
            raise UserError(f"no credentials for {location}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                            "or AWS_PROFILE") from None
        kwargs["credential_provider"] = Boto3CredentialProvider(session)
    return kwargs


def _reason(exc: Exception, bucket: str = "", endpoint: str = "") -> str:
    """What a failed request says, in a few words a user can act on."""
    text = str(exc)
    where = f" at {endpoint}" if endpoint else ""
    if "NoSuchBucket" in text:
        return f"the bucket '{bucket}' does not exist{where}; create it first, or check the bucket name"
    for code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"):
        if code in text:
            return f"the credentials were refused ({code}); check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
    if "AccessDenied" in text or "403" in text:
        return "access denied; the credentials may not list and write this bucket and prefix"
    if any(s in text for s in ("error sending request", "Connection refused", "dns error", "timed out")):
        return f"no answer from the endpoint{where or ' (AWS_ENDPOINT_URL / --endpoint-url)'}; check the URL and the network"
    return one_line(text.split("\n")[0], 300)


def _failed(exc: Exception, where: str) -> Exception:
    """A request that failed after its retries: RenderError (exit 1); the same command resumes."""
    if isinstance(exc, (UserError, RenderError)):
        return exc
    return RenderError(f"writing {where} failed: {_reason(exc)}; run the same command again to resume")


def open_bucket(url: str, options: StorageOptions) -> BucketStorage:
    """The storage of ``s3://`` (``gs://``, ``az://``) URLs (:data:`bigcppn.storage.base.SCHEMES`)."""
    return BucketStorage(url, options)
