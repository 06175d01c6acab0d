"""Files that appear whole or not at all: written under a hidden temporary name, then renamed.

The temporary name is ``.NAME.partial-PID-THREAD`` beside the target, so a
killed run leaves only hidden files that :func:`remove_partials` (or a later
run) can sweep; ``os.replace`` is atomic within one filesystem.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path

__all__ = ["partial_name", "write_atomic", "copy_atomic", "remove_partials", "alive", "PARTIAL"]

PARTIAL = re.compile(r"^\..+\.partial-\d+(-\d+)?$")


def partial_name(path: Path) -> Path:
    """The hidden temporary sibling this process and thread write ``path`` under."""
    return path.with_name(f".{path.name}.partial-{os.getpid()}-{threading.get_ident()}")


def _replace_with(path: Path, fill) -> None:
    """Write ``path`` by ``fill(tmp)`` into its hidden temporary sibling, then rename; nothing left on failure."""
    tmp = partial_name(path)
    try:
        fill(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes | str) -> None:
    """``data`` (text is written as UTF-8) at ``path``, whole or not at all."""
    _replace_with(path, lambda tmp: tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data))


def copy_atomic(src: Path, path: Path) -> None:
    """A copy of ``src`` at ``path``, whole or not at all."""
    _replace_with(path, lambda tmp: shutil.copyfile(src, tmp))


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (someone else's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_partials(top: Path) -> int:
    """Delete the temporary files an interrupted run left under ``top``; returns how many."""
    n = 0
    for dirpath, _dirs, files in os.walk(top):
        for f in files:
            if PARTIAL.match(f):
                try:
                    os.unlink(os.path.join(dirpath, f))
                    n += 1
                except FileNotFoundError:
                    pass
    return n


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where that is not available.

    Swapping a finished folder with the one it replaces this way leaves no moment
    at which neither is in place.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: a filesystem or kernel without it
        return False
    raise OSError(err, os.strerror(err), str(a))
