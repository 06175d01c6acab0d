"""A rendered file sent to a bucket: ``render -o s3://bucket/prefix/poster.tif`` (and .png .jpg .pdf .dzi .szi).

The file is rendered as on disk (every promise of :class:`~bigcppn.formats.target.OutputTarget`) into a
private staging folder under ``TMPDIR`` (the writers need a seekable file), and sent as a multipart upload
that is completed only once every byte is up, so nothing appears under its key before that; a failed or
interrupted upload is aborted (no parts left). A file whose writer appends (PNG, JPEG, PDF, ``.szi``) goes up
part by part while it is written (:mod:`bigcppn.formats.follow`); a TIFF, whose header is written last,
once it is complete. A DeepZoom ``.dzi`` sends its tiles
first, the config sidecar next, the ``.dzi`` last. The staging folder is removed whatever happens.

Parts that a SIGKILL leaves in a bucket are not visible as objects; ``aws s3api list-multipart-uploads
--bucket B`` lists them, and a lifecycle rule (``AbortIncompleteMultipartUpload``) removes them.
"""

from __future__ import annotations

import mimetypes
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Callable

from ..errors import UserError
from ..results import CompletedInterrupt
from ..storage.base import Storage, StorageOptions, open_storage, split_url
from .base import Format
from .registry import format_for

__all__ = ["render_to_bucket", "fetch_to_temp", "CHUNK"]

CHUNK = 16 << 20  # bytes read from the staged file a part
FOLLOW = True  # upload a file that its writer appends to while it is written (off: after; for benchmarks)


def _place(url: str, options: StorageOptions) -> tuple[Storage, str]:
    scheme, bucket, key = split_url(url)
    key = key.strip("/")
    if not key or key.endswith("/"):
        raise UserError(f"'{url}' names no file; give -o {scheme}://{bucket}/PREFIX/NAME.tif")
    parent = str(PurePosixPath(key).parent)
    storage = open_storage(f"{scheme}://{bucket}" + ("" if parent == "." else f"/{parent}"), options)
    return storage, PurePosixPath(key).name


