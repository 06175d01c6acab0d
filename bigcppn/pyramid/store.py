"""Where a pyramid's files go: the tile store, the output's place, its owner lock and its manifest.

A pyramid folder has one owner at a time: :class:`PyramidOutput.lock` takes an
exclusive ``flock`` on a hidden lock file before the manifest is read, and
holds it until the descriptor is written (then the file goes), so two runs can never both decide
that a folder is theirs. The manifest (``bigcppn.json``) records the config
and the pyramid's settings: a run with the same ones resumes, a run with other
ones is refused.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from .._version import __version__
from ..core.atomic import exchange, write_atomic
from ..core.commit import OwnerLock, commit_moves, journal_path, lock_path, roll_forward
from ..errors import UserError
from .layouts import Layout, layout_named
from .manifest import LOCK_NAME, MANIFEST_NAME, judge_manifest, manifest_key
from .tilestore import TileStore, content_type
from ..storage.local import LocalStorage
from ..core.limits import PID_DIGITS, check_name_lengths, check_output_name

if TYPE_CHECKING:
    from ..storage.base import StorageOptions

try:
    import fcntl
except ImportError:  # not POSIX: no lock
    fcntl = None

__all__ = ["TileStore", "PyramidOutput", "pyramid_output", "MANIFEST_NAME", "LOCK_NAME", "manifest_key",
           "judge_manifest"]



@dataclass(frozen=True)
class PyramidOutput:
    """Where a pyramid's files go (``layout``: a :class:`~bigcppn.pyramid.layouts.Layout`, or its name).

    ``dz``: ``-o DIR/NAME.dzi`` writes ``NAME.dzi``, ``NAME_files/``, the manifest
    ``NAME.bigcppn.json`` and the page ``NAME.html`` in DIR. The other layouts: ``-o DIR/NAME``
    is a folder holding everything, ``bigcppn.json`` and the page ``index.html`` included.
    """

    root: Path
    name: str
    layout: Layout

    def __post_init__(self) -> None:
        if isinstance(self.layout, str):
            object.__setattr__(self, "layout", layout_named(self.layout))

    @property
    def folder(self) -> bool:
        """Whether the pyramid is a folder of its own (all layouts but DeepZoom)."""
        return self.layout.folder

    @property
    def manifest(self) -> Path:
        return self.root / (MANIFEST_NAME if self.folder else f"{self.name}.{MANIFEST_NAME}")

    @property
    def lock_path(self) -> Path:
        """The owner lock: in a pyramid's own folder, or beside a ``.dzi`` (where ``render`` takes it too)."""
        return self.root / f".{LOCK_NAME}" if self.folder else lock_path(self.root, self.name)

    @property
    def journal(self) -> Path:
        """The journal of a replacement's unfinished swap (:mod:`bigcppn.core.commit`), beside the pyramid."""
        return journal_path(self.root.parent if self.folder else self.root, self.name)

    def finish_commit(self) -> bool:
        """Finish a swap that a killed run left half done (the caller holds the lock); whether there was one."""
        return roll_forward(self.journal)

    @property
    def tiles_dir(self) -> Path:
        return self.root / self.layout.tiles_folder(self.name)

    @property
    def page(self) -> Path:
        """The viewer page: ``NAME.html`` beside a DeepZoom pyramid (several can share a folder),
        ``index.html`` in a pyramid's own folder."""
        return self.root / self.layout.page_name(self.name)

    @property
    def descriptor(self) -> Path | None:
        """The file that marks the pyramid complete, when its layout has one."""
        path = self.layout.descriptor_path(self.name)
        return self.root / path if path else None

    @property
    def storage(self) -> "LocalStorage":
        """The pyramid's folder as :class:`~bigcppn.storage.base.Storage`: what its files are written through."""
        return LocalStorage(self.root)

    def at(self, rel: str) -> Path:
        """Where the file ``rel`` of the pyramid is (a path; a bucket's output gives a URL)."""
        return self.root / rel

    def make_root(self) -> None:
        self.root.mkdir(exist_ok=True)

    def write(self, rel: str, data: bytes | str) -> None:
        """A file of the pyramid other than a tile (descriptor, page, blank tile), whole or not at all."""
        self.storage.put(rel, data, content_type(rel))

    def install_viewer(self) -> bool:
        """OpenSeadragon copied beside the page when npm has it here; whether it was."""
        from .viewer import install_openseadragon

        return install_openseadragon(self.root)

    def foreign_page(self) -> bool:
        """Whether the page's name holds a page bigcppn did not write."""
        from .viewer import GENERATOR_META

        page = self.page
        return page.exists() and GENERATOR_META not in page.read_text(encoding="utf-8", errors="replace")

    def sweep_partials(self) -> None:
        """Remove the hidden partial files that killed writers left (tiles, manifest, page, descriptor)."""
        TileStore(self.root).remove_partials(self.tiles_dir)
        for f in self.root.glob(".*.partial-*"):
            if f.is_file():
                f.unlink(missing_ok=True)

    def lock(self) -> "_FolderLock":
        """The owner lock of this pyramid (a context manager); UserError when another run holds it."""
        return _FolderLock(self)

    def check_manifest(self, key: dict, overwrite: bool = False) -> str:
        """What a run with ``key`` does here: "new", "resume" (the same render) or "replace" (another
        render's pyramid, with ``overwrite``); UserError when it may not write here."""
        m = self.manifest
        if m.is_file():
            state = judge_manifest(m.read_bytes(), key, overwrite, str(m), str(self.root / self.name))
            self._check_page()
            return state
        # Nothing of ours: refuse to mix tiles into something that is already there.
        if self.folder:
            clash = [self.root] if self.root.is_dir() and any(p != self.lock_path for p in self.root.iterdir()) else []
        else:
            clash = [p for p in (self.tiles_dir, self.root / f"{self.name}.dzi") if p.exists()]
        if clash:
            raise UserError(f"'{clash[0]}' already exists and was not made by bigcppn pyramid; "
                            "remove it or choose another -o")
        self._check_page()
        return "new"

    def _check_page(self) -> None:
        """UserError when the viewer page's name is taken by a page bigcppn did not write."""
        from .viewer import GENERATOR_META

        page = self.page
        if page.exists() and (not page.is_file() or
                              GENERATOR_META not in page.read_text(encoding="utf-8", errors="replace")):
            raise UserError(f"'{page}' exists and was not written by bigcppn (the pyramid's viewer page goes "
                            "there); move it or choose another -o")

    def remove(self) -> None:
        """Delete the pyramid here (another render's, being replaced): its descriptor first, then its tiles,
        the page and the manifest last, so an interrupted removal never looks complete."""
        import shutil

        doomed = [self.descriptor] if self.descriptor else []
        if self.folder:
            doomed += [p for p in self.root.iterdir() if p not in (self.lock_path, self.manifest)]
        else:
            doomed += [self.tiles_dir, self.page]
        for p in [*doomed, self.manifest]:
            if p is None or not (p.exists() or p.is_symlink()):
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()

    def replacement(self, key: dict) -> tuple["PyramidOutput", bool]:
        """Where a replacement of this pyramid by the render ``key`` is made, and whether it resumes one.

        A hidden folder beside the pyramid, named after the render
        (``.NAME.replacing-HASH``): the pyramid of another render stays as it is
        until the new one is complete (:meth:`swap_in`). A replacement that
        fails or is interrupted keeps its finished tiles there, and the same
        command resumes it; replacements by other renders are swept (the caller
        holds the owner lock, so no one is writing them).
        """
        import hashlib
        import shutil

        parent = self.root.parent if self.folder else self.root
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        temp = parent / f".{self.name}.replacing-{digest}"
        self.sweep_replacements(keep=temp)
        new = PyramidOutput(temp, self.name, self.layout)
        if temp.is_dir():
            try:
                if new.check_manifest(key) == "resume":
                    return new, True
            except UserError:
                pass  # killed before its manifest was written: start it again
            shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir()
        return new, False

    def replacements(self) -> list[Path]:
        """The hidden replacements of this pyramid in progress (or interrupted)."""
        parent = self.root.parent if self.folder else self.root
        return sorted(parent.glob(f"{glob.escape(f'.{self.name}.replacing-')}*"))

    def sweep_replacements(self, keep: Path | None = None) -> None:
        """Remove the hidden replacements but ``keep`` (the caller holds the owner lock: no one writes them)."""
        import shutil

        for other in self.replacements():
            if other == keep:
                continue
            if other.is_dir() and not other.is_symlink():
                shutil.rmtree(other, ignore_errors=True)
            else:
                other.unlink(missing_ok=True)

    def swap_in(self, new: "PyramidOutput", lock: "_FolderLock | None" = None) -> None:
        """Put the complete pyramid ``new`` (from :meth:`replacement`) in this one's place, the descriptor last.

        A folder layout's lock file moves aside with the old folder: ``lock`` (this
        pyramid's, held) first takes the lock file of ``new``, so the folder that
        takes the old one's place is locked from its first moment.
        """
        import shutil

        if self.folder:
            if lock is not None:
                lock.adopt(new.lock_path)
            if exchange(new.root, self.root):  # one step: the old folder is now at new.root
                shutil.rmtree(new.root, ignore_errors=True)
                return
            aside = self.root.with_name(f".{self.name}.replaced-{os.getpid()}")
            aside.mkdir(exist_ok=True)
            commit_moves(self.journal, aside, [(new.root, self.root)])
            return
        # the tiles, the manifest and the page, the descriptor last, through a journal: one point of no return
        names = [self.tiles_dir.name, self.manifest.name, self.page.name]
        names += [new.descriptor.name] if new.descriptor else []
        commit_moves(self.journal, new.root, [(new.root / name, self.root / name) for name in names])
        shutil.rmtree(new.root, ignore_errors=True)

    def write_manifest(self, key: dict) -> None:
        write_atomic(self.manifest, json.dumps({"generator": f"bigcppn {__version__}", **key}, indent=2) + "\n")


