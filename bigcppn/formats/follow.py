"""A single file sent to a bucket while its writer is still writing it: the upload overlaps the render.

``render -o s3://bucket/prefix/poster.png`` renders into a private staging folder as on disk (the writer's
hidden partial file, renamed when complete). A :class:`Follower` thread finds that partial file, and while
it grows sends every whole part (:data:`~bigcppn.formats.upload.CHUNK`) that lies more than :data:`HOLD`
bytes behind its end, as parts of one multipart upload. When the render has finished, it sends the rest and
completes the upload; when the render fails, it aborts it. So nothing is visible under the key before the
file is whole, a failure leaves no parts, and memory holds a part or two (the upload's own buffer and
its parts in flight), whatever the file's size.

Only formats whose writer appends (:attr:`~bigcppn.formats.base.Format.appends`: PNG and JPEG through
libvips, bigcppn's PDF and ``.szi`` writers, which rewrite at most a zip entry's header just behind the end)
are followed. A TIFF is not: its header, in the first part, gets the first directory's offset only at the
end, and a multipart upload (obstore's writer) sends its parts in order. Nothing is trusted blindly: a
checksum of every part sent is compared with the finished file, and any difference (a writer that did
rewrite an earlier byte) aborts the followed upload, so the caller sends the whole file again.
"""

from __future__ import annotations

import glob
import os
import threading
import zlib
from pathlib import Path

from ..storage.base import Storage, Upload

__all__ = ["Follower", "HOLD"]

HOLD = 4 << 20  # bytes behind the end of a growing file that its writer may still rewrite
POLL_S = 0.1  # how often the growing file's size is looked at


class Follower(threading.Thread):
    """Follow the file named ``name`` that a writer creates below ``stage``; upload it to ``key`` of ``storage``.

    :meth:`finish` (the render succeeded; ``path`` is the finished file) returns whether the followed upload
    is complete; False means it was aborted (the file was rewritten behind the part boundary, or it never
    appeared) and the caller must send the whole file. :meth:`abort` (the render failed) drops it.
    """

    def __init__(self, stage: Path, name: str, storage: Storage, key: str, content_type: str | None,
                 chunk: int) -> None:
        super().__init__(name="bigcppn-follow", daemon=True)
        self.stage, self.name, self.storage, self.key = stage, name, storage, key
        self.content_type, self.chunk = content_type, chunk
        self._ended = threading.Event()
        self._final: Path | None = None
        self.sent = 0
        self._crcs: list[int] = []
        self.error: BaseException | None = None
        self.completed = False
        self._cancelled = False
        self._up: Upload | None = None  # the multipart upload, once a part is sent

    # ------------------------------------------------------------------ the caller's side
    def finish(self, path: Path) -> bool:
        """The render is done and ``path`` is the whole file: send the rest and complete (True), or False."""
        self._final = path
        self._ended.set()
        try:
            self.join()
        except BaseException:  # Ctrl-C while the last parts go up: abort, not complete
            self._cancelled = True
            self.join()
            raise
        if self.error is not None:
            raise self.error
        return self.completed

    def abort(self) -> None:
        """The render failed: abort the upload (no parts left) and end the thread, without sending the parts
        it had not sent yet (a backlog on a slow link would hold Ctrl-C up for as long as it takes to send)."""
        self._final = None
        self._cancelled = True
        self._ended.set()
        self.join()

    # ------------------------------------------------------------------ the thread
    def run(self) -> None:
        try:
            self._follow()
        except BaseException as exc:  # handed to finish(), which raises it in the caller
            self.error = exc

    def _follow(self) -> None:
        f = self._find()
        if f is None:
            return
        try:
            while not self._ended.wait(POLL_S):
                self._send(f, os.fstat(f.fileno()).st_size - HOLD)
            if self._final is not None and self._intact(f):
                self._send(f, os.fstat(f.fileno()).st_size, last=True)
                if self._cancelled:
                    raise KeyboardInterrupt
                self._up.complete()
                self.completed = True
                return
            if self._up is not None:
                self._up.abort()
        except BaseException:
            if self._up is not None:  # (the upload that _send began, also when it failed part-way)
                self._up.abort()
            raise
        finally:
            f.close()

    def _find(self):
        """The writer's file, open for reading, once it exists in a hidden folder of the stage; None when the
        render ends before one does."""
        while True:
            for p in self.stage.glob(f".*/{glob.escape(self.name)}"):
                try:
                    return open(p, "rb")
                except OSError:
                    continue  # (renamed or removed meanwhile)
            if self._ended.wait(POLL_S):
                return None

    def _send(self, f, end: int, last: bool = False) -> None:
        """Send the bytes from ``sent`` up to ``end``: whole parts only, unless ``last``."""
        while end - self.sent >= self.chunk or (last and end > self.sent):
            if self._cancelled:
                raise KeyboardInterrupt
            data = os.pread(f.fileno(), min(self.chunk, end - self.sent), self.sent)
            if not data:
                break
            if self._up is None:
                self._up = self.storage.upload(self.key, self.content_type)
            self._up.write(data)
            self._crcs.append(zlib.crc32(data))
            self.sent += len(data)
        if self._up is None and last:  # (an empty file)
            self._up = self.storage.upload(self.key, self.content_type)

    def _intact(self, f) -> bool:
        """Whether the finished file is the one followed, and its bytes already sent did not change since."""
        try:
            if os.stat(self._final).st_ino != os.fstat(f.fileno()).st_ino:
                return False
        except OSError:
            return False
        at = 0
        for crc in self._crcs:
            data = os.pread(f.fileno(), self.chunk, at)
            if zlib.crc32(data) != crc:
                return False
            at += len(data)
        return True
