"""The explore page's jobs: a print file or a pyramid, made through the API the CLI uses, one at a time.

Jobs wait in a bounded queue (:data:`MAX_WAITING`; past it a new one is refused) and run on one thread.
Each writes only under the output folder, under a name the server chooses (``job-N-seedS.EXT`` or the
folder ``job-N/``): nothing the page sends becomes a path. Cancelling a waiting job drops it; a running
one stops at its next progress call and leaves nothing (a file is written under a temporary name and
removed; a pyramid's folder is removed).
"""

from __future__ import annotations

import itertools
import re
import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import BigCPPNError, UserError

__all__ = ["MAX_WAITING", "JobCancelled", "QueueFull", "Job", "JobQueue"]

MAX_WAITING = 8
_NAME = re.compile(r"^job-(\d{1,9})")


class JobCancelled(Exception):
    """Raised from a job's progress call once it is cancelled."""


class QueueFull(UserError):
    """As many jobs wait as the queue holds."""


@dataclass
class Job:
    id: int
    kind: str  # print, pyramid
    label: str
    run: Callable[["Job"], str]  # does the work; returns the result's path below the output folder
    owned: Path | None  # a folder to remove when it is cancelled or fails (a file cleans up after itself)
    state: str = "queued"  # queued, running, done, failed, cancelled
    done: float = 0.0
    total: float = 0.0
    result: str | None = None
    error: str | None = None
    started: float | None = None
    finished: float | None = None
    cancel_asked: threading.Event = field(default_factory=threading.Event)

    def progress(self, done: float, total: float) -> None:
        if self.cancel_asked.is_set():
            raise JobCancelled()
        self.done, self.total = done, total

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("id", "kind", "label", "state", "done", "total", "result", "error")}
        end = self.finished or time.monotonic()
        d["seconds"] = round(end - self.started, 2) if self.started else 0.0
        return d


class JobQueue:
    """One job running at a time, at most ``max_waiting`` waiting; all of them under ``out``."""

    def __init__(self, out: Path, max_waiting: int = MAX_WAITING, keep: int = 50) -> None:
        self.out = out
        self.max_waiting = max_waiting
        self._jobs: deque[Job] = deque(maxlen=keep + max_waiting + 1)
        self._waiting: deque[Job] = deque()
        self._cond = threading.Condition()
        self._stopped = False
        start = 1 + max((int(m.group(1)) for p in out.iterdir() if (m := _NAME.match(p.name))), default=0) \
            if out.is_dir() else 1
        self._ids = itertools.count(start)
        self._thread = threading.Thread(target=self._loop, name="bigcppn-explore-jobs", daemon=True)
        self._thread.start()

    def next_id(self) -> int:
        with self._cond:
            return next(self._ids)

    def submit(self, job: Job) -> Job:
        with self._cond:
            if len(self._waiting) >= self.max_waiting:
                raise QueueFull(f"{len(self._waiting)} jobs are waiting already; wait for one or cancel one")
            self._waiting.append(job)
            self._jobs.append(job)
            self._cond.notify()
        return job

    def cancel(self, job_id: int) -> Job:
        with self._cond:
            job = next((j for j in self._jobs if j.id == job_id), None)
            if job is None:
                raise KeyError(job_id)
            job.cancel_asked.set()
            if job.state == "queued":
                self._waiting.remove(job)
                job.state, job.finished = "cancelled", time.monotonic()
        return job

    def list(self) -> list[dict]:
        with self._cond:
            return [j.as_dict() for j in self._jobs]

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel everything; wait (at most ``timeout`` s) for the running job to clean up."""
        with self._cond:
            self._stopped = True
            for j in list(self._jobs):
                j.cancel_asked.set()
            self._cond.notify()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                job = self._waiting.popleft()
                job.state, job.started = "running", time.monotonic()
            self._run(job)

    def _run(self, job: Job) -> None:
        try:
            job.result = job.run(job)
            state = "done"
        except BaseException as exc:  # noqa: BLE001 (a job never stops the server)
            state = "cancelled" if job.cancel_asked.is_set() else "failed"
            if state == "failed":
                job.error = str(exc) if isinstance(exc, BigCPPNError) else f"{type(exc).__name__}: {exc}"
                job.error = job.error.strip().splitlines()[0] if job.error.strip() else type(exc).__name__
            if job.owned is not None:
                _remove(job.owned, self.out)
            if not isinstance(exc, Exception):
                raise
        job.state, job.finished = state, time.monotonic()


def _remove(path: Path, out: Path) -> None:
    """Remove the folder a stopped job made, and only a folder right inside ``out``."""
    if path.resolve().parent != out.resolve():
        return
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