class _FolderLock:
    """The pyramid's :class:`~bigcppn.core.commit.OwnerLock`, for the length of a ``with`` (a folder layout's
    folder is made first, and removed again when the run is refused before writing anything)."""

    def __init__(self, out: PyramidOutput) -> None:
        self.out = out
        self.owner = OwnerLock(out.lock_path, UserError(
            f"another bigcppn run is writing the pyramid '{out.root / out.name}'; "
            "wait for it to finish, or choose another -o"))
        self.adopted: int | None = None  # the lock of a replacement folder that takes the pyramid's place
        self.created = False

    def __enter__(self) -> "_FolderLock":
        out = self.out
        if out.folder and not out.root.is_dir():
            # a swap killed between moving the old folder aside and the new one in: finished first (the
            # lock is in the folder); a run that does the same at once only finds the moves done
            out.finish_commit()
        if out.folder and not out.root.is_dir():
            out.root.mkdir()
            self.created = True
        self.owner.acquire()
        return self

    def adopt(self, path: Path) -> None:
        """Lock ``path`` too (no one else knows it yet): a replacement's lock file, about to become this one."""
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.adopted = fd

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.owner.fd is None:
            return
        self.owner.release()
        if self.adopted is not None:
            os.close(self.adopted)
        self.adopted = None
        if self.created and isinstance(exc, UserError):
            # refused before anything was written: leave no folder behind
            try:
                self.out.root.rmdir()
            except OSError:
                pass


