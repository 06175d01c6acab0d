"""The output target: a file written under a hidden temporary name, renamed over the final name when complete.

:func:`save_strips` feeds a strip iterator to the writer the output's format
opens (:mod:`bigcppn.formats.writers`), inside a hidden temporary sibling of
the output (:class:`OutputTarget`) that is renamed over the final name only
when everything succeeded; on any failure, Ctrl-C included, the writer is
aborted and the temporary removed.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pyvips

try:
    import fcntl
except ImportError:  # not POSIX: no lock, the PID alone decides
    fcntl = None

from ..core.atomic import alive
from ..core import commit as commits
from ..core.commit import OwnerLock, commit_moves, journal_path, lock_path, remove_quietly, roll_forward
from ..config import Config, OutputConfig
from ..errors import RenderError, UserError
from .base import Format
from .vips import checked
from .writers import finish_metadata, open_writer
from ..core.limits import check_name_lengths, check_output_name, partial_prefix

__all__ = ["OutputTarget", "save_strips", "write_output", "writing"]

# The lock a running save holds inside its temporary folder, and the open ones of this process.
LOCK_NAME = ".lock"
_LOCKS: dict[Path, int] = {}
# The owner locks of multi-file outputs (a .dzi) this process holds, by the lock's path.
_OWNERS: dict[Path, OwnerLock] = {}

@dataclass(frozen=True)
class OutputTarget:
    """The final output path, and the hidden temporary folder beside it that is written first.

    The saver writes ``.NAME.partial-PID/NAME`` (a DeepZoom pyramid also its
    ``STEM_files/``); only a complete save is moved over the final name, and
    the temporary folder is removed whatever happens. Where NAME is too long
    for that folder's name, the folder is ``.HEAD~HASH.partial-PID``.
    """

    path: Path
    fmt: Format

    @functools.cached_property
    def temp_prefix(self) -> str:
        """The temporary folder's name up to its PID: ``.NAME.partial-``, shortened where too long."""
        return partial_prefix(self.path)

    @property
    def temp_dir(self) -> Path:
        return self.path.with_name(f"{self.temp_prefix}{os.getpid()}")

    @property
    def temp(self) -> Path:
        return self.temp_dir / self.path.name

    def produced(self, p: Path) -> list[Path]:
        """The paths a save to ``p`` creates, the one that marks completion last.

        A DeepZoom pyramid has its tile folder and a config sidecar besides the
        ``.dzi``; a ``.szi`` carries its config inside.
        """
        return self.fmt.produced(p)

    def probe(self) -> None:
        """Check the output's name, and that its directory exists and is writable (by creating the temporary folder).

        A name the file system cannot encode or hold is a :class:`UserError`;
        a directory that is missing or cannot be written an ``OSError`` naming it.
        """
        check_output_name(self.path)
        parent = self.path.parent
        if not parent.is_dir():
            raise OSError(f"output directory '{parent}' does not exist; create it first")
        final = self.produced(self.path)
        deepest = max((self.temp_dir / p.name for p in final), key=lambda q: len(str(q)))
        check_name_lengths(self.path, [p.name for p in final] + [self.temp_dir.name], deepest)
        for p in final:
            wants_dir = p.name.endswith("_files")
            if p.exists() and p.is_dir() != wants_dir:
                what = "a directory" if p.is_dir() else "a file"
                raise OSError(f"'{p}' is {what} in the way of the output; move it or choose another -o")
        try:
            self.temp_dir.mkdir()
        except FileExistsError:
            pass  # this process's own, from an earlier probe or save
        except OSError as exc:
            reason = exc.strerror or exc.__class__.__name__
            raise OSError(f"cannot write in output directory '{parent}' ({reason}); "
                          "make it writable or choose another -o") from None
        self.cleanup()

    def prepare(self) -> None:
        """Create the temporary folder, holding a lock in it until :meth:`cleanup`.

        An output of several files (a ``.dzi``) first takes its owner lock, the
        one ``pyramid`` takes for that name (UserError when another run holds
        it), and finishes a commit of it that a killed run left half done.
        """
        if self.several and self.owner_lock not in _OWNERS:
            lock = OwnerLock(self.owner_lock, UserError(
                f"another bigcppn run is writing '{self.path}'; wait for it to finish, or choose another -o"))
            lock.acquire()
            _OWNERS[self.owner_lock] = lock
            roll_forward(self.journal)
        self.sweep()
        self.temp_dir.mkdir(exist_ok=True)
        if fcntl is not None and self.temp_dir not in _LOCKS:
            fd = os.open(self.temp_dir / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _LOCKS[self.temp_dir] = fd

    @property
    def several(self) -> bool:
        """Whether the output is several directory entries (then committed through a journal)."""
        return len(self.produced(self.path)) > 1

    @property
    def owner_lock(self) -> Path:
        return lock_path(self.path.parent, self.path.stem)

    @property
    def journal(self) -> Path:
        return journal_path(self.path.parent, self.path.stem)

    def sweep(self) -> list[Path]:
        """Remove this output's temporary folders left by killed runs; return them.

        A folder is stale when its process is gone from this machine and nobody
        holds its lock (a render on another host sharing the folder holds it).
        Anything that cannot be removed is left: this is housekeeping.
        """
        prefix = self.temp_prefix
        gone = []
        for p in self.path.parent.glob(f"{glob.escape(prefix)}*"):
            pid = p.name[len(prefix):]
            if not re.fullmatch(r"[0-9]{1,9}", pid) or int(pid) == os.getpid() or alive(int(pid)):
                continue
            if not _unlocked(p):
                continue
            try:
                _remove(p)
            except OSError:
                continue
            gone.append(p)
        return gone

    def cleanup(self) -> None:
        """Remove the temporary folder (unless a journal still needs it) and release the locks; never raises."""
        fd = _LOCKS.pop(self.temp_dir, None)
        if fd is not None:
            os.close(fd)
        if not (self.several and self.journal.exists()):
            remove_quietly(self.temp_dir)
        owner = _OWNERS.pop(self.owner_lock, None)
        if owner is not None:
            owner.release()

    def commit(self) -> None:
        """Move the finished output over the final name: one rename, or for several files (a ``.dzi``: tiles,
        sidecar, descriptor last) the journaled moves of :func:`~bigcppn.core.commit.commit_moves`."""
        moves = list(zip(self.produced(self.temp), self.produced(self.path)))
        if len(moves) == 1:
            commits.rename(*moves[0])
        else:
            # a final name the new output lacks (saved without a config: no sidecar) is an old one: retired
            retire = [dst for src, dst in moves if not src.exists() and os.path.lexists(dst)]
            commit_moves(self.journal, self.temp_dir, moves, retire)
        self.cleanup()


def _unlocked(folder: Path) -> bool:
    """Whether no process holds the lock in ``folder`` (true for folders without one)."""
    if fcntl is None:
        return True
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)