def render_to_bucket(render: Callable[[Path], object], url: str, options: StorageOptions, overwrite: bool):
    """``render(local_path)`` into a staging folder and upload what it produces (its format's ``produced``) to
    ``url``, the completion marker last; returns ``render``'s result with ``path`` the URL and its requests.

    A single file of a format that appends (:attr:`Format.appends`) goes up while it is written
    (:class:`~bigcppn.formats.follow.Follower`); any other file once it is complete."""
    from dataclasses import replace

    storage, name = _place(url, options)
    fmt = format_for(Path(name))
    storage.check()
    keys = [p.name for p in fmt.produced(Path(name))]
    if not overwrite:
        _refuse_existing(storage, keys)
    stage = Path(tempfile.mkdtemp(prefix=".bigcppn-upload-"))
    local = stage / name
    follower = _follower(stage, name, storage, fmt) if len(keys) == 1 else None
    try:
        try:
            result = render(local)
        except BaseException as exc:
            if follower is not None:
                follower.abort()
            if isinstance(exc, CompletedInterrupt):  # whole here, in the staging folder, but not in the bucket
                raise exc.__context__ if isinstance(exc.__context__, KeyboardInterrupt) else KeyboardInterrupt()
            raise
        if follower is not None and follower.finish(local):
            return replace(result, path=storage.url(name), requests=_requests(storage))
        if overwrite and keys[-1] != keys[0]:
            storage.delete([keys[-1]])  # an old .dzi first: no viewer loads it while its tiles change
        for p in fmt.produced(local):
            if p.is_dir():
                _upload_folder(storage, p, overwrite)
            elif p.exists():
                _upload_file(storage, p, p.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return replace(result, path=storage.url(name), requests=_requests(storage))


def _requests(storage: Storage) -> dict:
    """The requests ``storage`` made (what a bucket bills), as ``plan`` counts them."""
    from dataclasses import asdict

    return asdict(storage.stats)


def _follower(stage: Path, name: str, storage: Storage, fmt: Format):
    """The thread that uploads ``name`` while it is written, started; None where the format's writer does not
    only append (or ``FOLLOW`` is off: the benchmark's baseline)."""
    if not (FOLLOW and fmt.appends):
        return None
    from .follow import Follower

    follower = Follower(stage, name, storage, name, _content_type(name), CHUNK)
    follower.start()
    return follower


def _refuse_existing(storage: Storage, keys: list[str]) -> None:
    """UserError when any of ``keys`` is there (a .dzi's tile folder: any object under it)."""
    if any(_exists(storage, k) for k in keys):
        raise UserError(f"'{storage.url(keys[-1])}' already exists; add --overwrite to replace it, "
                        "or choose another -o")


def series_to_bucket(render_one: Callable[[int, str, object], object], url: str, seeds: list[int],
                     options: StorageOptions, overwrite: bool, progress: Callable[[int, int], None] | None,
                     on_done: Callable[[object], None] | None) -> list:
    """``render --seeds`` to a bucket: every seed's URL (``{seed}`` replaced) checked, then
    ``render_one(seed, url, progress)`` for each; ``progress(done, total)`` counts the whole series."""
    from ..job import SEED_FIELD

    urls = [url.replace(SEED_FIELD, str(s)) for s in seeds]
    for u in urls:
        storage, name = _place(u, options)
        storage.check()
        if not overwrite:
            _refuse_existing(storage, [p.name for p in format_for(Path(name)).produced(Path(name))])
    results = []
    for i, (seed, u) in enumerate(zip(seeds, urls)):
        each = (lambda done, n, i=i: progress(i * n + done, len(urls) * n)) if progress else None
        results.append(render_one(seed, u, each))
        if on_done is not None:
            on_done(results[-1])
    return results


def plan_upload(plan_local: Callable[[Path], object], url: str, out) -> object:
    """``plan`` of a render to ``url``: the plan of the same file rendered here, with the requests its upload
    makes (:func:`~bigcppn.estimate.plan.file_requests`)."""
    from dataclasses import replace

    from ..estimate.plan import file_requests

    name = url.rstrip("/").rsplit("/", 1)[-1]
    info = plan_local(Path(tempfile.gettempdir()) / name)
    objects = format_for(Path(name)).objects(info.width, info.height, out)
    return replace(info, path=url, requests=file_requests(info.estimated_bytes, CHUNK, objects))


def _exists(storage: Storage, key: str) -> bool:
    if key.endswith("_files"):
        return bool(storage.listing(key))
    return storage.get(key) is not None


def _content_type(name: str) -> str | None:
    ext = Path(name).suffix.lower()
    return {".dzi": "application/xml", ".szi": "application/zip", ".webp": "image/webp",
            ".tif": "image/tiff", ".tiff": "image/tiff", ".jpeg": "image/jpeg"}.get(ext) \
        or mimetypes.guess_type(name)[0]


def _upload_file(storage: Storage, path: Path, key: str) -> None:
    """One file as a multipart upload, completed only when all of it is up; aborted on any failure."""
    with storage.upload(key, _content_type(key)) as up, open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            up.write(chunk)


def _upload_folder(storage: Storage, folder: Path, overwrite: bool) -> None:
    """Every file of a DeepZoom tile folder (a PUT each); with ``overwrite``, an old render's other tiles go."""
    from concurrent.futures import ThreadPoolExecutor

    keys = []
    for dirpath, _dirs, names in os.walk(folder):
        for n in names:
            keys.append((Path(dirpath) / n).relative_to(folder.parent).as_posix())
    with ThreadPoolExecutor(16, "bigcppn-upload") as ex:
        for _ in ex.map(lambda k: storage.put(k, (folder.parent / k).read_bytes(), _content_type(k)), keys):
            pass
    if overwrite:
        stale = sorted(storage.listing(folder.name) - set(keys))
        storage.delete(stale)


def fetch_to_temp(url: str, options: StorageOptions = StorageOptions()) -> Path:
    """``--from s3://...``: the object streamed into a temporary file (removed at exit); UserError when absent."""
    import atexit

    import obstore

    storage, name = _place(url, options)
    storage.check()
    try:
        stream = obstore.get(storage.store, name).stream()
    except FileNotFoundError:
        raise UserError(f"'{url}' does not exist; give the URL of an earlier render") from None
    except Exception as exc:
        raise UserError(f"cannot read '{url}': {str(exc).splitlines()[0]}") from None
    folder = Path(tempfile.mkdtemp(prefix=".bigcppn-from-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / name
    with open(path, "wb") as f:
        for chunk in stream:
            f.write(chunk)
    return path
