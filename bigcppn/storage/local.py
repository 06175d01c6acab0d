"""A local folder as :class:`~bigcppn.storage.base.Storage`: files written atomically (a hidden name, then a rename)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ..core.atomic import partial_name, write_atomic
from .base import Storage, Upload

__all__ = ["LocalStorage"]


class LocalStorage(Storage):
    """Files under ``root``; folders are made as needed."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = Path(root)
        self.location = str(self.root)
        self._dirs: set[Path] = set()
        self._lock = threading.Lock()

    def path(self, key: str) -> Path:
        return self.root / key if key else self.root

    def _folder(self, p: Path) -> None:
        d = p.parent
        if d not in self._dirs:
            d.mkdir(parents=True, exist_ok=True)
            with self._lock:
                self._dirs.add(d)

    def put(self, key: str, data: bytes | str, content_type: str | None = None) -> None:
        p = self.path(key)
        self._folder(p)
        write_atomic(p, data)

    def put_new(self, key: str, data: bytes | str) -> bool:
        p = self.path(key)
        self._folder(p)
        try:
            fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        return True

    def get(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def listing(self, prefix: str = "") -> set[str]:
        out = set()
        for dirpath, _dirs, files in os.walk(self.path(prefix)):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            head = "" if rel == "." else rel + "/"
            out.update(head + f for f in files)
        return out

    def delete(self, keys: list[str]) -> None:
        for k in keys:
            self.path(k).unlink(missing_ok=True)

    def upload(self, key: str, content_type: str | None = None) -> Upload:
        p = self.path(key)
        self._folder(p)
        return _FileUpload(p)

    def child(self, prefix: str) -> "LocalStorage":
        return LocalStorage(self.path(prefix))


class _FileUpload(Upload):
    """A file written under its hidden partial name and renamed when complete."""

    def __init__(self, path: Path) -> None:
        self.path, self.tmp = path, partial_name(path)
        self.f = open(self.tmp, "wb")

    def write(self, data: bytes) -> None:
        self.f.write(data)

    def complete(self) -> None:
        self.f.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.f.close()
        self.tmp.unlink(missing_ok=True)