def _remove(p: Path) -> None:
    if not p.exists() and not p.is_symlink():
        return  # (unlinking a missing name on a read-only mount fails with EROFS, not ENOENT)
    try:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    except FileNotFoundError:
        pass


def save_strips(
    strips: Iterable[np.ndarray],
    target: OutputTarget,
    width: int,
    height: int,
    bands: int,
    out: OutputConfig,
    poll: Callable[[], None] | None = None,
    cancel: Callable[[], None] | None = None,
    config: Config | None = None,
) -> None:
    """Stream ``strips`` into ``target`` through the writer its format names; atomic.

    ``poll`` is called after each strip (progress). On any failure,
    KeyboardInterrupt included, ``cancel`` stops the producer of ``strips``, the
    writer is aborted, the temporary output removed, and the exception
    propagates: the producer's own, or a RenderError naming what the writer said.
    """
    def feed(writer) -> None:
        for strip in checked(strips, width, height, bands):
            writing(target, lambda: writer.write(strip))
            if poll is not None:
                poll()

    write_output(target, lambda: open_writer(target.temp, target.fmt, width, height, bands, out, config=config),
                 feed, out, config, cancel)


def write_output(target: OutputTarget, opener: Callable[[], object], feed: Callable[[object], None],
                 out: OutputConfig, config: Config | None, cancel: Callable[[], None] | None = None) -> None:
    """Open a writer on ``target``'s temporary file, ``feed(writer)``, close it, add the metadata, commit.

    Atomic: on any failure, KeyboardInterrupt included, ``cancel`` stops the
    producer, the writer is aborted, the temporary output removed, and the
    exception propagates (the writer's own failures as one RenderError line).
    """
    writer = None
    try:
        target.prepare()
        writer = writing(target, opener)
        feed(writer)
        writing(target, writer.close)
        writer = None
        writing(target, lambda: finish_metadata(target.temp, target.fmt, out, config))
        target.commit()
    except BaseException:
        if cancel is not None:
            cancel()
        if writer is not None:
            try:
                writer.abort()
            except Exception:  # (a full disk fails the flush of a close): the error path must not fail
                pass
        target.cleanup()
        raise


def writing(target: OutputTarget, step: Callable):
    """Run a step of the writer; its failures (not Ctrl-C) become one RenderError line."""
    try:
        return step()
    except (Exception, pyvips.Error) as exc:
        if isinstance(exc, (RenderError, UserError)):
            raise
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise RenderError(f"writing {target.path} failed: {lines[-1] if lines else repr(exc)}") from exc
