"""Outputs of several files put in place with one point of no return, and the owner lock of such an output.

A DeepZoom pyramid is a descriptor (``NAME.dzi``), a tile folder and a
manifest, each a directory entry of its own: no single rename replaces them
all. :func:`commit_moves` first writes a journal (``.NAME.bigcppn.commit``)
naming every move; the journal's rename is the point of no return. Then the
old descriptor goes aside (from here the output reads as absent, never as a
mix), the other old entries go aside and the new ones come in, and the new
descriptor comes last. A run killed anywhere in between leaves the journal:
the next run that takes the output's owner lock (:class:`OwnerLock`) calls
:func:`roll_forward` before anything else, which finishes the moves (each is
done only while its source is still there, so a second roll forward is
harmless). Before the journal, the old output is untouched.

Every rename goes through :func:`rename`, so that a test can fail or kill the
commit at its n-th rename.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no lock
    fcntl = None

__all__ = ["OwnerLock", "LOCK_SUFFIX", "JOURNAL_SUFFIX", "lock_path", "journal_path", "commit_moves",
           "roll_forward", "rename", "remove_quietly"]

LOCK_SUFFIX = "bigcppn.lock"
JOURNAL_SUFFIX = "bigcppn.commit"


def rename(src: Path, dst: Path) -> None:
    """``os.replace``: the one rename of every multi-file commit (a test replaces it to stop a commit part way)."""
    os.replace(src, dst)


def lock_path(parent: Path, name: str) -> Path:
    """The owner lock of the output ``name`` in ``parent`` (a pyramid's and a render's of ``NAME.dzi`` alike)."""
    return parent / f".{name}.{LOCK_SUFFIX}"


def journal_path(parent: Path, name: str) -> Path:
    """The journal of an unfinished commit of the output ``name`` in ``parent``."""
    return parent / f".{name}.{JOURNAL_SUFFIX}"


def remove_quietly(p: Path) -> None:
    """Remove a file or folder, ignoring every error (cleanup on an error path must not fail, full disk included)."""
    try:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink()
    except OSError:
        pass


def commit_moves(journal: Path, staging: Path, moves: list[tuple[Path, Path]], retire: list[Path] = ()) -> None:
    """Move each ``(new, final)`` of ``moves`` (the one marking completion last) over its final name, and
    ``retire`` (old entries the new output does not have) aside, with the journal as the point of no return.

    Every path is in ``journal``'s folder or in ``staging`` (a folder of the
    caller's in it, removed at the end: the old entries go there). A failure
    after the journal is written is finished at once where possible (the
    exception still propagates), else by the next :func:`roll_forward`.
    """
    parent = journal.parent
    data = {"staging": staging.name,
            "moves": [[str(src.relative_to(parent)), dst.name] for src, dst in moves if os.path.lexists(src)],
            "retire": [p.name for p in retire]}
    if not data["moves"]:
        return
    tmp = journal.with_name(journal.name + ".partial")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(data))
            f.flush()
            os.fsync(f.fileno())
        rename(tmp, journal)  # the point of no return
    except BaseException:
        remove_quietly(tmp)
        raise
    try:
        roll_forward(journal)
    except BaseException:
        try:
            roll_forward(journal)
        except BaseException:
            pass  # the journal stays: the next run finishes it
        raise


def roll_forward(journal: Path) -> bool:
    """Finish the commit ``journal`` describes, if there is one; whether there was (the caller holds the lock)."""
    try:
        data = json.loads(journal.read_text(encoding="utf-8"))
        staging = journal.parent / data["staging"]
        moves = [(journal.parent / src, journal.parent / dst) for src, dst in data["moves"]]
        retire = [journal.parent / name for name in data["retire"]]
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError, TypeError):
        remove_quietly(journal)  # not ours, or cut short before its rename: nothing was moved
        return False

    def aside(final: Path) -> None:
        if os.path.lexists(final):
            spot, n = staging / f".old-{final.name}", 0
            while os.path.lexists(spot):  # (a folder made again since, e.g. to hold a folder pyramid's lock)
                n += 1
                spot = staging / f".old-{final.name}-{n}"
            rename(final, spot)

    *body, (marker_src, marker) = moves
    if os.path.lexists(marker_src):  # else every move is done (the marker moves last)
        aside(marker)  # from here the output reads as absent, never as a mix of old and new
        for old in retire:
            aside(old)
        for src, dst in body:
            if os.path.lexists(src):  # not yet moved: what is at dst is the old one
                aside(dst)
                rename(src, dst)
        rename(marker_src, marker)
    journal.unlink(missing_ok=True)
    remove_quietly(staging)
    return True


class OwnerLock:
    """An exclusive, non-blocking ``flock`` on ``path``, for the length of a ``with``; ``busy`` when refused.

    The lock file is removed, still locked, when the holder ends; a run that
    opened it just before then finds, once it holds its lock, that the path no
    longer names the file it locked, and tries again, so two runs never hold
    locks on two different files. ``flock`` is local to one machine on some
    network filesystems; on NFS v4 Linux maps it to a byte-range lock that the
    server arbitrates, so machines sharing the folder exclude each other too.
    """

    def __init__(self, path: Path, busy: Exception) -> None:
        self.path = path
        self.busy = busy
        self.fd: int | None = None

    def acquire(self) -> None:
        while self.fd is None:
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
            if fcntl is None:
                self.fd = fd
                break
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise self.busy from None
            if _same_file(fd, self.path):
                self.fd = fd
            else:  # removed by the run that held it: lock the new one
                os.close(fd)

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink()
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "OwnerLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