def pyramid_output(out: str | Path, layout: Layout | str, storage: "StorageOptions | None" = None) -> PyramidOutput:
    """Check ``-o`` for a layout (before anything is rendered); UserError when it cannot be used.

    A URL (``s3://bucket/prefix/NAME.dzi``) is a pyramid in a bucket
    (:class:`~bigcppn.pyramid.bucket.BucketPyramidOutput`), reached with ``storage``'s options."""
    from ..storage.base import StorageOptions, is_url

    layout = layout_named(layout) if isinstance(layout, str) else layout
    if is_url(out):
        from .bucket import bucket_pyramid_output

        return bucket_pyramid_output(str(out), layout, storage or StorageOptions())
    check_output_name(out)
    p = Path(out)
    root, name = layout.place(p)
    parent = p.parent
    if not parent.is_dir():
        raise UserError(f"output directory '{parent}' does not exist; create it first")
    if not os.access(parent, os.W_OK):
        raise UserError(f"cannot write in output directory '{parent}'; choose another -o")
    if layout.folder and root.exists() and not root.is_dir():
        raise UserError(f"'{root}' exists and is not a folder; choose another -o")
    placed = PyramidOutput(root, name, layout)
    # every name it writes, temporary ones (.NAME.partial-PID-THREAD) included, must fit the file system
    # (NAME.html and its partial: the page beside a .dzi; beside a folder nothing longer is written)
    tmp = "9" * PID_DIGITS + "-" + "9" * 20
    names = [f"{name}.html", f".{name}.html.partial-{tmp}"]
    if not layout.folder:
        descriptor, manifest = placed.descriptor.name, placed.manifest.name
        names += [descriptor, placed.tiles_dir.name, f".{descriptor}.partial-{tmp}", manifest,
                  f".{manifest}.partial-{tmp}", placed.lock_path.name]
    check_name_lengths(p, [name, *names])
    return placed
