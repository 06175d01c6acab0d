"""A pyramid in a bucket: ``-o s3://bucket/prefix/NAME.dzi`` (or ``.../NAME`` for the folder layouts).

The same promises as a folder (:class:`~bigcppn.pyramid.store.PyramidOutput`), made of what a bucket offers:

- **owner lock**: an object written with a conditional put (``If-None-Match: *``) before the manifest is read,
  deleted when the run ends. A lock left by a killed run on this machine (its process is gone) is taken over;
  one left by another machine is named in the refusal (host, pid, age), and ``--break-lock`` takes it over.
- **resume**: the manifest says the same render; one paginated LIST of the tiles replaces per-tile checks.
- **descriptor last**: tiles, then the page, then the descriptor (``.dzi``, ``info.json``,
  ``ImageProperties.xml``); a viewer never loads a descriptor whose tiles are missing.
- **--overwrite**: the old descriptor is deleted first, then the old tiles and page, the old manifest last (an
  interrupted removal resumes with the same command); the new render then writes its descriptor last, so no
  loadable descriptor ever points at a mix of two renders' tiles. Unlike a folder, the old pyramid is not
  viewable while its replacement renders.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import PurePosixPath

from ..core.atomic import alive
from ..errors import UserError
from ..storage.base import Storage, StorageOptions, open_storage, split_url
from .layouts import Layout
from .manifest import LOCK_NAME, MANIFEST_NAME, judge_manifest
from .tilestore import content_type

__all__ = ["BucketPyramidOutput", "bucket_pyramid_output"]


@dataclass(frozen=True)
class BucketPyramidOutput:
    """Where a pyramid goes in a bucket: ``storage`` is rooted at the folder that holds its files."""

    storage: Storage
    name: str
    layout: Layout

    @property
    def root(self) -> str:
        return self.storage.location

    @property
    def folder(self) -> bool:
        return self.layout.folder

    def at(self, rel: str) -> str:
        return self.storage.url(rel)

    @property
    def manifest_key(self) -> str:
        return MANIFEST_NAME if self.folder else f"{self.name}.{MANIFEST_NAME}"

    @property
    def lock_key(self) -> str:
        return f".{LOCK_NAME}" if self.folder else f".{self.name}.{LOCK_NAME}"

    @property
    def manifest(self) -> str:
        return self.at(self.manifest_key)

    @property
    def lock_path(self) -> str:
        return self.at(self.lock_key)

    @property
    def tiles_dir(self) -> str:
        return self.at(self.layout.tiles_folder(self.name))

    @property
    def page(self) -> str:
        return self.at(self.layout.page_name(self.name))

    @property
    def descriptor(self) -> str | None:
        path = self.layout.descriptor_path(self.name)
        return self.at(path) if path else None

    def lock(self) -> "_ObjectLock":
        return _ObjectLock(self)

    def check_manifest(self, key: dict, overwrite: bool = False) -> str:
        raw = self.storage.get(self.manifest_key)
        if raw is not None:
            state = judge_manifest(raw, key, overwrite, self.manifest, self.at(self.name))
            self._check_page()
            return state
        # Nothing of ours: refuse to mix tiles into something that is already there.
        tiles = self.layout.tiles_folder(self.name)
        others = [k for k in self.storage.listing(tiles) if k != self.lock_key] if self.folder or tiles else []
        descriptor = self.layout.descriptor_path(self.name)
        if others or (descriptor and self.storage.get(descriptor) is not None):
            what = self.at(others[0]) if others else self.descriptor
            raise UserError(f"'{what}' already exists and was not made by bigcppn pyramid; "
                            "remove it or choose another -o")
        self._check_page()
        return "new"

    def _check_page(self) -> None:
        if self.foreign_page():
            raise UserError(f"'{self.page}' exists and was not written by bigcppn (the pyramid's viewer page goes "
                            "there); move it or choose another -o")

    def foreign_page(self) -> bool:
        from .viewer import GENERATOR_META

        raw = self.storage.get(self.layout.page_name(self.name))
        return raw is not None and GENERATOR_META.encode() not in raw

    def remove(self) -> None:
        """Delete the pyramid: its descriptor first, then its tiles and page, the manifest last."""
        descriptor = self.layout.descriptor_path(self.name)
        if descriptor:
            self.storage.delete([descriptor])
        keep = {self.lock_key, self.manifest_key, descriptor}
        if self.folder:
            doomed = [k for k in self.storage.listing() if k not in keep]
        else:
            doomed = sorted(self.storage.listing(self.layout.tiles_folder(self.name)))
            doomed.append(self.layout.page_name(self.name))
        self.storage.delete(doomed)
        self.storage.delete([self.manifest_key])

    def replacement(self, key: dict) -> tuple["BucketPyramidOutput", bool]:
        """A bucket has no rename: the old pyramid is removed (descriptor first) and the new one made in place."""
        self.remove()
        return self, False

    def replacements(self) -> list:
        return []

    def sweep_replacements(self, keep=None) -> None:
        pass

    def swap_in(self, new, lock=None) -> None:
        pass

    def finish_commit(self) -> bool:
        """Nothing to finish: a bucket has no swap (the replacement is made in place, the descriptor last)."""
        return False

    def sweep_partials(self) -> None:
        pass  # an object PUT is atomic: nothing partial is ever visible

    def make_root(self) -> None:
        pass

    def install_viewer(self) -> bool:
        return False  # the page loads OpenSeadragon from its CDN

    def write(self, rel: str, data: bytes | str) -> None:
        self.storage.put(rel, data, content_type(rel))

    def write_manifest(self, key: dict) -> None:
        from .._version import __version__

        self.write(self.manifest_key, json.dumps({"generator": f"bigcppn {__version__}", **key}, indent=2) + "\n")


_HELD: set[str] = set()  # the locks this process holds now


class _ObjectLock:
    """The owner lock: an object created by a conditional put, deleted when the run ends."""

    def __init__(self, out: BucketPyramidOutput) -> None:
        self.out = out
        self.held = False

    def __enter__(self) -> "_ObjectLock":
        out, key = self.out, self.out.lock_key
        me = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                      time.gmtime())}
        for _ in range(2):
            if out.storage.put_new(key, json.dumps(me)):
                self.held = True
                _HELD.add(out.lock_path)
                return self
            raw = out.storage.get(key) or b"{}"
            try:
                holder = json.loads(raw)
            except ValueError:
                holder = {}
            pid = holder.get("pid")
            # a run killed on this machine, or an earlier run of this process that could not delete it
            here = holder.get("host") == me["host"] and isinstance(pid, int)
            stale = here and (not alive(pid) or (pid == me["pid"] and out.lock_path not in _HELD))
            if here and not stale:  # a live run on this machine: --break-lock is for a machine that died
                raise UserError(f"another bigcppn run (pid {pid} on this machine, since {holder.get('since', '?')}) "
                                f"is writing the pyramid '{out.at(out.name)}'; wait for it or stop it "
                                "(--break-lock takes over only a lock that another machine left)")
            if not (stale or getattr(getattr(out.storage, "options", None), "break_lock", False)):
                break
            out.storage.delete([key])  # its run is gone (killed here, or --break-lock): take the pyramid over
        who = (f" (host {holder.get('host', '?')}, pid {holder.get('pid', '?')}, since {holder.get('since', '?')}"
               f"{_age(holder.get('since'))})")
        raise UserError(f"another bigcppn run{who} is writing the pyramid '{out.at(out.name)}'; wait for it, or, "
                        f"if none is (its machine died), add --break-lock or delete {out.lock_path}")

    def adopt(self, path) -> None:
        pass

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.held:
            _HELD.discard(self.out.lock_path)
            try:
                self.out.storage.delete([self.out.lock_key])
            except Exception:
                pass  # the bucket is gone: the next run on this machine takes the stale lock over
            self.held = False


def _age(since) -> str:
    """``", 3 h ago"`` for a lock's UTC ``since`` stamp; "" when it cannot be read."""
    import calendar

    from ..estimate.plan import human_duration

    try:
        then = calendar.timegm(time.strptime(str(since), "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return ""
    return f", {human_duration(max(0.0, time.time() - then))} ago"


def bucket_pyramid_output(url: str, layout: Layout, options: StorageOptions) -> BucketPyramidOutput:
    """``-o`` as a bucket URL, for ``layout``; UserError when it cannot name a pyramid."""
    scheme, bucket, key = split_url(url)
    if not key.strip("/"):
        raise UserError(f"'{url}' names no pyramid; give -o {scheme}://{bucket}/PREFIX/{layout.default_output('NAME')}")
    root, name = layout.place(PurePosixPath(key.strip("/")))
    root_key = "" if str(root) == "." else str(root)
    return BucketPyramidOutput(open_storage(f"{scheme}://{bucket}/{root_key}".rstrip("/"), options), name, layout)
